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

/** A deployment's record. Times are ISO 8601 strings. */
export interface Deployment {
  id: string;
  status: Status;
  /** The command run, or `null` for the built-in simulated deployment. */
  command: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The command's exit code once it ended on its own; `null` before, or when it was stopped by a signal. */
  exitCode: number | null;
  /** Why it failed or was interrupted, in words; `null` otherwise. */
  reason: string | null;
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

/** True when `value` has the shape of a {@linkcode Deployment} record (used on files read back from disk). */
export function isDeployment(value: unknown): value is Deployment {
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
    (record.exitCode === null || Number.isInteger(record.exitCode));
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
    command,
    createdAt,
    startedAt,
    finishedAt,
    exitCode,
    reason,
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
