/**
 * @module
 * The {@linkcode LogStore} of a cluster: deployments kept in the Redis that every instance shares. A record is
 * the JSON string `P:deployment:<id>`, indexed by the sorted set `P:deployments` (score: created at, in ms);
 * each write and delete is announced on the channel `P:changes` by the same script call. A log is the stream
 * `P:log:<id>` (entry id `<line>-0`, fields `l` the text, `t` its time, `e` 1 for stderr) beside the hash
 * `P:log:<id>:info` (`lines`, `bytes`, `writtenAt`), so a cursor is a line number. `P:epoch` tells whether Redis kept its data across a restart.
 * The atomic parts are the Lua scripts in `redis_scripts/`; appends go through {@linkcode RedisAppender}, and
 * every follower of the instance shares the one {@linkcode RedisLogReader}.
 */

import type { RedisClient, RedisConnection } from "../redis/redis_connection.ts";
import { RedisScript } from "../redis/redis_script.ts";
import { type Deployment, isFinal, parseDeployment } from "./deployment.ts";
import {
  type AppenderOptions,
  type LineBatch,
  type LogAppender,
  type LogFollower,
  type LogFollowHandlers,
  type LogStore,
  type ReadLinesOptions,
  RecordEndedError,
} from "./log_store.ts";
import { RedisAppender } from "./redis_appender.ts";
import { entriesToBatches, entryId } from "./redis_log_entries.ts";
import { RedisLogReader } from "./redis_log_reader.ts";

/** Options of {@linkcode RedisStore.open}. */
export interface RedisStoreOptions {
  /** The most output one appender keeps while Redis is away (see `RedisAppender`). Default 16 MiB. */
  maxBufferBytes?: number;
  /** While output is kept, writing it is tried again this often, besides when Redis is back, in ms. Default 1000. */
  retryMs?: number;
  /** The longest one blocking read of the followed logs waits before it is sent again, in ms. Default 10000. */
  blockMs?: number;
  /** The most lines one read (`XRANGE`, `XREAD`) returns. Default 1000. */
  pageLines?: number;
  /**
   * Milliseconds between two looks at the epoch while Redis is up: a Redis emptied without a reconnection
   * (`FLUSHALL`, a failover to an empty replica) is noticed within this. Default 5000.
   */
  epochCheckMs?: number;
}

/**
 * The Lua functions that append to a log (`log_lines.lua`), for the scripts that write lines: `append.lua`, and
 * those of the runs that end a deployment with a notice in its log in the same step.
 */
export const LOG_LINES_SCRIPT = new URL("./redis_scripts/log_lines.lua", import.meta.url);

/**
 * The longest a record's end waits for the output its appenders kept while Redis was away: an end written
 * first would tell viewers elsewhere `done` before those lines. The whole buffer (16 MiB) takes about a second
 * to write; this leaves room for a slow Redis.
 */
const FLUSH_WAIT_MS = 10_000;
/** How many records one `MGET` reads. */
const RECORDS_PER_READ = 500;
const encoder = new TextEncoder();

/**
 * Deployments kept in Redis. Dispatches `epoch` (a plain `Event`) when Redis turned out to have lost its data
 * (after a restart without persistence): every follower was told `onReset()`, and the records are gone, so
 * whoever keeps records in memory writes them again. The store does not own the connection: closing the store
 * leaves it open, and one connection serves one store (it hands out its blocking connection once).
 */
export class RedisStore extends EventTarget implements LogStore {
  #connection: RedisConnection;
  #commands: RedisClient;
  #options: RedisStoreOptions;
  #scripts: Scripts;
  #reader: RedisLogReader;
  #epoch: string;
  #appenders = new Set<RedisAppender>();
  #checking: Promise<void> = Promise.resolve();
  #onUp = () => this.#whenUp();
  #epochTimer: ReturnType<typeof setInterval>;
  #closed = false;

  private constructor(
    connection: RedisConnection,
    blocking: RedisClient,
    scripts: Scripts,
    epoch: string,
    options: RedisStoreOptions,
  ) {
    super();
    this.#connection = connection;
    this.#commands = connection.commands;
    this.#options = options;
    this.#scripts = scripts;
    this.#epoch = epoch;
    this.#reader = new RedisLogReader(blocking, connection.commands, {
      blockMs: options.blockMs,
      count: options.pageLines,
      retryMs: options.retryMs,
    });
    connection.addEventListener("up", this.#onUp);
    this.#epochTimer = setInterval(() => {
      if (connection.problem !== undefined) return; // The `up` looks.
      this.#checking = this.#checking.then(() => this.#checkEpoch()).catch(() => {});
    }, options.epochCheckMs ?? 5000);
  }

  /**
   * Opens the store on `connection`: notes the epoch (`SET P:epoch <random> NX`, then reads the one that
   * holds) and takes the connection's blocking connection for the followers. Rejects if Redis cannot be
   * reached.
   */
  static async open(connection: RedisConnection, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const [append, save, remove] = await Promise.all(
      ["append", "save", "remove"].map((name) =>
        RedisScript.load(new URL(`./redis_scripts/${name}.lua`, import.meta.url), {
          include: name === "append" ? [LOG_LINES_SCRIPT] : [],
        })
      ),
    );
    const epoch = await agreeOnEpoch(connection);
    const blocking = await connection.blocking();
    return new RedisStore(connection, blocking, { append, save, remove }, epoch, options);
  }

  /** The epoch this store knows Redis by: another one in Redis means it lost its data since. */
  get epoch(): string {
    return this.#epoch;
  }

  async list(): Promise<Deployment[]> {
    const ids =
      (await this.#commands.sendCommand(["ZRANGE", this.#key("deployments"), "0", "-1"])) as string[];
    const deployments: Deployment[] = [];
    for (let start = 0; start < ids.length; start += RECORDS_PER_READ) {
      const chunk = ids.slice(start, start + RECORDS_PER_READ);
      const texts = (await this.#commands.sendCommand(
        ["MGET", ...chunk.map((id) => this.#key("deployment", id))],
      )) as (string | null)[];
      texts.forEach((text, i) => {
        if (text === null) return; // deleted since the index was read
        const record = parseDeployment(text);
        if (record?.id === chunk[i]) deployments.push(record);
        else console.error(`shiplog: ignoring the record of ${chunk[i]} in Redis: not a deployment record`);
      });
    }
    return deployments;
  }

  async save(deployment: Deployment): Promise<void> {
    // An end is written after the output kept while Redis was away: viewers end at the end, after the last line.
    if (isFinal(deployment.status)) await this.#outputWritten(deployment.id);
    const reply = await this.#scripts.save.run(
      this.#commands,
      [this.#key("deployment", deployment.id), this.#key("deployments")],
      [
        JSON.stringify(deployment),
        deployment.id,
        String(Date.parse(deployment.createdAt)),
        this.#key("changes"),
      ],
    );
    if (reply === 1) return;
    const stored = parseDeployment(String(reply));
    throw stored
      ? new RecordEndedError(stored)
      : new Error(`Cannot save deployment ${deployment.id}: ${reply}`);
  }

  // deno-lint-ignore require-await -- the interface's: nothing to ask Redis before the first write
  async openAppender(id: string, options: AppenderOptions = {}): Promise<LogAppender> {
    if (this.#closed) throw new Error(`Cannot append to the log of ${id}: the store is closed`);
    const keys = [this.#key("log", id), this.#key("log", id, "info"), this.#key("deployment", id)];
    const appender: RedisAppender = new RedisAppender(
      async (token, sequence, lines, times, stderr) => {
        const reply = await this.#scripts.append.run(this.#commands, keys, [
          token,
          String(sequence),
          times.map((time) => Math.max(0, Math.round(time))).join(","),
          stderr.map((line) => line ? "1" : "0").join(""),
          ...lines,
        ]);
        if (typeof reply === "number") return reply;
        // The deployment has ended (in its stored record): its log takes nothing more.
        const stored = parseDeployment(String(reply));
        throw stored
          ? new RecordEndedError(stored)
          : new Error(`Cannot append to the log of ${id}: ${reply}`);
      },
      {
        name: id,
        maxBufferBytes: this.#options.maxBufferBytes,
        retryMs: this.#options.retryMs,
        bufferWhileAway: options.bufferWhileAway,
        onDone: () => {
          this.#appenders.delete(appender);
          // Its field in the info hash (the last call it made, for retries) is of no more use.
          this.#commands.sendCommand(["HDEL", keys[1], `a:${appender.token}`]).catch(() => {});
        },
      },
    );
    this.#appenders.add(appender);
    return appender;
  }

  readLines(id: string, afterLine: number, options: ReadLinesOptions = {}): AsyncIterable<LineBatch> {
    // A cursor (`from`) is the last line's number, which `afterLine` says already.
    return this.#readLines(this.#key("log", id), afterLine, options.signal);
  }

  async countLines(id: string): Promise<number> {
    return Number(await this.#commands.sendCommand(["HGET", this.#key("log", id, "info"), "lines"]) ?? 0);
  }

  async follow(id: string, handlers: LogFollowHandlers): Promise<LogFollower> {
    // Lines appended between the count and the first read are after the cursor: the read returns them.
    const lines = await this.countLines(id);
    return this.#reader.follow(this.#key("log", id), lines + 1, handlers);
  }

  async lastWrittenAt(id: string): Promise<Date | undefined> {
    const writtenAt = await this.#commands.sendCommand(["HGET", this.#key("log", id, "info"), "writtenAt"]);
    return writtenAt === null || writtenAt === undefined ? undefined : new Date(Number(writtenAt));
  }

  async byteLength(id: string): Promise<number> {
    return Number(await this.#commands.sendCommand(["HGET", this.#key("log", id, "info"), "bytes"]) ?? 0);
  }

  async remove(id: string): Promise<void> {
    await this.#scripts.remove.run(
      this.#commands,
      [
        this.#key("deployment", id),
        this.#key("deployments"),
        this.#key("log", id),
        this.#key("log", id, "info"),
      ],
      [id, this.#key("changes")],
    );
  }

  // deno-lint-ignore require-await -- the interface's; the stream reads page by page as it is read
  async readRaw(id: string): Promise<ReadableStream<Uint8Array>> {
    const pages: AsyncGenerator<LineBatch> = this.#readLines(this.#key("log", id), 0)[Symbol.asyncIterator]();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await pages.next();
        if (next.done) return controller.close();
        controller.enqueue(encoder.encode(next.value.lines.join("\n") + "\n"));
      },
      async cancel() {
        await pages.return?.(undefined);
      },
    }, { highWaterMark: 0 });
  }

  /** Stops the reader and the appenders' retries (what they still keep is lost); the connection stays open. */
  // deno-lint-ignore require-await -- the interface's
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.removeEventListener("up", this.#onUp);
    clearInterval(this.#epochTimer);
    this.#reader.close();
    for (const appender of this.#appenders) appender.stop();
    this.#appenders.clear();
  }

  async *#readLines(key: string, afterLine: number, signal?: AbortSignal): AsyncGenerator<LineBatch> {
    const count = this.#options.pageLines ?? 1000;
    for (let after = afterLine; !signal?.aborted;) {
      const reply = await this.#commands.sendCommand([
        "XRANGE",
        key,
        entryId(after + 1),
        "+",
        "COUNT",
        String(count),
      ]);
      for (const batch of entriesToBatches(reply)) {
        yield batch;
        after = batch.end;
      }
      if (!Array.isArray(reply) || reply.length < count) return;
    }
  }

  /**
   * Waits, while Redis can be reached and at most `FLUSH_WAIT_MS`, until the appenders of deployment `id` have
   * written what they kept.
   */
  async #outputWritten(id: string): Promise<void> {
    const waits = [...this.#appenders].filter((appender) => appender.name === id).map((a) => a.whenWritten());
    if (waits.length === 0 || this.#connection.problem !== undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(waits),
      new Promise((resolve) => timer = setTimeout(resolve, FLUSH_WAIT_MS)),
    ]);
    clearTimeout(timer);
  }

  /** Redis is back: first whether it kept its data, then the followers read on and the appenders write. */
  #whenUp(): void {
    this.#checking = this.#checking.then(async () => {
      if (this.#closed) return;
      try {
        await this.#checkEpoch();
      } catch {
        // Away again already: the next `up` checks.
      }
      if (this.#closed) return;
      for (const appender of this.#appenders) appender.retry();
    });
  }

  /** Reads the epoch again: missing or another one, Redis lost its data (or another instance saw it first). */
  async #checkEpoch(): Promise<void> {
    if (this.#closed) return;
    const current = await this.#commands.sendCommand(["GET", this.#key("epoch")]);
    if (String(current) === this.#epoch) return;
    this.#epoch = await agreeOnEpoch(this.#connection);
    if (this.#closed) return;
    this.#reader.reset();
    this.dispatchEvent(new Event("epoch"));
  }

  #key(...parts: string[]): string {
    return this.#connection.key(...parts);
  }
}

interface Scripts {
  append: RedisScript;
  save: RedisScript;
  remove: RedisScript;
}

/** Sets an epoch if there is none, and returns the one that holds (another instance's, if it was first). */
async function agreeOnEpoch(connection: RedisConnection): Promise<string> {
  const mine = crypto.randomUUID();
  const before = await connection.commands.sendCommand(["SET", connection.key("epoch"), mine, "NX", "GET"]);
  return before === null || before === undefined ? mine : String(before);
}
