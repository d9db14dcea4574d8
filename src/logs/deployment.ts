/**
 * @module
 * What a deployment is: its record (the `<id>.json` file and the JSON of the API) and its statuses. A
 * deployment is `queued`, then `running`, then ends `succeeded`, `failed`, `cancelled`, or `interrupted` (the
 * server stopped or crashed under it). Ended statuses never change again.
 */

/** Where a deployment is in its life. */
export type Status = "queued" | "running" | "succeeded" | "failed" | "cancelled" | "interrupted";

/** The statuses after which nothing more happens. */
export const FINAL_STATUSES: readonly Status[] = ["succeeded", "failed", "cancelled", "interrupted"];

/** Every status, in the order of a deployment's life. */
export const STATUSES: readonly Status[] = ["queued", "running", ...FINAL_STATUSES];

/** The target of the records written before there were targets, and of a server without `--config`. */
export const DEFAULT_TARGET = "default";

/** A deployment's record. Times are ISO 8601 strings. */
export interface Deployment {
  id: string;
  status: Status;
  /** The target deployed to (a name of `--config`'s `targets`, or {@linkcode DEFAULT_TARGET}). */
  target: string;
  /** The values of the target's parameters, by name, as the command gets them (`SHIPLOG_PARAM_<NAME>`). */
  params: Record<string, string>;
  /** The command run, or `null` for the built-in simulated deployment. */
  command: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The command's exit code once it ended on its own; `null` before, or when it was stopped by a signal. */
  exitCode: number | null;
  /** Why it failed or was interrupted, in words; `null` otherwise. */
  reason: string | null;
  /** Who started it (a user's name), or `null` when nobody signed in did (no users, an unnamed `--token`). */
  startedBy: string | null;
  /** Who cancelled it, once cancelled by someone named; `null` otherwise. */
  cancelledBy: string | null;
  /** The id of the deployment this one runs again ("Run again"), or `null`. */
  rerunOf: string | null;
  /**
   * In a cluster, the instance (its `--instance` name) that runs or ran it; `null` or missing while queued,
   * and without a cluster.
   */
  instance?: string | null;
}

/** True once a deployment has ended for good. */
export function isFinal(status: Status): boolean {
  return FINAL_STATUSES.includes(status);
}

/**
 * True when `value` has the shape of a {@linkcode Deployment} record, or of one written before targets, people
 * and re-runs (their fields missing): {@linkcode asDeployment} fills those in.
 */
function isDeployment(value: unknown): value is Deployment {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  const optionalString = (key: string) => record[key] === null || typeof record[key] === "string";
  // A date that does not parse would show as "NaN" on every page that lists it, and sort nowhere.
  const date = (key: string) => typeof record[key] === "string" && !Number.isNaN(Date.parse(record[key]));
  const optionalDate = (key: string) => record[key] === null || date(key);
  return typeof record.id === "string" && STATUSES.includes(record.status as Status) &&
    optionalString("command") && date("createdAt") && optionalDate("startedAt") &&
    optionalDate("finishedAt") && optionalString("reason") &&
    (record.instance === undefined || optionalString("instance")) &&
    (record.exitCode === null || Number.isInteger(record.exitCode)) &&
    (record.target === undefined || typeof record.target === "string") &&
    (record.params === undefined || isParams(record.params)) &&
    ["startedBy", "cancelledBy", "rerunOf"].every((key) => record[key] === undefined || optionalString(key));
}

/** Parameters as an object of strings, or as `[name, value]` pairs ({@linkcode stringifyDeployment}'s). */
function isParams(value: unknown): value is Record<string, string> | [string, string][] {
  if (Array.isArray(value)) {
    return value.every((pair) =>
      Array.isArray(pair) && pair.length === 2 && pair.every((part) => typeof part === "string")
    );
  }
  return typeof value === "object" && value !== null &&
    Object.values(value).every((param) => typeof param === "string");
}

/**
 * A record as JSON whose parameters keep their order through a Lua script's decode and encode (Redis's cjson
 * keeps no key order, and the first parameter is the version a page or a chat line shows): as `[name, value]`
 * pairs, which {@linkcode asDeployment} reads back.
 */
export function stringifyDeployment(deployment: Deployment): string {
  return JSON.stringify({ ...deployment, params: Object.entries(deployment.params) });
}

/**
 * `value` as a {@linkcode Deployment} with its fields in the documented order (a record written by a Lua script
 * comes back in any order), or `undefined` when it does not have the shape of one.
 */
export function asDeployment(value: unknown): Deployment | undefined {
  if (!isDeployment(value)) return undefined;
  const { id, status, command, createdAt, startedAt, finishedAt, exitCode, reason, instance } = value;
  return {
    id,
    status,
    target: value.target ?? DEFAULT_TARGET,
    params: Array.isArray(value.params) ? Object.fromEntries(value.params) : { ...value.params },
    command,
    createdAt,
    startedAt,
    finishedAt,
    exitCode,
    reason,
    startedBy: value.startedBy ?? null,
    cancelledBy: value.cancelledBy ?? null,
    rerunOf: value.rerunOf ?? null,
    ...instance === undefined ? {} : { instance },
  };
}

/** The record in `json` (text, as a store or a script gives it), or `undefined` when it is not one. */
export function parseDeployment(json: unknown): Deployment | undefined {
  if (typeof json !== "string") return undefined;
  try {
    return asDeployment(JSON.parse(json));
  } catch {
    return undefined;
  }
}
