/**
 * @module
 * The server's check of a Start: the target it names and the values of that target's parameters, as sent by an
 * API client or a form, against what the config allows. A refusal lists one message per problem, each naming
 * the parameter and what is allowed, so that a form can show every one next to its field. Values reach the
 * command only as environment variables, never as shell text; the checks keep them to what a person could
 * type and a record can hold: no control characters, no broken text, at most {@linkcode MAX_VALUE_LENGTH}
 * characters.
 */

import type { ParamSpec, Target, Targets } from "./targets.ts";

/** The longest value of a parameter, in characters. */
export const MAX_VALUE_LENGTH = 1000;

/** One reason a Start is refused: about the parameter `param`, or (`null`) the target or the request. */
export interface ParamError {
  param: string | null;
  message: string;
}

/** The outcome of a check: the values to deploy with (defaults filled in), or why not. */
export type CheckedParams = { params: Record<string, string> } | { errors: ParamError[] };

/** What a Start sent: anything a JSON body may hold, until checked. */
export interface StartRequest {
  target?: unknown;
  params?: unknown;
}

/** The outcome of {@linkcode checkStart}: `target` is set whenever the request named a known one. */
export type CheckedStart =
  | { target: Target; params: Record<string, string> }
  | { target: Target | undefined; errors: ParamError[] };

/** The pattern of a parameter as a check applies it: to the whole value, as HTML's `pattern` attribute does. */
export function compilePattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, "u");
}

/**
 * Checks the target a Start names (it may name none when there is only one) and its parameters. Never
 * throws: every refusal is an error in the result.
 */
export function checkStart(targets: Targets, request: StartRequest): CheckedStart {
  const found = findTarget(targets, request.target);
  if ("error" in found) return refused(undefined, found.error);
  const { target } = found;
  const { params = {} } = request;
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    return refused(target, `The params cannot be ${kind(params)}; expected an object of parameter values`);
  }
  const checked = checkParams(target, params as Record<string, unknown>);
  return "errors" in checked ? { target, errors: checked.errors } : { target, params: checked.params };
}

/**
 * The target that `name` names, or (none, or empty) the only one; otherwise why not. `missing` is true when no
 * name was given: a request that is incomplete rather than wrong.
 */
export function findTarget(
  targets: Targets,
  name: unknown,
): { target: Target } | { error: string; missing: boolean } {
  const names = targets.list().map((target) => target.name).join(", ");
  if (name !== undefined && name !== null && typeof name !== "string") {
    return { error: `The target cannot be ${kind(name)}; expected one of: ${names}`, missing: false };
  }
  const missing = name === undefined || name === null || name === "";
  const target = missing ? targets.only : targets.get(name);
  if (target !== undefined) return { target };
  return missing
    ? { error: `Name a target; expected one of: ${names}`, missing }
    : { error: `Unknown target ${quote(name)}; expected one of: ${names}`, missing };
}

/**
 * Checks `given` against `target`'s parameters: no unknown name, every required one given (or defaulted), each
 * value text within its `choices` and `pattern`. An empty value counts as not given: an empty form field.
 * Returns the values in the config's order, defaults filled in; a parameter with neither is left out.
 */
export function checkParams(target: Target, given: Record<string, unknown>): CheckedParams {
  const errors: ParamError[] = [];
  const declared = [...target.params.keys()];
  for (const name of Object.keys(given)) {
    if (target.params.has(name)) continue;
    errors.push({
      param: name,
      message: `Unknown parameter ${quote(name)} for ${target.name}; ` +
        (declared.length === 0
          ? `${target.name} takes no parameters`
          : `expected one of: ${declared.join(", ")}`),
    });
  }
  const params: Record<string, string> = {};
  for (const [name, spec] of target.params) {
    const value = Object.hasOwn(given, name) ? given[name] : undefined;
    if (value !== undefined && value !== "" && typeof value !== "string") {
      errors.push({ param: name, message: `Parameter ${name} cannot be ${kind(value)}; expected a string` });
      continue;
    }
    const chosen = value === undefined || value === "" ? spec.default : value;
    if (chosen === null) {
      if (spec.required) {
        errors.push({ param: name, message: `Parameter ${name} is required; expected ${allowed(spec)}` });
      }
      continue;
    }
    const problem = valueProblem(spec, chosen);
    if (problem !== undefined) errors.push({ param: name, message: `Parameter ${name} ${problem}` });
    else params[name] = chosen;
  }
  return errors.length > 0 ? { errors } : { params };
}

/**
 * What is wrong with `value` for a parameter of `spec`, as the end of a sentence about it ("cannot be "asia";
 * expected one of: eu, us"); `undefined` when it is allowed. The config's defaults and choices meet it too.
 */
export function valueProblem(spec: ParamSpec, value: string): string | undefined {
  if (value.length > MAX_VALUE_LENGTH) {
    return `is ${value.length} characters long; expected at most ${MAX_VALUE_LENGTH}`;
  }
  // C0, DEL and C1: a newline or an escape sequence in a value would forge lines of a log or a chat message.
  // The line and paragraph separators break lines too, and the bidirectional controls reorder what a page or a
  // chat shows (a version that reads as another).
  const control = /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/u.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    return `holds a control character (U+${code}); expected text without control characters`;
  }
  // An environment variable holds bytes of UTF-8: a lone surrogate has none.
  if (!value.isWellFormed()) return "is not well-formed text (it holds a lone surrogate)";
  if (spec.choices !== null && !spec.choices.includes(value)) {
    return `cannot be ${quote(value)}; expected one of: ${spec.choices.join(", ")}`;
  }
  if (spec.pattern !== null && !compilePattern(spec.pattern).test(value)) {
    return `cannot be ${quote(value)}; expected a value matching ${spec.pattern}`;
  }
  return undefined;
}

function refused(target: Target | undefined, message: string): CheckedStart {
  return { target, errors: [{ param: null, message }] };
}

/** What a parameter takes, in words. */
function allowed(spec: ParamSpec): string {
  if (spec.choices !== null) return `one of: ${spec.choices.join(", ")}`;
  if (spec.pattern !== null) return `a value matching ${spec.pattern}`;
  return `a value of up to ${MAX_VALUE_LENGTH} characters`;
}

/** A value sent, quoted as JSON (so a quote or a backslash in it cannot blur the message) and cut to a glance. */
function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}

/** The kind of a JSON value, for a message: "a number", "a list", "null". */
function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "boolean") return "true or false";
  return `a ${typeof value}`;
}
