/**
 * @module
 * One process per instance name in a cluster. `P:instance:<name>` holds a token of the process that has the
 * name, with a time to live that it renews. Two processes of one name would each take the other's deployments
 * for their own (at start-up, what is recorded running under its name is recorded interrupted), so a second
 * one waits for the first to stop answering (a restart after a crash: the time to live at most), then refuses.
 */

import type { RedisConnection } from "../redis/redis_connection.ts";
import { RedisScript } from "../redis/redis_script.ts";

/** Options of {@linkcode InstanceClaim.take}. */
export interface InstanceClaimOptions {
  /** How long the name stays taken unless renewed, in milliseconds. Default 10000. */
  ttlMs?: number;
  /** Milliseconds between two renewals. Default 3000. */
  renewMs?: number;
  /** Told once when the name is taken by another process, before waiting for it to lapse. */
  onWait?: () => void;
}

/** This process's hold on its instance name. */
export class InstanceClaim {
  #connection: RedisConnection;
  #key: string;
  #token: string;
  #ttlMs: number;
  #renew: RedisScript;
  #release: RedisScript;
  #timer: ReturnType<typeof setInterval>;
  #onUp = () => this.#renewNow();
  #warned = false;

  private constructor(
    connection: RedisConnection,
    key: string,
    token: string,
    scripts: { renew: RedisScript; release: RedisScript },
    options: { ttlMs: number; renewMs: number },
  ) {
    this.#connection = connection;
    this.#key = key;
    this.#token = token;
    this.#ttlMs = options.ttlMs;
    this.#renew = scripts.renew;
    this.#release = scripts.release;
    this.#timer = setInterval(() => this.#renewNow(), options.renewMs);
    // Lapsed while Redis was away: taken again at once.
    connection.addEventListener("up", this.#onUp);
  }

  /**
   * Takes the name `name` for this process. When another process holds it, waits until it lapses (that process
   * stopped renewing it: it was killed), the time to live at most; rejects if it is still held.
   */
  static async take(
    connection: RedisConnection,
    name: string,
    options: InstanceClaimOptions = {},
  ): Promise<InstanceClaim> {
    const ttlMs = options.ttlMs ?? 10_000;
    const renewMs = options.renewMs ?? 3000;
    const scripts = {
      renew: await RedisScript.load(new URL("./redis_scripts/instance_renew.lua", import.meta.url)),
      release: await RedisScript.load(new URL("./redis_scripts/unlock.lua", import.meta.url)),
    };
    const key = connection.key("instance", name);
    const token = crypto.randomUUID();
    // A holder that is alive renews it long before it lapses; one that was killed lets it lapse within the ttl.
    const deadline = performance.now() + ttlMs + 500;
    for (let told = false;; told = true) {
      if (await scripts.renew.run(connection.commands, [key], [token, String(ttlMs)]) === 1) break;
      if (performance.now() > deadline) {
        throw new Error(
          `Cannot join the cluster as instance "${name}": another shiplog of that name is running; ` +
            "give each instance its own --instance",
        );
      }
      if (!told) options.onWait?.();
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, renewMs)));
    }
    return new InstanceClaim(connection, key, token, scripts, { ttlMs, renewMs });
  }

  /** Stops renewing and lets the name go, so that a restart takes it at once. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#connection.removeEventListener("up", this.#onUp);
    await this.#release.run(this.#connection.commands, [this.#key], [this.#token]).catch(() => {});
  }

  async #renewNow(): Promise<void> {
    try {
      const mine = await this.#renew.run(this.#connection.commands, [this.#key], [
        this.#token,
        String(this.#ttlMs),
      ]);
      if (mine === 1 || this.#warned) return;
      this.#warned = true;
      // Only while this process could not renew it (Redis away) can another have taken it: the operator must act.
      console.error(
        `shiplog: another shiplog took the instance name of this one (${this.#key}) while Redis was away; ` +
          "two instances of one name take each other's deployments: stop one of them",
      );
    } catch {
      // Redis away: renewed on `up`.
    }
  }
}
