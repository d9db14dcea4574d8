/**
 * @module
 * Records `interrupted` the deployments of an instance that died (kill -9, a host lost): every instance runs a
 * reaper, which looks every few seconds at the running deployments (`P:running`) for those whose lease has
 * lapsed. One is reaped only when its lease was missing at two looks in a row with Redis reachable throughout:
 * after an outage, the instance that runs it renews its leases at once, before any reaper can act, so a
 * deployment that ran on through the outage is not interrupted. Cheap when nothing runs: one script call over
 * the running deployments only.
 */

import type { Deployments } from "./deployments.ts";
import type { LogStore } from "../logs/log_store.ts";
import { type RunScripts } from "./run_scripts.ts";
import { parseDeployment } from "../logs/deployment.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";

/** Options of {@linkcode Reaper}. */
export interface ReaperOptions {
  /** Milliseconds between two looks. Default 5000. */
  intervalMs?: number;
  /** Also called at every look (the cluster prunes then, in case it could not at a deployment's end). */
  onTick?: () => void;
}

/** Looks for running deployments whose instance has stopped renewing their leases. */
export class Reaper {
  #connection: RedisConnection;
  #store: LogStore;
  #deployments: Deployments;
  #scripts: RunScripts;
  #onTick: (() => void) | undefined;
  /** Those found without a lease at the last look: reaped if still without one at the next. */
  #suspects = new Set<string>();
  #timer: ReturnType<typeof setInterval>;
  #looking: Promise<void> | undefined;
  #onDown = () => this.#suspects.clear();

  constructor(
    connection: RedisConnection,
    store: LogStore,
    deployments: Deployments,
    scripts: RunScripts,
    options: ReaperOptions = {},
  ) {
    this.#connection = connection;
    this.#store = store;
    this.#deployments = deployments;
    this.#scripts = scripts;
    this.#onTick = options.onTick;
    this.#timer = setInterval(() => {
      this.#looking ??= this.look().finally(() => this.#looking = undefined);
    }, options.intervalMs ?? 5000);
    connection.addEventListener("down", this.#onDown);
  }

  /** One look: reaps the deployments found without a lease now and at the look before. */
  async look(): Promise<void> {
    this.#onTick?.();
    if (this.#connection.problem !== undefined) {
      this.#suspects.clear();
      return;
    }
    try {
      const found = await this.#scripts.leaseless.run(
        this.#connection.commands,
        [this.#connection.key("running")],
        [this.#connection.prefix],
      ) as string[];
      const suspects = new Set<string>();
      const reap: string[] = [];
      for (let i = 0; i < found.length; i += 2) {
        const [id, lastSeen] = [found[i], Number(found[i + 1])];
        suspects.add(id);
        if (!this.#suspects.has(id)) continue;
        // It finished, as far as anyone can tell, at its last sign of life: its lease's last renewal, or its
        // log's last line if later.
        const written = (await this.#store.lastWrittenAt(id).catch(() => undefined))?.getTime() ?? 0;
        reap.push(id, new Date(Math.max(lastSeen, written)).toISOString());
      }
      this.#suspects = suspects;
      if (reap.length === 0) return;
      const reaped = await this.#scripts.reap.run(
        this.#connection.commands,
        [this.#connection.key("running")],
        [this.#connection.prefix, ...reap],
      ) as string[];
      for (const json of reaped) {
        const record = parseDeployment(json);
        if (!record) continue;
        console.error(`shiplog: recorded deployment ${record.id} interrupted: ${record.reason}`);
        this.#deployments.apply(record);
      }
    } catch {
      // Redis went away: forget what was seen, look again once it is back.
      this.#suspects.clear();
    }
  }

  /** Stops looking; resolves once a look under way is over. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#connection.removeEventListener("down", this.#onDown);
    await this.#looking;
  }
}
