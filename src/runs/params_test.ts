/** Tests of the checks of a Start: every refusal, with its exact message, and what a good one deploys with. */

import assert from "node:assert/strict";
import { checkParams, checkStart, type ParamError } from "./params.ts";
import { parseTargetConfig } from "./target_config.ts";
import { Targets } from "./targets.ts";

const TARGETS = parseTargetConfig(
  JSON.stringify({
    targets: {
      staging: {
        command: "./deploy.sh staging",
        params: {
          version: { description: "Git ref", default: "main", pattern: "^[A-Za-z0-9._/-]{1,100}$" },
          region: { choices: ["eu", "us"], default: "eu" },
          note: {},
        },
      },
      production: { command: "./deploy.sh production", params: { version: { required: true } } },
      lab: { command: "./lab.sh" },
    },
  }),
  "/srv/shiplog.json",
);
const STAGING = TARGETS.get("staging")!;

Deno.test("checkStart() gives the values to deploy with, defaults filled in, in the config's order", () => {
  assert.deepEqual(checkStart(TARGETS, { target: "staging", params: { region: "us", version: "v1.4.2" } }), {
    target: STAGING,
    params: { version: "v1.4.2", region: "us" },
  });
  assert.deepEqual(
    checkStart(TARGETS, { target: "staging" }),
    { target: STAGING, params: { version: "main", region: "eu" } },
    "an optional parameter without a default is left out",
  );
  assert.deepEqual(
    checkStart(TARGETS, { target: "staging", params: { version: "", note: "" } }),
    { target: STAGING, params: { version: "main", region: "eu" } },
    "an empty value (an empty form field) is not given",
  );
  assert.deepEqual(
    checkStart(TARGETS, { target: "production", params: { version: "x".repeat(1000) } }),
    { target: TARGETS.get("production"), params: { version: "x".repeat(1000) } },
    "1000 characters are allowed",
  );
  assert.deepEqual(
    checkStart(TARGETS, { target: "staging", params: { note: 'déploiement 🚀 "quoted" $(touch x)' } }),
    {
      target: STAGING,
      params: { version: "main", region: "eu", note: 'déploiement 🚀 "quoted" $(touch x)' },
    },
    "any text without control characters, shell syntax included: it never reaches a shell as code",
  );
});

Deno.test("checkStart() takes a missing target as the only one, when there is one", () => {
  const single = Targets.single("echo hi");
  assert.deepEqual(checkStart(single, {}), { target: single.only, params: {} });
  assert.deepEqual(checkStart(single, { target: "" }), { target: single.only, params: {} });
});

Deno.test("checkStart() refuses every bad Start with a message naming what is wrong and what is allowed", () => {
  const cases: [string, Parameters<typeof checkStart>[1], ParamError[]][] = [
    ["no target among several", {}, [{
      param: null,
      message: "Name a target; expected one of: staging, production, lab",
    }]],
    ["an unknown target", { target: "qa" }, [{
      param: null,
      message: 'Unknown target "qa"; expected one of: staging, production, lab',
    }]],
    ["a target not a string", { target: 3 }, [{
      param: null,
      message: "The target cannot be a number; expected one of: staging, production, lab",
    }]],
    ["params not an object", { target: "lab", params: ["v1"] }, [{
      param: null,
      message: "The params cannot be a list; expected an object of parameter values",
    }]],
    ["params null", { target: "lab", params: null }, [{
      param: null,
      message: "The params cannot be null; expected an object of parameter values",
    }]],
    ["an unknown parameter", { target: "staging", params: { versoin: "v1" } }, [{
      param: "versoin",
      message: 'Unknown parameter "versoin" for staging; expected one of: version, region, note',
    }]],
    ["a parameter of a target without any", { target: "lab", params: { version: "v1" } }, [{
      param: "version",
      message: 'Unknown parameter "version" for lab; lab takes no parameters',
    }]],
    ["a missing required one", { target: "production" }, [{
      param: "version",
      message: "Parameter version is required; expected a value of up to 1000 characters",
    }]],
    ["a required one given empty", { target: "production", params: { version: "" } }, [{
      param: "version",
      message: "Parameter version is required; expected a value of up to 1000 characters",
    }]],
    ["a value outside the choices", { target: "staging", params: { region: "asia" } }, [{
      param: "region",
      message: 'Parameter region cannot be "asia"; expected one of: eu, us',
    }]],
    ["a value not matching the pattern", { target: "staging", params: { version: "v1; rm -rf /" } }, [{
      param: "version",
      message:
        'Parameter version cannot be "v1; rm -rf /"; expected a value matching ^[A-Za-z0-9._/-]{1,100}$',
    }]],
    ["a value over 1000 characters", { target: "production", params: { version: "x".repeat(1001) } }, [{
      param: "version",
      message: "Parameter version is 1001 characters long; expected at most 1000",
    }]],
    ["a newline", { target: "staging", params: { note: "a\nshiplog: forged" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+000A); expected text without control characters",
    }]],
    ["an escape sequence", { target: "staging", params: { note: "\x1b[2J" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+001B); expected text without control characters",
    }]],
    ["a NUL", { target: "staging", params: { note: "a\0b" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+0000); expected text without control characters",
    }]],
    ["a C1 control", { target: "staging", params: { note: "a\x85b" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+0085); expected text without control characters",
    }]],
    ["a line separator", { target: "staging", params: { note: "a\u2028b" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+2028); expected text without control characters",
    }]],
    ["a right-to-left override", { target: "staging", params: { note: "v1\u202e2.1v" } }, [{
      param: "note",
      message: "Parameter note holds a control character (U+202E); expected text without control characters",
    }]],
    ["a lone surrogate", { target: "staging", params: { note: "a\ud800b" } }, [{
      param: "note",
      message: "Parameter note is not well-formed text (it holds a lone surrogate)",
    }]],
    ["a value not a string", { target: "staging", params: { version: 2 } }, [{
      param: "version",
      message: "Parameter version cannot be a number; expected a string",
    }]],
    ["a long unknown name, cut in the message", { target: "lab", params: { ["n".repeat(100)]: "x" } }, [{
      param: "n".repeat(100),
      message: `Unknown parameter "${"n".repeat(60)}…" for lab; lab takes no parameters`,
    }]],
    ["a name with a quote, quoted as JSON", { target: "lab", params: { 'a"b\n': "x" } }, [{
      param: 'a"b\n',
      message: 'Unknown parameter "a\\"b\\n" for lab; lab takes no parameters',
    }]],
    ["every problem at once, unknown names first", {
      target: "staging",
      params: { region: "mars", version: "a b", extra: "1" },
    }, [
      {
        param: "extra",
        message: 'Unknown parameter "extra" for staging; expected one of: version, region, note',
      },
      {
        param: "version",
        message: 'Parameter version cannot be "a b"; expected a value matching ^[A-Za-z0-9._/-]{1,100}$',
      },
      { param: "region", message: 'Parameter region cannot be "mars"; expected one of: eu, us' },
    ]],
  ];
  for (const [what, request, errors] of cases) {
    const checked = checkStart(TARGETS, request);
    assert.ok("errors" in checked, `${what}: refused`);
    assert.deepEqual(checked.errors, errors, what);
    // The target is known to the form whenever the request named one that exists.
    assert.equal(
      checked.target,
      typeof request.target === "string" ? TARGETS.get(request.target) : undefined,
      what,
    );
  }
});

Deno.test("checkParams() says what a required parameter allows: its choices or its pattern", () => {
  const targets = parseTargetConfig(
    JSON.stringify({
      targets: {
        t: {
          command: "x",
          params: {
            env: { required: true, choices: ["a", "b"] },
            tag: { required: true, pattern: "v[0-9]+" },
          },
        },
      },
    }),
    "/c.json",
  );
  assert.deepEqual(checkParams(targets.only!, {}), {
    errors: [
      { param: "env", message: "Parameter env is required; expected one of: a, b" },
      { param: "tag", message: "Parameter tag is required; expected a value matching v[0-9]+" },
    ],
  });
  assert.deepEqual(
    checkParams(targets.only!, { env: "a", tag: "xv1" }),
    {
      errors: [{ param: "tag", message: 'Parameter tag cannot be "xv1"; expected a value matching v[0-9]+' }],
    },
    "a pattern matches the whole value, as HTML's pattern attribute does",
  );
  assert.deepEqual(checkParams(targets.only!, { env: "b", tag: "v12" }), {
    params: { env: "b", tag: "v12" },
  });
});

Deno.test("checkParams() ignores what an object inherits: only its own names are parameters", () => {
  const given = JSON.parse('{"__proto__": {"version": "x"}}');
  const checked = checkParams(TARGETS.get("production")!, given);
  assert.deepEqual(checked, {
    errors: [
      {
        param: "__proto__",
        message: 'Unknown parameter "__proto__" for production; expected one of: version',
      },
      {
        param: "version",
        message: "Parameter version is required; expected a value of up to 1000 characters",
      },
    ],
  });
});
