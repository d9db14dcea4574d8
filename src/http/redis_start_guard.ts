/**
 * @module
 * The press-once guard on Start for a cluster: the same `Idempotency-Key` sent to two instances starts one
 * deployment, and both answers name it. The key's entry, `P:idempotency:<sha-256 of the key>`, is taken with
 * `SET NX` and lives for the window: `pending <id>` while its deployment is being made (the id is chosen
 * first), then the record's JSON. A start that finds it pending answers with the record if `P:deployment:<id>`
 * exists, else waits for it, briefly (`waitMs`), then gives up with 409, as the Idempotency-Key draft has it for
 * a request still in progress. A failed start may have made its deployment all the same (a creation that timed
 * out, which Redis ran): it asks Redis, in one script, whether the record exists; if so it answers with it,
 * else it refuses the id for good (`P:refused:<id>`, which the creation script heeds) and frees the key, so
 * trying again works. Redis unable to answer that, the key stays pending with the id: a repeat finds the record
 * once Redis has it, and the key is new again after the window. Redis away: 503.
 */

import { createHash } from "node:crypto";
import { asDeployment, type Deployment } from "../logs/deployment.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";
import { RedisScript } from "../redis/redis_script.ts";
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from "./health.ts";
import { HttpError } from "./http_error.ts";
import { parseStartKey, type Start, type StartKeyGuard } from "./start_guard.ts";

/** Options of {@linkcode RedisStartGuard.create}. */
export interface RedisStartGuardOptions {
  /** How long a key stands for its deployment, in milliseconds. Default 10,000. */
  windowMs?: number;
  /** How long a repeat waits for the deployment of a start still being made, in milliseconds. Default 5000. */
  waitMs?: number;
  /** How often a waiting repeat looks again, in milliseconds. Default 20. */
  pollMs?: number;
}

/** Remembers the keys of recent starts in the Redis that a cluster shares. */
export class RedisStartGuard implements StartKeyGuard {
  #connection: RedisConnection;
  #script: RedisScript;
  #windowMs: number;
  #waitMs: number;
  #pollMs: number;

  private constructor(connection: RedisConnection, script: RedisScript, options: RedisStartGuardOptions) {
    this.#connection = connection;
    this.#script = script;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#waitMs = options.waitMs ?? 5000;
    this.#pollMs = options.pollMs ?? 20;
  }

  /** A guard on `connection`'s Redis. */
  static async create(
    connection: RedisConnection,
    options: RedisStartGuardOptions = {},
  ): Promise<RedisStartGuard> {
    return new RedisStartGuard(
      connection,
      await RedisScript.load(new URL("./redis_scripts/start_key.lua", import.meta.url)),
      options,
    );
  }

  async start(sent: string | null | undefined, create: (id: string) => Promise<Deployment>): Promise<Start> {
    const key = parseStartKey(sent);
    if (key === undefined) return { deployment: create(crypto.randomUUID()), repeated: false };
    const entry = this.#connection.key("idempotency", createHash("sha256").update(key).digest("hex"));
    const deadline = performance.now() + this.#waitMs;
    while (true) {
      const id = crypto.randomUUID();
      const taken = `pending ${id}`;
      const found = await this.#command(() =>
        this.#connection.commands.set(entry, taken, {
          condition: "NX",
          GET: true,
          expiration: { type: "PX", value: this.#windowMs },
        })
      );
      if (found === null) return { deployment: this.#make(entry, id, create), repeated: false };
      if (typeof found === "string" && !found.startsWith("pending ")) {
        return { deployment: Promise.resolve(this.#read(entry, found)), repeated: true };
      }
      if (typeof found === "string") {
        // Made already, though its start may not know it yet (its creation timed out, and Redis ran it).
        const made = await this.#command(() =>
          this.#connection.commands.get(this.#connection.key("deployment", found.slice("pending ".length)))
        );
        if (typeof made === "string") {
          const record = this.#read(entry, made);
          await this.#script.run(this.#connection.commands, [entry], [found, "settle", made]).catch(() => {});
          return { deployment: Promise.resolve(record), repeated: true };
        }
      }
      // Being made, on this instance or another: its record comes shortly. Or the start fails and frees the key,
      // and then the next SET NX takes it.
      if (performance.now() >= deadline) {
        throw new HttpError(409, "A start with this key is still being made; try again in a moment", {
          "retry-after": "1",
        });
      }
      await new Promise((resolve) => setTimeout(resolve, this.#pollMs));
    }
  }

  /**
   * Makes the deployment `id`, then leaves its record under the key. If that failed, the record made after all
   * (a timeout), or else the key freed; the key left pending if Redis cannot tell.
   */
  async #make(entry: string, id: string, create: (id: string) => Promise<Deployment>): Promise<Deployment> {
    const taken = `pending ${id}`;
    let deployment: Deployment;
    try {
      deployment = await create(id);
    } catch (error) {
      const made = await this.#script.run(
        this.#connection.commands,
        [entry, this.#connection.key("deployment", id), this.#connection.key("refused", id)],
        [taken, "resolve", String(this.#windowMs)],
      ).catch(() => null);
      if (typeof made === "string") return this.#read(entry, made);
      throw error;
    }
    // Before answering, so that a repeat sent after this answer finds the record at once. If Redis went away
    // just now, the deployment was made all the same: a repeat within the window waits, then gets a 409.
    await this.#script.run(this.#connection.commands, [entry], [taken, "settle", JSON.stringify(deployment)])
      .catch(() => {});
    return deployment;
  }

  /** The record stored under the key or at its id. */
  #read(entry: string, json: string): Deployment {
    const record = asDeployment(JSON.parse(json));
    if (!record) throw new TypeError(`Cannot read the start of ${entry}: not a record`);
    return record;
  }

  async #command<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new HttpError(
        503,
        `Cannot start a deployment now: the store cannot be reached (${(error as Error).message}); ` +
          "try again shortly",
        { "retry-after": String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
      );
    }
  }
}
