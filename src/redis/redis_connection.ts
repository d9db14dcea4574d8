/**
 * @module
 * One instance's connections to the Redis that a cluster shares, few and fixed whatever the load: one for
 * commands, one for a blocking reader (handed out once, to the one follower of every followed log), one for
 * pub/sub, opened when first asked for. Every command is bounded: no offline queue (a command while Redis is
 * away fails at once) and a timeout, so that a deploy's output pipe never waits on a Redis that went away.
 * The connections reconnect by themselves; {@linkcode RedisConnection.problem} says why Redis cannot be reached
 * meanwhile, and `up` / `down` events tell the rest of shiplog. A Redis that hangs, or a connection that died
 * without a reset (a host or a network lost), never makes a socket fail: a watchdog PINGs the command and
 * pub/sub connections every second, takes Redis for down after two PINGs in a row without an answer, and makes
 * the connections again, since only a new one recovers from a half-open one.
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
  /** Milliseconds between two PINGs of the watchdog (on the command and the pub/sub connection). Default 1000. */
  pingIntervalMs?: number;
  /** A PING of the watchdog without an answer after this many milliseconds is a miss. Default 1000. */
  pingTimeoutMs?: number;
  /**
   * Misses in a row after which Redis is taken for down (`down`, {@linkcode RedisConnection.problem}) and the
   * connection is made again; on the pub/sub connection, it is made again. Default 2.
   */
  missedPings?: number;
}

/** Ends a connection that does not answer: it then reconnects as after any socket error. */
class NoAnswerError extends Error {}

/** The longest wait between two attempts to reconnect. */
const MAX_RECONNECT_DELAY_MS = 1000;

/**
 * The connections of one instance to Redis. Dispatches `up` and `down` (plain `Event`s), and `resubscribed`
 * when the pub/sub connection is back after it was lost (what was published meanwhile was not heard).
 */
export class RedisConnection extends EventTarget {
  /** Runs commands; never blocks. */
  readonly commands: RedisClient;
  /** `redis://host:port/db` without a password, for messages. */
  readonly shownUrl: string;
  readonly prefix: string;
  #base: RedisClient;
  /** What the socket or Redis said last when it failed (a wrong password, a refused connection). */
  #lastError: string | undefined;
  #subscriber: Promise<RedisClient> | undefined;
  #blockingTaken = false;
  #others: RedisClient[] = [];
  #problem: string | undefined;
  #closed = false;
  #watchdog: Watchdog;
  #watchTimer: ReturnType<typeof setTimeout> | undefined;
  /** PINGs in a row without an answer, on the command and on the pub/sub connection. */
  #misses = { commands: 0, subscriber: 0 };
  /** The pub/sub connection once it is open. */
  #subscriberClient: RedisClient | undefined;

  private constructor(
    base: RedisClient,
    shownUrl: string,
    prefix: string,
    commandTimeoutMs: number,
    watchdog: Watchdog,
  ) {
    super();
    this.#base = base;
    this.shownUrl = shownUrl;
    this.prefix = prefix;
    this.#watchdog = watchdog;
    this.commands = base.withCommandOptions({
      timeout: commandTimeoutMs,
      rejectInFlight: true,
    }) as RedisClient;
    base.on("ready", () => {
      this.#misses.commands = 0;
      this.#setProblem(undefined);
    });
    base.on("error", (error: Error) => {
      // The watchdog's own reset: it said why already.
      if (error instanceof NoAnswerError) return;
      this.#lastError = error.message;
      this.#setProblem(`cannot reach Redis at ${shownUrl}: ${error.message}`);
    });
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
        // Besides the watchdog: the kernel's probes end a connection whose peer is gone, for the blocking one too.
        keepAlive: true,
        keepAliveInitialDelay: 10_000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
      },
    }) as RedisClient;
    const connection = new RedisConnection(
      base,
      shownUrl,
      options.prefix ?? "shiplog",
      options.commandTimeoutMs ?? 5000,
      {
        intervalMs: options.pingIntervalMs ?? 1000,
        timeoutMs: options.pingTimeoutMs ?? 1000,
        misses: options.missedPings ?? 2,
      },
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
              const why = connection.#lastError;
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
    connection.#watch();
    return connection;
  }

  /**
   * Ends the socket of `client` (one of a connection's) as a socket error would, so that it reconnects: for a
   * connection that does not answer. What was in flight on it is rejected. (node-redis's way for a connection
   * whose replies cannot be trusted any more: internal, but in its types.)
   */
  static reset(client: RedisClient): void {
    if (client.isOpen) client._resetDesyncedConnection(new NoAnswerError("Redis does not answer"));
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
    this.#subscriber ??= this.#open().then((client) => {
      // Each ready after the first is a reconnection: its subscriptions are back, what was said meanwhile lost.
      client.on("ready", () => {
        this.#misses.subscriber = 0;
        if (!this.#closed) this.dispatchEvent(new Event("resubscribed"));
      });
      this.#subscriberClient = client;
      return client;
    });
    await (await this.#subscriber).subscribe(channel, listener);
  }

  /**
   * Closes every connection. Resolves once nothing of them is left: a client waiting to reconnect (Redis away)
   * notices only when its wait is over, at most {@linkcode MAX_RECONNECT_DELAY_MS} later.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#watchTimer);
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

  /** Arms the watchdog's next look: one at a time, each after the last is over. */
  #watch(): void {
    this.#watchTimer = setTimeout(async () => {
      await Promise.all([
        this.#check("commands", this.#base),
        this.#check("subscriber", this.#subscriberClient),
      ]);
      if (!this.#closed) this.#watch();
    }, this.#watchdog.intervalMs);
  }

  /**
   * PINGs `client` (when it is ready): an answer means Redis is up; `misses` in a row without one end the
   * connection, which reconnects, and for the command connection, Redis is down until it answers again. A
   * client found reconnecting that many looks and one more is ended too: one stuck in its handshake (Redis took
   * the connection, then went silent) would wait for ever.
   */
  async #check(which: "commands" | "subscriber", client: RedisClient | undefined): Promise<void> {
    if (this.#closed || !client?.isOpen) return;
    const missed = () => {
      if (++this.#misses[which] < this.#watchdog.misses) return;
      this.#misses[which] = 0;
      if (which === "commands") {
        this.#setProblem(`Redis at ${this.shownUrl} does not answer`);
        // Every connection goes the same way to the same Redis: all are made again.
        for (const other of [client, ...this.#others]) RedisConnection.reset(other);
      } else {
        RedisConnection.reset(client);
      }
    };
    if (!client.isReady) {
      // Why it is down was said already (its socket failed); a handshake that never ends is ended.
      if (++this.#misses[which] >= this.#watchdog.misses + 1) {
        this.#misses[which] = 0;
        RedisConnection.reset(client);
      }
      return;
    }
    try {
      await client.sendCommand(["PING"], { timeout: this.#watchdog.timeoutMs, rejectInFlight: true });
    } catch {
      // A socket that failed says so itself (`error`, then `ready` once back); one that stays up did not answer.
      if (!this.#closed && client.isReady) missed();
      return;
    }
    this.#misses[which] = 0;
    if (which === "commands" && client.isReady) this.#setProblem(undefined);
  }

  #setProblem(problem: string | undefined): void {
    if (this.#closed || problem === this.#problem) return;
    const wasUp = this.#problem === undefined;
    this.#problem = problem;
    if (wasUp !== (problem === undefined)) {
      this.dispatchEvent(new Event(problem === undefined ? "up" : "down"));
    }
  }
}

interface Watchdog {
  intervalMs: number;
  timeoutMs: number;
  misses: number;
}
