/**
 * @module
 * One instance's connections to the Redis that a cluster shares, few and fixed whatever the load: one for
 * commands, one for a blocking reader (handed out once, to the one follower of every followed log), one for
 * pub/sub, opened when first asked for. Every command is bounded: no offline queue (a command while Redis is
 * away fails at once) and a timeout, so that a deploy's output pipe never waits on a Redis that went away.
 * The connections reconnect by themselves; {@linkcode RedisConnection.problem} says why Redis cannot be reached
 * meanwhile, and `up` / `down` events tell the rest of shiplog.
 */

import { createClient, type RedisClientType } from "@redis/client";
import { redactUrl } from "./redacted_url.ts";

/** A client of node-redis as shiplog uses it (RESP2, no modules). */
export type RedisClient = RedisClientType;

/** Options of {@linkcode RedisConnection.connect}. */
export interface RedisConnectionOptions {
  /** The start of every key, without its colon. Default `shiplog`. */
  prefix?: string;
  /** A command without an answer after this many milliseconds fails. Default 5000. */
  commandTimeoutMs?: number;
  /** Connecting gives up after this many milliseconds, then tries again. Default 2000. */
  connectTimeoutMs?: number;
  /** The first connection must succeed within this many milliseconds. Default 10000. */
  startTimeoutMs?: number;
}

/** The longest wait between two attempts to reconnect. */
const MAX_RECONNECT_DELAY_MS = 1000;

/** The connections of one instance to Redis. Dispatches `up` and `down` (plain `Event`s). */
export class RedisConnection extends EventTarget {
  /** Runs commands; never blocks. */
  readonly commands: RedisClient;
  /** `redis://host:port/db` without a password, for messages. */
  readonly shownUrl: string;
  readonly prefix: string;
  #base: RedisClient;
  #commandTimeoutMs: number;
  #subscriber: Promise<RedisClient> | undefined;
  #blockingTaken = false;
  #others: RedisClient[] = [];
  #problem: string | undefined;
  #closed = false;

  private constructor(base: RedisClient, shownUrl: string, prefix: string, commandTimeoutMs: number) {
    super();
    this.#base = base;
    this.shownUrl = shownUrl;
    this.prefix = prefix;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.commands = base.withCommandOptions({
      timeout: commandTimeoutMs,
      rejectInFlight: true,
    }) as RedisClient;
    base.on("ready", () => this.#setProblem(undefined));
    base.on(
      "error",
      (error: Error) => this.#setProblem(`cannot reach Redis at ${shownUrl}: ${error.message}`),
    );
    base.on("end", () => this.#setProblem(`the connection to Redis at ${shownUrl} is closed`));
  }

  /**
   * Connects to `url`. Rejects, with a message that names the URL without its password, when Redis cannot be
   * reached within `startTimeoutMs`.
   */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisConnection> {
    const shownUrl = redactUrl(url);
    const base = createClient({
      url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 2000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
      },
    }) as RedisClient;
    const connection = new RedisConnection(
      base,
      shownUrl,
      options.prefix ?? "shiplog",
      options.commandTimeoutMs ?? 5000,
    );
    const startTimeoutMs = options.startTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        base.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => {
              // Why, if Redis said (a wrong password, a database it does not have) or the socket did.
              const why = connection.#problem?.replace(`cannot reach Redis at ${shownUrl}: `, "");
              reject(
                new Error(
                  `Cannot reach Redis at ${shownUrl} within ${startTimeoutMs} ms${why ? `: ${why}` : ""}`,
                ),
              );
            },
            startTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      // Its wait to reconnect ends on its own timer: nothing of it outlives this.
      base.destroy();
      await new Promise((resolve) => setTimeout(resolve, MAX_RECONNECT_DELAY_MS + 20));
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }

  /** Why Redis cannot be reached now, in words; `undefined` while it can. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** A key of this cluster: the prefix and `parts`, joined by colons. */
  key(...parts: string[]): string {
    return [this.prefix, ...parts].join(":");
  }

  /**
   * The connection for blocking reads (`XREAD BLOCK`), which nothing else may use: handed out once per
   * instance. Its commands are not bounded by the timeout (the caller bounds its blocks).
   */
  async blocking(): Promise<RedisClient> {
    if (this.#blockingTaken) throw new Error("The blocking connection to Redis is taken already");
    this.#blockingTaken = true;
    return await this.#open();
  }

  /** Subscribes `listener` to a pub/sub channel, on the one connection for pub/sub. */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.#subscriber ??= this.#open();
    await (await this.#subscriber).subscribe(channel, listener);
  }

  /**
   * Closes every connection. Resolves once nothing of them is left: a client waiting to reconnect (Redis away)
   * notices only when its wait is over, at most {@linkcode MAX_RECONNECT_DELAY_MS} later.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const clients = [this.#base, ...this.#others];
    const waiting = clients.some((client) => client.isOpen && !client.isReady);
    for (const client of clients) client.destroy();
    if (waiting) await new Promise((resolve) => setTimeout(resolve, MAX_RECONNECT_DELAY_MS + 20));
  }

  async #open(): Promise<RedisClient> {
    const client = this.#base.duplicate() as RedisClient;
    // Without a listener, an error event (Redis restarting) would throw, and end the process.
    client.on("error", () => {});
    this.#others.push(client);
    await client.connect();
    return client;
  }

  #setProblem(problem: string | undefined): void {
    if (this.#closed || problem === this.#problem) return;
    const wasUp = this.#problem === undefined;
    this.#problem = problem;
    if (wasUp !== (problem === undefined)) {
      this.dispatchEvent(new Event(problem === undefined ? "up" : "down"));
    }
  }

  /** The timeout of every command, in milliseconds. */
  get commandTimeoutMs(): number {
    return this.#commandTimeoutMs;
  }
}
