/**
 * @module
 * The one blocking reader of an instance: it follows every followed log with a single multi-key
 * `XREAD BLOCK` on the connection kept for blocking reads, never a connection per viewer or per log. When the
 * set of logs to read changes (a follower comes, or may read on after its pace), the read in flight is ended
 * with `CLIENT UNBLOCK` from the command connection and sent again with the new set: at once, where a short
 * block timeout would cost a read per timeout per instance even when nothing is written, and delay a new
 * follower by up to that timeout. With nothing to follow, nothing is sent. A follower's cursor is the last line
 * handed to it; what it is given starts exactly there, so lines arrive in order, with no gap and no duplicate,
 * across reconnects of the blocking connection (the read is sent again from the same cursors). A read without
 * an answer by its block time and a margin, or one that `CLIENT UNBLOCK` cannot find in Redis for a while, means
 * a blocking connection that died without telling: it is made again.
 */

import { type RedisClient, RedisConnection } from "../redis/redis_connection.ts";
import type { LineBatch, LogFollower, LogFollowHandlers } from "./log_store.ts";
import { batchFrom, entriesToBatches, entryId, xreadStreams } from "./redis_log_entries.ts";

/** Options of {@linkcode RedisLogReader}. */
export interface RedisLogReaderOptions {
  /** The longest one blocking read waits before it is sent again, in milliseconds. Default 10000. */
  blockMs?: number;
  /** The most entries of one log one read returns (and one page of `catchUp()`). Default 1000. */
  count?: number;
  /** After a failed read on a connection that is up, the next one waits this long, in ms. Default 1000. */
  retryMs?: number;
  /**
   * A read without an answer `blockMs` and this many milliseconds after it was sent ends the blocking
   * connection, which is made again. Default: `blockMs`, at most 2000.
   */
  marginMs?: number;
}

/** `CLIENT UNBLOCK` tries, 5 ms apart, before a read Redis does not know of is taken for lost. */
const UNBLOCK_TRIES = 100;

/** Follows every followed log of one instance through one blocking connection. */
export class RedisLogReader {
  #blocking: RedisClient;
  #commands: RedisClient;
  #blockMs: number;
  #count: number;
  #retryMs: number;
  #marginMs: number;
  #followers = new Map<string, Set<StreamFollower>>();
  /** The cursor of each log in the read in flight, while one is. */
  #armed: Map<string, number> | undefined;
  /** The id of the blocking connection (it changes with each reconnect: asked again with each read). */
  #clientId: Promise<unknown> | undefined;
  /** Counts the reads sent, so that an unblock meant for one never ends the next. */
  #reads = 0;
  #unblocking = -1;
  #wakeIdle: (() => void) | undefined;
  #closing = new AbortController();
  #errorShown = false;

  constructor(blocking: RedisClient, commands: RedisClient, options: RedisLogReaderOptions = {}) {
    this.#blocking = blocking;
    this.#commands = commands;
    this.#blockMs = options.blockMs ?? 10_000;
    this.#count = options.count ?? 1000;
    this.#retryMs = options.retryMs ?? 1000;
    this.#marginMs = options.marginMs ?? Math.min(this.#blockMs, 2000);
    this.#run().catch((error) => console.error("shiplog: the reader of the followed logs stopped:", error));
  }

  /** Follows stream `key` from line `nextLine` on. */
  follow(key: string, nextLine: number, handlers: LogFollowHandlers): LogFollower {
    if (this.#closing.signal.aborted) throw new Error("Cannot follow a log: the store is closed");
    const follower = new StreamFollower(this, key, nextLine, handlers);
    let followers = this.#followers.get(key);
    if (!followers) this.#followers.set(key, followers = new Set());
    followers.add(follower);
    this.wake(follower);
    return follower;
  }

  /** Every log was lost (Redis lost its data): each follower is told, and reads again from line 1. */
  reset(): void {
    for (const followers of this.#followers.values()) {
      for (const follower of followers) follower.reset();
    }
  }

  /** Stops reading. Followers hear nothing more. */
  close(): void {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#wakeIdle?.();
    if (this.#armed) this.#unblock(this.#reads, false);
    for (const followers of this.#followers.values()) {
      for (const follower of followers) follower.close();
    }
  }

  /** `follower` may read on: the read in flight is sent again if it does not cover it. */
  wake(follower: StreamFollower): void {
    if (this.#closing.signal.aborted || follower.paused) return;
    if (!this.#armed) return this.#wakeIdle?.();
    const armed = this.#armed.get(follower.key);
    if (armed !== undefined && armed <= follower.nextLine - 1) return;
    this.#unblock(this.#reads, true);
  }

  /** A page of a log from line `from` on, on the command connection (see `catchUp()`). */
  async range(key: string, from: number): Promise<{ batches: LineBatch[]; full: boolean }> {
    const reply = await this.#commands.sendCommand([
      "XRANGE",
      key,
      entryId(from),
      "+",
      "COUNT",
      String(this.#count),
    ]);
    return { batches: entriesToBatches(reply), full: Array.isArray(reply) && reply.length >= this.#count };
  }

  /** @internal A follower closed. */
  forget(follower: StreamFollower): void {
    const followers = this.#followers.get(follower.key);
    followers?.delete(follower);
    if (followers?.size === 0) this.#followers.delete(follower.key);
  }

  async #run(): Promise<void> {
    const signal = this.#closing.signal;
    while (!signal.aborted) {
      const streams = this.#toRead();
      if (streams.size === 0) {
        await new Promise<void>((resolve) => this.#wakeIdle = resolve);
        this.#wakeIdle = undefined;
        continue;
      }
      let reply: unknown;
      // node-redis bounds no blocking command (Redis would block on after a client-side timeout): this does.
      // No answer by then, not even the block's own end, and no socket error: the connection died without telling.
      let lost = false;
      const deadline = setTimeout(() => {
        lost = this.#blocking.isReady;
        if (lost) RedisConnection.reset(this.#blocking);
      }, this.#blockMs + this.#marginMs);
      try {
        // Asked with every read, in the same round trip: after a reconnect the connection has another id.
        this.#clientId = this.#blocking.sendCommand(["CLIENT", "ID"]);
        this.#clientId.catch(() => {});
        this.#armed = streams;
        this.#reads++;
        reply = await this.#blocking.sendCommand([
          "XREAD",
          "COUNT",
          String(this.#count),
          "BLOCK",
          String(this.#blockMs),
          "STREAMS",
          ...streams.keys(),
          ...[...streams.values()].map(entryId),
        ]);
      } catch (error) {
        this.#armed = undefined;
        if (signal.aborted) break;
        await this.#afterFailure(error, lost);
        continue;
      } finally {
        clearTimeout(deadline);
      }
      this.#armed = undefined;
      if (signal.aborted) break;
      this.#deliver(reply, streams);
    }
  }

  /** The logs to read now and the cursor of each: the lowest of its followers that may read on. */
  #toRead(): Map<string, number> {
    const streams = new Map<string, number>();
    for (const [key, followers] of this.#followers) {
      for (const follower of followers) {
        if (follower.paused) continue;
        const cursor = follower.nextLine - 1;
        const lowest = streams.get(key);
        if (lowest === undefined || cursor < lowest) streams.set(key, cursor);
      }
    }
    return streams;
  }

  /** Hands the lines of a read to the followers of each log (the read was sent with the cursors `sent`). */
  #deliver(reply: unknown, sent: Map<string, number>): void {
    for (const [key, entries] of xreadStreams(reply)) {
      const followers = this.#followers.get(key);
      if (!followers) continue;
      const batches = entriesToBatches(entries);
      const after = sent.get(key) ?? Number.MAX_SAFE_INTEGER;
      for (const follower of followers) {
        try {
          for (const batch of batches) {
            if (follower.paused) break;
            if (follower.take(batch, after)) follower.pace();
          }
        } catch (error) {
          // A follower's own failure: the others, and the reader, go on.
          console.error(`shiplog: a follower of ${key} failed:`, error);
        }
      }
    }
  }

  /**
   * Ends read number `read` if it is still in flight. Redis may not have received that read yet when the
   * unblock arrives (they travel on two connections): then it tries again, a few milliseconds later, up to
   * {@linkcode UNBLOCK_TRIES} times; a read Redis still does not know of was lost with a blocking connection
   * that died without telling, which is made again.
   */
  async #unblock(read: number, retry: boolean): Promise<void> {
    if (this.#unblocking === read) return;
    this.#unblocking = read;
    const signal = this.#closing.signal;
    for (let tries = 1; this.#armed && this.#reads === read; tries++) {
      if (tries > UNBLOCK_TRIES) return RedisConnection.reset(this.#blocking);
      try {
        const id = await this.#clientId;
        const unblocked = await this.#commands.sendCommand(["CLIENT", "UNBLOCK", String(id)]);
        if (Number(unblocked) === 1 || !retry || signal.aborted) return;
      } catch {
        return; // Redis away: the read fails by itself, and is sent again once it is back.
      }
      await abortableDelay(5, signal);
    }
  }

  /** Waits after a failed read: until the blocking connection is back, or a while if it never went. */
  async #afterFailure(error: unknown, reconnecting: boolean): Promise<void> {
    const signal = this.#closing.signal;
    if (!this.#blocking.isReady || reconnecting) {
      // The blocking connection reconnects by itself; a timeout as well, in case its event was missed.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#blocking.off("ready", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, this.#retryMs);
        this.#blocking.on("ready", done);
        signal.addEventListener("abort", done);
      });
      return;
    }
    if (!this.#errorShown) {
      this.#errorShown = true;
      console.error("shiplog: reading the followed logs from Redis failed:", (error as Error).message);
    }
    await abortableDelay(this.#retryMs, signal);
  }
}

/** One follower of one log, fed by the reader (live lines) and by its own `catchUp()`. */
class StreamFollower implements LogFollower {
  readonly key: string;
  #reader: RedisLogReader;
  #handlers: LogFollowHandlers;
  #nextLine: number;
  #paused = false;
  #closed = false;

  constructor(reader: RedisLogReader, key: string, nextLine: number, handlers: LogFollowHandlers) {
    this.#reader = reader;
    this.key = key;
    this.#nextLine = nextLine;
    this.#handlers = handlers;
  }

  get nextLine(): number {
    return this.#nextLine;
  }

  /** Waiting for its pace: not read for until then. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Hands out the part of `batch` from the next line on; true if anything was. `after` is the cursor the read
   * was sent with: it returned every entry after it, so a batch that starts past the next line means lines
   * missing from the stream (deleted by hand), unless the read was sent from further on than this follower is
   * now (before a reset): then it is not used, and the reader reads again from the follower's cursor.
   */
  take(batch: LineBatch, after: number): boolean {
    if (this.#closed || batch.end < this.#nextLine) return false;
    if (batch.firstLine > this.#nextLine && after > this.#nextLine - 1) return false;
    const from = batchFrom(batch, this.#nextLine);
    this.#nextLine = batch.end + 1;
    // A copy when it is the whole batch: every follower of the log is handed the same entries.
    this.#handlers.onLines(from === batch ? { ...batch } : from);
    return true;
  }

  /** After lines were handed out: if the follower says to wait, nothing more is read for it until then. */
  pace(): void {
    const wait = this.#handlers.pace?.();
    if (!wait) return;
    this.#paused = true;
    const resume = () => {
      this.#paused = false;
      if (!this.#closed) this.#reader.wake(this);
    };
    wait.then(resume, resume);
  }

  async catchUp(): Promise<void> {
    while (!this.#closed) {
      const after = this.#nextLine - 1;
      const { batches, full } = await this.#reader.range(this.key, after + 1);
      for (const batch of batches) this.take(batch, after);
      if (!full) return;
      await this.#handlers.pace?.();
    }
  }

  /** The log is gone: the follower is told, and reads from line 1. */
  reset(): void {
    if (this.#closed) return;
    this.#nextLine = 1;
    this.#handlers.onReset();
    this.#reader.wake(this);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.forget(this);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (its timer cleared). */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
