/** Tests of the `--config` parser: what a good file gives, and the exact refusal of every kind of bad one. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseTargetConfig, readTargetConfig } from "./target_config.ts";
import { makeTempDir } from "../testing/test_helpers.ts";

const PATH = "/etc/shiplog/deploy.jsonc";

/** A config with one target `t` whose `params` are `params` (JSON text). */
const withParams = (params: string) => `{"targets": {"t": {"command": "x", "params": ${params}}}}`;

Deno.test("parseTargetConfig() reads targets, commands, parameters and comments, in the file's order", () => {
  const targets = parseTargetConfig(
    `{
      // Where we deploy to.
      "targets": {
        "staging": {
          "description": "Staging cluster",
          "command": "./deploy.sh staging",
          "params": {
            "version": { "description": "Git ref", "default": "main", "pattern": "^[A-Za-z0-9._/-]{1,100}$" },
            "region": { "choices": ["eu", "us"], "default": "eu" }, /* trailing commas are fine */
          },
        },
        "production": { "command": "./deploy.sh production", "params": { "version": { "required": true } } },
      },
    }`,
    PATH,
  );
  assert.deepEqual(targets.list().map(({ name }) => name), ["staging", "production"]);
  const staging = targets.get("staging")!;
  assert.equal(staging.description, "Staging cluster");
  assert.equal(staging.command, "./deploy.sh staging");
  assert.equal(staging.cwd, "/etc/shiplog", "a relative command runs in the config file's folder");
  assert.deepEqual([...staging.params.keys()], ["version", "region"]);
  assert.deepEqual(staging.params.get("version"), {
    description: "Git ref",
    default: "main",
    required: false,
    choices: null,
    pattern: "^[A-Za-z0-9._/-]{1,100}$",
  });
  assert.deepEqual(staging.params.get("region"), {
    description: null,
    default: "eu",
    required: false,
    choices: ["eu", "us"],
    pattern: null,
  });
  const production = targets.get("production")!;
  assert.equal(production.description, null);
  assert.equal(production.params.get("version")?.required, true);
  assert.equal(targets.only, undefined);
});

Deno.test("parseTargetConfig() places a relative config's commands in its folder, made absolute", () => {
  const targets = parseTargetConfig('{"targets": {"t": {"command": "./go"}}}', "conf/shiplog.json");
  assert.equal(targets.only?.cwd, join(Deno.cwd(), "conf"));
  assert.equal(targets.only?.params.size, 0);
});

Deno.test("parseTargetConfig() refuses every kind of bad file with its place and what is wrong", () => {
  const cases: [string, string, string][] = [
    ["an empty file", "", "1:1: expected a value"],
    ["an object not closed", '{"targets": {}', '1:15: expected "}"'],
    ["a comment not closed", '{"targets": {} /* x', "1:16: a comment is not closed (*/)"],
    ["a missing comma", '{"targets": {"a": {"command": "x"} "b": {}}}', '1:36: expected ","'],
    [
      "a key without quotes",
      "{targets: {}}",
      "1:2: unexpected text; expected JSON, with keys and strings in double quotes",
    ],
    ["a list at the top", "[]", "1:1: expected an object"],
    ["no targets", "{}", '1:1: expected a "targets" object'],
    ["an unknown top key", '{"target": {}}', 'target: unknown key; expected "targets"'],
    ["targets not an object", '{"targets": []}', "1:13: targets: expected an object"],
    ["no target at all", '{"targets": {}}', "1:13: targets: expected at least one target"],
    [
      "a bad target name",
      '{"targets": {"prod env": {"command": "x"}}}',
      "1:14: targets.prod env: expected a target name of up to 64 letters, digits, or . _ -, starting with a " +
      "letter or digit",
    ],
    [
      "a target named twice",
      '{"targets": {"a": {"command": "x"}, "a": {"command": "y"}}}',
      "1:37: targets.a: this key is given twice",
    ],
    ["a target without a command", '{"targets": {"a": {}}}', '1:19: targets.a: expected a "command" to run'],
    [
      "an empty command",
      '{"targets": {"a": {"command": " "}}}',
      "1:31: targets.a.command: expected a command (a non-empty string)",
    ],
    [
      "a command not a string",
      '{"targets": {"a": {"command": ["x"]}}}',
      "1:31: targets.a.command: expected a command (a non-empty string)",
    ],
    [
      "a command too long",
      `{"targets": {"a": {"command": "${"x".repeat(8193)}"}}}`,
      "1:31: targets.a.command: expected at most 8192 bytes; put a longer command in a script and run that",
    ],
    [
      "an unknown target key (a typo)",
      '{"targets": {"a": {"command": "x", "parms": {}}}}',
      'targets.a.parms: unknown key; expected "description", "command", "params"',
    ],
    [
      "a description not a string",
      '{"targets": {"a": {"command": "x", "description": 1}}}',
      "1:51: targets.a.description: expected a string",
    ],
    ["params not an object", withParams("[]"), "1:46: targets.t.params: expected an object"],
    [
      "a bad parameter name",
      withParams('{"Version": {}}'),
      "1:47: targets.t.params.Version: expected a parameter name of up to 64 lower-case letters, digits or _, " +
      "starting with a letter",
    ],
    [
      "a parameter name with a dash",
      withParams('{"dry-run": {}}'),
      "1:47: targets.t.params.dry-run: expected a parameter name of up to 64 lower-case letters, digits or _, " +
      "starting with a letter",
    ],
    [
      "a parameter not an object",
      withParams('{"v": "main"}'),
      "1:52: targets.t.params.v: expected an object",
    ],
    [
      "an unknown parameter key",
      withParams('{"v": {"defualt": "x"}}'),
      'targets.t.params.v.defualt: unknown key; expected "description", "default", "required", "choices", "pattern"',
    ],
    [
      "required not a boolean",
      withParams('{"v": {"required": "yes"}}'),
      "1:65: targets.t.params.v.required: expected true or false",
    ],
    [
      "a bad pattern",
      withParams('{"v": {"pattern": "[a-z"}}'),
      "1:64: targets.t.params.v.pattern: expected a regular expression: Unterminated character class",
    ],
    [
      "a pattern not a string",
      withParams('{"v": {"pattern": 1}}'),
      "1:64: targets.t.params.v.pattern: expected a string",
    ],
    [
      "empty choices",
      withParams('{"v": {"choices": []}}'),
      "1:64: targets.t.params.v.choices: expected a non-empty list of strings",
    ],
    [
      "choices not a list",
      withParams('{"v": {"choices": "eu"}}'),
      "1:64: targets.t.params.v.choices: expected a non-empty list of strings",
    ],
    [
      "a choice not a string",
      withParams('{"v": {"choices": ["a", 2]}}'),
      "1:70: targets.t.params.v.choices[1]: expected a string",
    ],
    [
      "a choice listed twice",
      withParams('{"v": {"choices": ["a", "a"]}}'),
      '1:70: targets.t.params.v.choices[1]: "a" is listed twice',
    ],
    [
      "a choice outside the pattern",
      withParams('{"v": {"pattern": "[a-z]+", "choices": ["ok", "NO"]}}'),
      '1:92: targets.t.params.v.choices[1]: cannot be "NO"; expected a value matching [a-z]+',
    ],
    [
      "a default outside the choices",
      withParams('{"v": {"choices": ["eu", "us"], "default": "asia"}}'),
      '1:89: targets.t.params.v.default: cannot be "asia"; expected one of: eu, us',
    ],
    [
      "a default not matching the pattern",
      withParams('{"v": {"pattern": "[0-9]+", "default": "main"}}'),
      '1:85: targets.t.params.v.default: cannot be "main"; expected a value matching [0-9]+',
    ],
    [
      "a default with a control character",
      withParams('{"v": {"default": "a\\u001bb"}}'),
      "1:64: targets.t.params.v.default: holds a control character (U+001B); expected text without control characters",
    ],
    [
      "a default not a string",
      withParams('{"v": {"default": 1}}'),
      "1:64: targets.t.params.v.default: expected a string",
    ],
    [
      "too many parameters",
      withParams(JSON.stringify(Object.fromEntries([...Array(17).keys()].map((i) => [`p${i}`, {}])))),
      "1:46: targets.t.params: expected at most 16 parameters",
    ],
  ];
  for (const [what, text, message] of cases) {
    assert.throws(
      () => parseTargetConfig(text, PATH),
      (error: Error) => {
        assert.ok(error instanceof SyntaxError, what);
        // The place is checked wherever the case gives one; every message starts with the file.
        const expected = /^\d+:\d+: /.test(message) ? `${PATH}:${message}` : message;
        if (expected.startsWith(PATH)) assert.equal(error.message, expected, what);
        else assert.match(error.message, new RegExp(`^${PATH}:\\d+:\\d+: ${escape(message)}$`), what);
        return true;
      },
      what,
    );
  }
});

Deno.test("parseTargetConfig() counts lines and columns from 1, after comments and line breaks", () => {
  const text =
    '{\n  // the targets\n  "targets": {\n    "a": { "command": "x",\n      "bogus": true }\n  }\n}\n';
  assert.throws(
    () => parseTargetConfig(text, "c.jsonc"),
    new SyntaxError('c.jsonc:5:7: targets.a.bogus: unknown key; expected "description", "command", "params"'),
  );
});

Deno.test("readTargetConfig() refuses a file it cannot read, naming it", async () => {
  await using temp = await makeTempDir();
  const missing = join(temp.path, "nope.json");
  await assert.rejects(
    () => readTargetConfig(missing),
    (error: Error) =>
      error instanceof TypeError && error.message.startsWith(`Cannot read --config ${missing}: `),
  );
  const path = join(temp.path, "ok.json");
  await Deno.writeTextFile(path, '{"targets": {"t": {"command": "./deploy.sh"}}}');
  assert.equal((await readTargetConfig(path)).only?.cwd, temp.path);
});

Deno.test("the README's example config parses into the targets it describes", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("## Targets and parameters"));
  const example = /```jsonc\n([\s\S]*?)```/.exec(section);
  assert.ok(example, "a jsonc block in the README's Targets and parameters section");
  const targets = parseTargetConfig(example[1], "/srv/shiplog/shiplog.jsonc");
  assert.deepEqual(targets.list().map(({ name }) => name), ["staging", "production"]);
  assert.equal(targets.get("production")?.params.get("version")?.required, true);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
