/**
 * @module
 * The `--config` file: JSON with comments (and trailing commas) naming the targets a server deploys to, each
 * with its command and parameters. Parsed by `jsonc-parser`, whose tree keeps every value's place, so that each
 * refusal names the file, the line and column, the key path, and what is wrong, like
 * `deploy.jsonc:4:19: targets.staging.command: expected a command (a non-empty string)`. Everything is checked
 * before anything starts: an unknown key (a typo would otherwise be a setting silently ignored), a target
 * without a command, a bad parameter name or pattern, a default that its own rules refuse. Commands run in the
 * file's folder, so `./deploy.sh` means the script beside it.
 */

import { type Node, type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";
import { dirname, resolve } from "node:path";
import { compilePattern, valueProblem } from "./params.ts";
import { MAX_COMMAND_BYTES, PARAM_NAME, type ParamSpec, type Target, Targets } from "./targets.ts";

/** Target names: safe in a URL's query, a file name and a chat line as they are. */
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/**
 * Parameters one target may have: each value may be 1,000 characters, and a record (with its command) must
 * stay well under the 64 KiB that a store loads.
 */
export const MAX_PARAMS = 16;

const SYNTAX: Record<string, string> = {
  InvalidSymbol: "unexpected text; expected JSON, with keys and strings in double quotes",
  InvalidNumberFormat: "expected a number",
  PropertyNameExpected: "expected a key in double quotes",
  ValueExpected: "expected a value",
  ColonExpected: 'expected ":"',
  CommaExpected: 'expected ","',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: "expected the end of the file",
  InvalidCommentToken: "expected a comment",
  UnexpectedEndOfComment: "a comment is not closed (*/)",
  UnexpectedEndOfString: "a string is not closed",
  UnexpectedEndOfNumber: "a number is cut off",
  InvalidUnicode: "expected four hex digits after \\u",
  InvalidEscapeCharacter: 'expected an escape like \\n, \\" or \\\\',
  InvalidCharacter: "a string holds a control character (write it escaped, like \\t)",
};

const TARGET_KEYS = ["description", "command", "params"];
const PARAM_KEYS = ["description", "default", "required", "choices", "pattern"];

/** Reads and parses the config file at `path`; a file that cannot be read is refused like a bad one. */
export async function readTargetConfig(path: string): Promise<Targets> {
  let text;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new TypeError(`Cannot read --config ${path}: ${(error as Error).message}`);
  }
  return parseTargetConfig(text, path);
}

/**
 * The targets that the config `text` (read from `path`) describes; their commands run in `path`'s folder.
 * Throws a `SyntaxError` whose message is `PATH:LINE:COLUMN: KEY PATH: what is wrong` for the first problem.
 */
export function parseTargetConfig(text: string, path: string): Targets {
  const fail = (node: Pick<Node, "offset">, where: string, problem: string): never => {
    const { line, column } = position(text, node.offset);
    throw new SyntaxError(`${path}:${line}:${column}: ${where === "" ? "" : `${where}: `}${problem}`);
  };
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const first = errors[0];
    fail(first, "", SYNTAX[printParseErrorCode(first.error)] ?? "cannot parse this");
  }
  // Checked by the error list above: an empty file is "expected a value".
  const top = root!;
  const file = properties(top, "", ["targets"], fail);
  const targetsNode = file.get("targets") ?? fail(top, "", 'expected a "targets" object');
  const folder = dirname(resolve(path));
  const targets: Target[] = [];
  for (const [name, node] of properties(targetsNode, "targets", undefined, fail)) {
    const where = `targets.${name}`;
    if (!TARGET_NAME.test(name)) {
      fail(
        node.parent!,
        where,
        "expected a target name of up to 64 letters, digits, or . _ -, starting with a letter or digit",
      );
    }
    const keys = properties(node, where, TARGET_KEYS, fail);
    const command = keys.get("command");
    if (command === undefined) fail(node, where, 'expected a "command" to run');
    if (typeof command!.value !== "string" || command!.value.trim() === "") {
      fail(command!, `${where}.command`, "expected a command (a non-empty string)");
    }
    if (new TextEncoder().encode(command!.value).length > MAX_COMMAND_BYTES) {
      fail(
        command!,
        `${where}.command`,
        `expected at most ${MAX_COMMAND_BYTES} bytes; put a longer command in a script and run that`,
      );
    }
    const params = new Map<string, ParamSpec>();
    const paramsNode = keys.get("params");
    if (paramsNode !== undefined) {
      const declared = properties(paramsNode, `${where}.params`, undefined, fail);
      if (declared.size > MAX_PARAMS) {
        fail(paramsNode, `${where}.params`, `expected at most ${MAX_PARAMS} parameters`);
      }
      for (const [paramName, paramNode] of declared) {
        const paramWhere = `${where}.params.${paramName}`;
        if (!PARAM_NAME.test(paramName)) {
          fail(
            paramNode.parent!,
            paramWhere,
            "expected a parameter name of up to 64 lower-case letters, digits or _, starting with a letter",
          );
        }
        params.set(paramName, paramSpec(paramNode, paramWhere, fail));
      }
    }
    targets.push({
      name,
      description: optionalString(keys.get("description"), `${where}.description`, fail),
      command: command!.value,
      cwd: folder,
      params,
    });
  }
  if (targets.length === 0) fail(targetsNode, "targets", "expected at least one target");
  return new Targets(targets);
}

type Fail = (node: Pick<Node, "offset">, where: string, problem: string) => never;

function paramSpec(node: Node, where: string, fail: Fail): ParamSpec {
  const keys = properties(node, where, PARAM_KEYS, fail);
  const requiredNode = keys.get("required");
  if (requiredNode !== undefined && requiredNode.type !== "boolean") {
    fail(requiredNode, `${where}.required`, "expected true or false");
  }
  const patternNode = keys.get("pattern");
  const pattern = optionalString(patternNode, `${where}.pattern`, fail);
  if (pattern !== null) {
    try {
      compilePattern(pattern);
    } catch (error) {
      // "Invalid regular expression: /(/u: Unterminated group": the last part is what is wrong.
      const reason = (error as Error).message.split(": ").at(-1);
      fail(patternNode!, `${where}.pattern`, `expected a regular expression: ${reason}`);
    }
  }
  const spec: ParamSpec = {
    description: optionalString(keys.get("description"), `${where}.description`, fail),
    default: null,
    required: requiredNode?.value === true,
    choices: null,
    pattern,
  };
  const choicesNode = keys.get("choices");
  if (choicesNode !== undefined) {
    if (choicesNode.type !== "array" || choicesNode.children!.length === 0) {
      fail(choicesNode, `${where}.choices`, "expected a non-empty list of strings");
    }
    const choices: string[] = [];
    for (const [index, choice] of choicesNode.children!.entries()) {
      const at = `${where}.choices[${index}]`;
      if (choice.type !== "string") fail(choice, at, "expected a string");
      if (choices.includes(choice.value)) fail(choice, at, `"${choice.value}" is listed twice`);
      // A choice the pattern refuses could never be picked.
      const problem = valueProblem({ ...spec, choices: null }, choice.value);
      if (problem !== undefined) fail(choice, at, problem);
      choices.push(choice.value);
    }
    spec.choices = choices;
  }
  const defaultNode = keys.get("default");
  if (defaultNode !== undefined) {
    if (defaultNode.type !== "string") fail(defaultNode, `${where}.default`, "expected a string");
    // A default the server would refuse makes every Start that leaves it fail.
    const problem = valueProblem(spec, defaultNode.value);
    if (problem !== undefined) fail(defaultNode, `${where}.default`, problem);
    spec.default = defaultNode.value;
  }
  return spec;
}

/**
 * The properties of the object `node`, by key, in the file's order. Refuses another type, a key listed twice,
 * and (when `allowed` is given) a key not in it.
 */
function properties(node: Node, where: string, allowed: string[] | undefined, fail: Fail): Map<string, Node> {
  if (node.type !== "object") fail(node, where, "expected an object");
  const found = new Map<string, Node>();
  for (const property of node.children ?? []) {
    const [keyNode, valueNode] = property.children!;
    const key: string = keyNode.value;
    const at = where === "" ? key : `${where}.${key}`;
    if (allowed !== undefined && !allowed.includes(key)) {
      fail(keyNode, at, `unknown key; expected ${allowed.map((name) => `"${name}"`).join(", ")}`);
    }
    if (found.has(key)) fail(keyNode, at, "this key is given twice");
    // A property whose value is missing is a syntax error, reported before this.
    found.set(key, valueNode);
  }
  return found;
}

function optionalString(node: Node | undefined, where: string, fail: Fail): string | null {
  if (node === undefined) return null;
  if (node.type !== "string") fail(node, where, "expected a string");
  return node.value;
}

/** The 1-based line and column (in UTF-16 units, as editors count) of `offset` in `text`. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line: before.split("\n").length, column: offset - lineStart + 1 };
}
