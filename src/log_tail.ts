/**
 * @module
 * Follows one log file the way `tail -f` does, and knows nothing but files: woken by the directory watcher, it
 * reads from the last byte offset to the end in large chunks and reports only complete lines, numbered. It
 * notices when the file shrank, disappeared or was replaced (another inode) and reports a reset.
 */

import { LineSplitter } from "./line_splitter.ts";
import type { LineBatch, LogFollower, LogFollowHandlers } from "./log_store.ts";

const CHUNK_BYTES = 1024 * 1024;
/** The most one synchronous pass reads before it lets the event loop run. */
const PASS_BYTES = 4 * CHUNK_BYTES;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Follows appended lines of one file, from its end at {@linkcode LogTail.open}. */
export class LogTail implements LogFollower {
  #path: string;
  #handlers: LogFollowHandlers;
  #file: Deno.FsFile | undefined;
  #inode: number | null = null;
  #offset = 0;
  #nextLine = 1;
  #splitter = new LineSplitter();
  #reading: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  #closed = false;

  private constructor(path: string, handlers: LogFollowHandlers) {
    this.#path = path;
    this.#handlers = handlers;
  }

  /** Opens `path` and skips what it holds now, so that only lines appended from here on are reported. */
  static async open(path: string, handlers: LogFollowHandlers): Promise<LogTail> {
    const tail = new LogTail(path, handlers);
    while (tail.#readPass(false)) await yieldToEventLoop();
    return tail;
  }

  get nextLine(): number {
    return this.#nextLine;
  }

  /**
   * Reads what is new and hands it to `onLines`; resolves once everything up to the end has been handed out.
   * A wake-up while a read runs is folded into one more pass after it.
   */
  catchUp(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#reading;
    }
    // A flag, not the promise, says whether a read runs: a read with nothing to wait for is over before
    // `#reading` is even assigned.
    this.#running = true;
    this.#reading = (async () => {
      try {
        do {
          this.#again = false;
          while (this.#readPass(true) && !this.#closed) await yieldToEventLoop();
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = false;
      }
    })();
    return this.#reading;
  }

  close(): void {
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  // Synchronous on purpose: a wake-up reads a few bytes of a local file, and an async stat and read each cost a
  // round trip through the runtime's thread pool, which measured as most of the delay and CPU of a live line.
  // A pass reads at most PASS_BYTES, so a huge append cannot hold the event loop: true when more is waiting.
  #readPass(report: boolean): boolean {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.#path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      if (this.#inode !== null || this.#offset > 0) this.#reset(report);
      return false;
    }
    // Not a regular file (a FIFO would block the whole server on open; a device never ends): treat as missing.
    if (!info.isFile) {
      if (this.#inode !== null || this.#offset > 0) this.#reset(report);
      return false;
    }
    if (this.#closed) return false;
    if (this.#file && (info.ino !== this.#inode || info.size < this.#offset)) this.#reset(report);
    if (!this.#file) {
      this.#file = Deno.openSync(this.#path, { read: true });
      if (this.#closed) {
        this.close();
        return false;
      }
      this.#inode = info.ino;
    }
    // Read what the stat saw, no more: bytes appended since come with their own wake-up.
    let remaining = Math.min(info.size - this.#offset, PASS_BYTES);
    while (remaining > 0 && !this.#closed) {
      const buffer = new Uint8Array(Math.min(remaining, CHUNK_BYTES));
      const read = this.#file.readSync(buffer);
      if (read === null) break;
      this.#offset += read;
      remaining -= read;
      const lines = this.#splitter.push(buffer.subarray(0, read));
      if (lines.length === 0) continue;
      const batch: LineBatch = {
        firstLine: this.#nextLine,
        lines,
        end: this.#offset - this.#splitter.pendingBytes,
      };
      this.#nextLine += lines.length;
      if (report) this.#handlers.onLines(batch);
    }
    return !this.#closed && info.size > this.#offset;
  }

  #reset(report: boolean): void {
    this.#file?.close();
    this.#file = undefined;
    this.#inode = null;
    this.#offset = 0;
    this.#nextLine = 1;
    this.#splitter = new LineSplitter();
    if (report) this.#handlers.onReset();
  }
}
