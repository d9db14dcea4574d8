/**
 * @module
 * Appends to one log in Redis, and keeps a deployment's output while Redis is away: a write never hangs or
 * throws into the deploy's output pipe. Lines go out in script calls of a bounded size, each one atomic, one
 * at a time and in order. A call that fails is kept, with its lines and the writes after it, in a bounded
 * buffer, and sent again (the same call: the script recognises one that got through before its answer was
 * lost) when Redis is back or at the next retry. Past the bound, output is dropped and one notice line says
 * how much, in its place in the log. A call refused because the deployment has ended (another instance recorded
 * it interrupted while this one was cut off) ends the appender: what it keeps is dropped, and every write from
 * then on rejects. The engine itself (the script call) is given, so this module knows only batches, order and
 * the buffer.
 */

import { type LogAppender, RecordEndedError, StoreUnavailableError, type WriteOptions } from "./log_store.ts";

/**
 * Writes `lines` in one atomic call and resolves with the number of the first (see `append.lua`); rejects with
 * {@linkcode RecordEndedError} when the deployment has ended, having written nothing. `times` and `stderr` are
 * each line's (see {@linkcode WriteOptions}).
 */
export type AppendCall = (
  token: string,
  sequence: number,
  lines: string[],
  times: number[],
  stderr: boolean[],
) => Promise<number>;

/** Options of {@linkcode RedisAppender}. */
export interface RedisAppenderOptions {
  /** What the log is called in messages. */
  name: string;
  /**
   * The most output kept while Redis is away, counted as UTF-16 code units plus one per line (what the lines
   * take in memory, about their bytes for ASCII). Default 16 MiB.
   */
  maxBufferBytes?: number;
  /** While output is kept, a write is tried again this often even without `retry()`, in ms. Default 1000. */
  retryMs?: number;
  /** The most lines in one script call. Default 1000. */
  maxCallLines?: number;
  /** The most output in one script call, counted as `maxBufferBytes` is. Default 1 MiB. */
  maxCallBytes?: number;
  /** Keep lines while Redis is away (true, default), or reject the write (false): see `AppenderOptions`. */
  bufferWhileAway?: boolean;
  /** Called once the appender is closed and has nothing left to write. */
  onDone?: () => void;
}

/** One `write()` (or one notice of dropped output), in the queue until all of its lines are written. */
interface Write {
  lines: string[];
  /** When its lines were first seen, in epoch ms. */
  time: number;
  stderr: boolean;
  /** How many of its lines are written (only the queue's first write may be part written). */
  written: number;
  size: number;
  /** The number of its first line, once known. */
  firstLine: number;
  settled: boolean;
  resolve(firstLine: number): void;
  reject(error: unknown): void;
  /** A notice of dropped output, still counting (its line is made when it is sent). */
  dropped?: { lines: number; bytes: number };
}

/** One script call, kept until it got through: a retry sends it again as it was. */
interface Call {
  sequence: number;
  lines: string[];
  times: number[];
  stderr: boolean[];
  parts: { write: Write; start: number; count: number }[];
}

const MiB = 1024 * 1024;

/** Appends the lines of one writer to one log, in order. */
export class RedisAppender implements LogAppender {
  #append: AppendCall;
  #name: string;
  #maxBufferBytes: number;
  #retryMs: number;
  #maxCallLines: number;
  #maxCallBytes: number;
  #buffered: boolean;
  #onDone: (() => void) | undefined;
  /** Tells this appender's calls apart from any other's, so that a retried call is written once. */
  #token = crypto.randomUUID();
  #sequence = 0;
  #queue: Write[] = [];
  #queuedSize = 0;
  #call: Call | undefined;
  #sending = false;
  /** A call failed and none got through since: writes are kept and resolve at once. */
  #away = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #stopped = false;
  /** The refusal of a call: the deployment has ended, and its log takes nothing more. */
  #ended: RecordEndedError | undefined;
  /** Those waiting for the queue to be empty. */
  #drainWaiters: (() => void)[] = [];

  constructor(call: AppendCall, options: RedisAppenderOptions) {
    this.#append = call;
    this.#name = options.name;
    this.#maxBufferBytes = options.maxBufferBytes ?? 16 * MiB;
    this.#retryMs = options.retryMs ?? 1000;
    this.#maxCallLines = options.maxCallLines ?? 1000;
    this.#maxCallBytes = options.maxCallBytes ?? MiB;
    this.#buffered = options.bufferWhileAway ?? true;
    this.#onDone = options.onDone;
  }

  /** This appender's token, the field `a:<token>` of the log's info hash while it lives. */
  get token(): string {
    return this.#token;
  }

  /** What the log is called in messages: the deployment's id. */
  get name(): string {
    return this.#name;
  }

  /** Resolves once nothing is waiting to be written (or the appender stopped). */
  whenWritten(): Promise<void> {
    if (this.#queue.length === 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Resolves with the first line's number once written. While Redis is away (a call failed and none got
   * through since) it resolves at once with 0 and keeps the lines, or, past the bound, drops them; without
   * `bufferWhileAway` it rejects with {@linkcode StoreUnavailableError} instead. Once the deployment has ended
   * (a call was refused), it rejects with {@linkcode RecordEndedError}, as do the writes of that call and those
   * waiting behind it.
   */
  write(lines: string[], options: WriteOptions = {}): Promise<number> {
    const time = options.time ?? Date.now();
    const stderr = options.stderr === true;
    if (this.#ended) return Promise.reject(this.#ended);
    if (this.#closed || this.#stopped) {
      return Promise.reject(new Error(`Cannot write to the log of ${this.#name}: its appender is closed`));
    }
    let size = lines.length;
    for (const line of lines) size += line.length;
    // Once output is dropped, all of it is until the buffer is written (and with it the notice): one notice.
    const dropping = this.#queue.at(-1)?.dropped !== undefined;
    if (
      this.#buffered && (dropping || this.#queuedSize + size > this.#maxBufferBytes && this.#queue.length > 0)
    ) {
      this.#drop(lines, time);
      return Promise.resolve(0);
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const write: Write = {
      lines,
      time,
      stderr,
      written: 0,
      size,
      firstLine: 0,
      settled: false,
      resolve,
      reject,
    };
    this.#queue.push(write);
    this.#queuedSize += size;
    if (this.#away) {
      write.settled = true;
      resolve(0);
    } else {
      this.#send();
    }
    return promise;
  }

  /** Writes no more lines; those kept are still written, unless the store stops first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#sending && this.#queue.length === 0) this.#done();
  }

  /** Tries at once to write what is kept (Redis is back). */
  retry(): void {
    if (this.#queue.length === 0 || this.#sending) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#send();
  }

  /** Gives up (the store closes): what is still kept is lost, and said so, once. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    let lost = 0;
    for (const write of this.#queue) {
      lost += write.lines.length - write.written;
      if (!write.settled) {
        write.settled = true;
        write.resolve(0);
      }
    }
    if (lost > 0) {
      console.error(
        `shiplog: ${lost} lines of the log of ${this.#name} were not written: Redis was unreachable`,
      );
    }
  }

  /** Sends calls until the queue is empty or one fails. */
  async #send(): Promise<void> {
    if (this.#sending || this.#stopped) return;
    this.#sending = true;
    try {
      while (!this.#stopped) {
        const call = this.#call ??= this.#nextCall();
        if (!call) break;
        let firstLine: number;
        try {
          firstLine = await this.#append(this.#token, call.sequence, call.lines, call.times, call.stderr);
        } catch (error) {
          if (this.#stopped) return;
          if (error instanceof RecordEndedError) {
            this.#end(error);
            break;
          }
          if (this.#buffered) return this.#keep();
          this.#refuse(call, error);
          continue;
        }
        this.#call = undefined;
        this.#away = false;
        this.#written(call, firstLine);
      }
    } finally {
      this.#sending = false;
    }
    if (this.#queue.length === 0) this.#drained();
    if (this.#closed && this.#queue.length === 0) this.#done();
  }

  /** The next call: the first write's next lines, and the writes after it that fit whole. */
  #nextCall(): Call | undefined {
    const head = this.#queue[0];
    if (!head) return undefined;
    const lines: string[] = [];
    const times: number[] = [];
    const stderr: boolean[] = [];
    const parts: Call["parts"] = [];
    let size = 0;
    for (const write of this.#queue) {
      if (write.dropped) this.#seal(write);
      if (parts.length === 0) {
        // The first write goes in as far as the bounds allow (at least one line): one bigger than a call is
        // split, each of its calls atomic. Not so without a buffer (a request's lines, bounded by the request's
        // size): a write split in two could have another's lines between its halves, or half of it written
        // and the whole refused, so that a retry repeats the first half.
        const start = write.written;
        let end = start;
        for (; end < write.lines.length; end++) {
          const lineSize = write.lines[end].length + 1;
          const full = end - start >= this.#maxCallLines || size + lineSize > this.#maxCallBytes;
          if (end > start && this.#buffered && full) {
            break;
          }
          size += lineSize;
          lines.push(write.lines[end]);
          times.push(write.time);
          stderr.push(write.stderr);
        }
        parts.push({ write, start, count: end - start });
        if (end < write.lines.length) break;
        continue;
      }
      // The others whole or not at all: a write is never cut in two just because another came before it.
      if (lines.length + write.lines.length > this.#maxCallLines || size + write.size > this.#maxCallBytes) {
        break;
      }
      size += write.size;
      for (const line of write.lines) {
        lines.push(line);
        times.push(write.time);
        stderr.push(write.stderr);
      }
      parts.push({ write, start: 0, count: write.lines.length });
    }
    return { sequence: ++this.#sequence, lines, times, stderr, parts };
  }

  /** A call got through: its writes are told their numbers, and those done leave the queue. */
  #written(call: Call, firstLine: number): void {
    let line = firstLine;
    for (const { write, start, count } of call.parts) {
      if (start === 0) write.firstLine = line;
      line += count;
      write.written = start + count;
      if (write.written < write.lines.length) continue;
      this.#queue.shift();
      this.#queuedSize -= write.size;
      if (!write.settled) {
        write.settled = true;
        write.resolve(write.firstLine);
      }
    }
  }

  /** Redis is away: every waiting write resolves now, and the kept lines are tried again later. */
  #keep(): void {
    this.#away = true;
    for (const write of this.#queue) {
      if (write.settled) continue;
      write.settled = true;
      write.resolve(0);
    }
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#send();
    }, this.#retryMs);
  }

  /** Without a buffer, the writes of a failed call fail, and are not kept. */
  #refuse(call: Call, error: unknown): void {
    this.#call = undefined;
    const failure = new StoreUnavailableError(
      `Cannot write to the log of ${this.#name}: Redis cannot be reached (${(error as Error).message})`,
      { cause: error },
    );
    for (const { write } of call.parts) {
      this.#queue.splice(this.#queue.indexOf(write), 1);
      this.#queuedSize -= write.size;
      if (!write.settled) {
        write.settled = true;
        write.reject(failure);
      }
    }
  }

  /**
   * The deployment has ended: nothing more is written. Waiting writes reject; those resolved already (kept while
   * Redis was away) cannot be told, so their loss is said once.
   */
  #end(error: RecordEndedError): void {
    this.#ended = error;
    this.#call = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    let lost = 0;
    for (const write of this.#queue) {
      if (!write.settled) {
        write.settled = true;
        write.reject(error);
      } else {
        lost += write.dropped?.lines ?? write.lines.length - write.written;
      }
    }
    this.#queue = [];
    this.#queuedSize = 0;
    if (lost > 0) {
      console.error(
        `shiplog: ${lost} lines of the log of ${this.#name} were not written: ` +
          `the deployment ended (${error.stored.status}) before they could be`,
      );
    }
  }

  /** Output past the bound: counted on the notice at the end of the queue (a new one if that is not one). */
  #drop(lines: string[], time: number): void {
    let last = this.#queue.at(-1);
    if (!last?.dropped) {
      // The notice is seen when the first line it counts was: where that line would have been.
      last = {
        lines: [],
        time,
        stderr: false,
        written: 0,
        size: 0,
        firstLine: 0,
        settled: true,
        resolve: () => {},
        reject: () => {},
        dropped: { lines: 0, bytes: 0 },
      };
      this.#queue.push(last);
    }
    last.dropped!.lines += lines.length;
    for (const line of lines) last.dropped!.bytes += utf8Length(line) + 1;
  }

  /** A notice about to be sent stops counting: what is dropped after it gets a notice of its own. */
  #seal(notice: Write): void {
    const { lines, bytes } = notice.dropped!;
    notice.dropped = undefined;
    notice.lines = [
      `[shiplog] Redis was unreachable: ${lines} lines (${bytes} bytes) of output were dropped`,
    ];
    notice.size = notice.lines[0].length + 1;
    this.#queuedSize += notice.size;
  }

  #drained(): void {
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  #done(): void {
    clearTimeout(this.#retryTimer);
    const onDone = this.#onDone;
    this.#onDone = undefined;
    onDone?.();
  }
}

/** The bytes of `text` in UTF-8 (a lone surrogate as U+FFFD, 3 bytes, as `TextEncoder` writes it). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else bytes += 3;
  }
  return bytes;
}
