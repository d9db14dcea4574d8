/**
 * @module
 * The Lua scripts of the cluster's runs (`redis_scripts/*.lua`): each an atomic step on the shared records, the
 * queue and the leases, so that two instances never take the same deployment or both end it.
 */

import { LOG_LINES_SCRIPT } from "../logs/redis_store.ts";
import { RedisScript } from "../redis/redis_script.ts";

/** Every script of the cluster's runs, loaded. */
export interface RunScripts {
  enqueue: RedisScript;
  claim: RedisScript;
  claimed: RedisScript;
  cancel: RedisScript;
  renew: RedisScript;
  release: RedisScript;
  leaseless: RedisScript;
  reap: RedisScript;
  unlock: RedisScript;
}

const NAMES = [
  "enqueue",
  "claim",
  "claimed",
  "cancel",
  "renew",
  "release",
  "leaseless",
  "reap",
  "unlock",
] as const;

/** The scripts that end a deployment with a notice in its log, in the same step (see `log_notice.ts`). */
const WRITING_LOGS: ReadonlySet<string> = new Set(["cancel", "reap"]);

/** Reads the scripts (embedded in the binary with `deno compile --include src/runs/redis_scripts`). */
export async function loadRunScripts(): Promise<RunScripts> {
  const loaded = await Promise.all(
    NAMES.map((name) =>
      RedisScript.load(new URL(`./redis_scripts/${name}.lua`, import.meta.url), {
        include: WRITING_LOGS.has(name) ? [LOG_LINES_SCRIPT] : [],
      })
    ),
  );
  return Object.fromEntries(NAMES.map((name, i) => [name, loaded[i]])) as unknown as RunScripts;
}
