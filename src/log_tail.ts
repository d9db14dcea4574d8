/**
 * @module
 * Follows one log file the way `tail -f` does, and knows nothing but files: woken by the directory watcher, it
 * reads from the last byte offset to the end in large chunks and reports only complete lines, numbered. It
 * notices when the file shrank, disappeared or was replaced (another inode) and reports a reset.
 */

import { LineSplitter } from "./line_splitter.ts";
import type { LineBatch, LogFollower, LogFollowHandlers } from "./log_store.ts";

const CHUNK_BYTES = 1024 * 1024;

/** Follows appended lines of one file, from its end at {@linkcode LogTail.open}. */
export class LogTail implements LogFollower {
  #path: string;
  #handlers: LogFollowHandlers;
  #file: Deno.FsFile | undefined;
  #inode: number | null = null;
  #offset = 0;
  #nextLine = 1;
  #splitter = new LineSplitter();
  #closed = false;

  private constructor(path: string, handlers: LogFollowHandlers) {
    this.#path = path;
    this.#handlers = handlers;
  }

  /** Opens `path` and skips what it holds now, so that only lines appended from here on are reported. */
  static open(path: string, handlers: LogFollowHandlers): LogTail {
    const tail = new LogTail(path, handlers);
    tail.#readToEnd(false);
    return tail;
  }

  get nextLine(): number {
    return this.#nextLine;
  }

  /** Reads what is new and hands it to `onLines` before it resolves (the reading itself is synchronous). */
  catchUp(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    try {
      this.#readToEnd(true);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  close(): void {
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  // Synchronous on purpose: a wake-up reads a few bytes of a local file, and an async stat and read each cost a
  // round trip through the runtime's thread pool, which measured as most of the delay and CPU of a live line.
  // Being synchronous, two reads can never overlap, so wake-ups need no coordination.
  #readToEnd(report: boolean): void {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.#path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      if (this.#inode !== null || this.#offset > 0) this.#reset(report);
      return;
    }
    // Not a regular file (a FIFO would block the whole server on open; a device never ends): treat as missing.
    if (!info.isFile) {
      if (this.#inode !== null || this.#offset > 0) this.#reset(report);
      return;
    }
    if (this.#closed) return;
    if (this.#file && (info.ino !== this.#inode || info.size < this.#offset)) this.#reset(report);
    if (!this.#file) {
      this.#file = Deno.openSync(this.#path, { read: true });
      if (this.#closed) return this.close();
      this.#inode = info.ino;
    }
    // Read what the stat saw, no more: bytes appended since come with their own wake-up.
    let remaining = info.size - this.#offset;
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
