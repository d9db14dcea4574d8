/**
 * @module
 * Follows one log file the way `tail -f` does, and knows nothing but files: woken by the directory watcher, it
 * reads from the last byte offset to the end and reports only complete lines, numbered. It notices when the
 * file shrank, disappeared or was replaced (another inode) and reports a reset.
 */

import { setImmediate } from "node:timers";
import type { Change } from "./dir_watcher.ts";
import { type Checkpoint, CHECKPOINT_BYTES, holdsBefore } from "./line_index.ts";
import { LineSplitter } from "./line_splitter.ts";
import { lstatOrUndefined, openRegularFile, type Refused, type RegularFile } from "./regular_file.ts";
import type { LineBatch, LogFollower, LogFollowHandlers } from "./log_store.ts";

/**
 * The most one synchronous pass reads before it lets the event loop run, so that a burst reaches viewers in
 * pieces they can start on (and a huge append cannot hold the server) instead of all at once at the end.
 * Under V8's 128 KiB large-object size, like the pieces of a replay (see `READ_CHUNK_BYTES` in the store).
 */
const PASS_BYTES = 64 * 1024;
/**
 * The last bytes read, read again before reading on: if they changed, the file was rewritten in place (`>`,
 * the same inode, maybe longer than before by the time the tail looks), and the lines handed out are gone.
 */
const CHECK_BYTES = CHECKPOINT_BYTES;
/** One buffer for every tail: a pass is synchronous and the splitter copies what it keeps. */
const passBuffer = new Uint8Array(CHECK_BYTES + PASS_BYTES);

/**
 * True for the errors of a log that is not there to read: missing, or unreadable (its mode, a symlink loop).
 * Such a log reads as empty, as a missing one does: viewers get an empty log and `done`, not a 500 or a stream
 * that ends without a word.
 */
export function isMissingLog(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.FilesystemLoop;
}

/** A turn of the event loop, so sockets get written. setTimeout(0) would do, but nested it waits 4 ms a turn. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Follows appended lines of one file, from its end at {@linkcode LogTail.open}. */
export class LogTail implements LogFollower {
  #path: string;
  #handlers: LogFollowHandlers;
  #file: Deno.FsFile | undefined;
  #inode: number | null = null;
  #offset = 0;
  /** The last bytes read, which end at #offset: `#seen[0, #seenLength)`. */
  #seen = new Uint8Array(CHECK_BYTES);
  #seenLength = 0;
  /** The bytes before the last complete line's end (#offset minus the unfinished line): `#lineSeen[0, length)`. */
  #lineSeen = new Uint8Array(CHECK_BYTES);
  #lineSeenLength = 0;
  #nextLine = 1;
  #splitter = new LineSplitter();
  #reading: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  /** Whether a wake-up during the running read may have been more than appended data. */
  #againAny = false;
  #closed = false;
  /** Where the file (this inode) is known to have had a line end: the first read skips to it. */
  #from: Checkpoint & { inode: number | null } | undefined;

  private constructor(path: string, handlers: LogFollowHandlers) {
    this.#path = path;
    this.#handlers = handlers;
  }

  /**
   * Opens `path` and skips what it holds now, so that only lines appended from here on are reported. With
   * `from`, a checkpoint of the same file, it counts the lines only after that (checking the bytes before it).
   */
  static async open(
    path: string,
    handlers: LogFollowHandlers,
    from?: Checkpoint & { inode: number | null },
  ): Promise<LogTail> {
    const tail = new LogTail(path, handlers);
    tail.#from = from;
    while (tail.#readPass(false, "any")) await yieldToEventLoop();
    tail.#from = undefined;
    return tail;
  }

  /** Where the last complete line read ends, for a later open to start at; undefined near the start. */
  get checkpoint(): Checkpoint & { inode: number | null } | undefined {
    if (this.#lineSeenLength < CHECK_BYTES) return undefined;
    return {
      inode: this.#inode,
      line: this.#nextLine - 1,
      offset: this.#lineEnd,
      before: this.#lineSeen.slice(),
    };
  }

  /** Where the last complete line ends: what was handed out is the file up to here. */
  get #lineEnd(): number {
    return this.#offset - this.#splitter.pendingBytes;
  }

  get nextLine(): number {
    return this.#nextLine;
  }

  /** The inode of the file read now (`null` while none is open): the one the lines handed out are of. */
  get inode(): number | null {
    return this.#inode;
  }

  /**
   * Reads what is new and hands it to `onLines`; resolves once everything up to the end has been handed out.
   * `change` is what woke it: for `"data"` (the file was written) it reads on from its open file and looks at
   * the path only if nothing new was there. A wake-up while a read runs is folded into one more pass after it.
   */
  catchUp(change: Change = "any"): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      if (change === "any") this.#againAny = true;
      return this.#reading;
    }
    // A flag, not the promise, says whether a read runs: a read with nothing to wait for is over before
    // `#reading` is even assigned.
    this.#running = true;
    this.#reading = (async () => {
      try {
        do {
          this.#again = false;
          while (this.#readPass(true, change) && !this.#closed) await this.#betweenPasses();
          change = this.#againAny ? "any" : "data";
          this.#againAny = false;
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

  /** Waits until the readers can take more (if they say so), then lets the event loop run. */
  async #betweenPasses(): Promise<void> {
    await this.#handlers.pace?.();
    await yieldToEventLoop();
  }

  // Synchronous on purpose: a wake-up reads a few bytes of a local file, and an async stat and read each cost a
  // round trip through the runtime's thread pool, which measured as most of the delay and CPU of a live line.
  // True when more may be waiting (the pass stopped at PASS_BYTES).
  #readPass(report: boolean, change: Change): boolean {
    // Data written to the file: read on from the open file, no stat. Only if nothing new is there may the file
    // have been truncated (that is a write too), so then the path is looked at.
    if (change === "data" && this.#file) {
      const read = this.#read(report);
      if (read !== 0 || this.#closed) return read === PASS_BYTES;
    }
    let info: Deno.FileInfo | undefined;
    try {
      info = lstatOrUndefined(this.#path);
    } catch (error) {
      if (!isMissingLog(error)) throw error;
    }
    // Not a regular file: a symlink would serve the file it points to, a FIFO would block the whole server on
    // open, a device never ends. Treated as missing: what was read of the log is reset, nothing of it is read.
    if (!info?.isFile) return this.#missing(report);
    if (this.#closed) return false;
    if (this.#file && info.ino !== this.#inode) this.#reset(report);
    else if (this.#file && info.size < this.#offset) this.#rewindOrReset(report);
    if (!this.#file) {
      let opened: RegularFile | Refused | undefined;
      try {
        opened = openRegularFile(this.#path, { read: true });
      } catch (error) {
        if (!isMissingLog(error)) throw error;
      }
      if (!opened || "refused" in opened) return this.#missing(report);
      this.#file = opened.file;
      if (this.#closed) {
        this.close();
        return false;
      }
      info = opened.info;
      this.#inode = info.ino;
      const from = this.#from;
      this.#from = undefined;
      // The bytes before it are read again and compared (see #read): if they differ, it reads from the start.
      if (from && from.inode === info.ino && from.offset <= info.size && this.#offset === 0) {
        this.#offset = from.offset;
        this.#nextLine = from.line + 1;
        this.#seen.set(from.before);
        this.#seenLength = from.before.length;
        this.#lineSeen.set(from.before);
        this.#lineSeenLength = from.before.length;
      }
    }
    return this.#read(report) === PASS_BYTES;
  }

  /**
   * Reads on from the offset, at most PASS_BYTES, and reports the lines completed; returns the bytes read. Reads
   * the bytes before the offset again first: if they changed, resets (or, if only the unfinished last line
   * changed, rewinds to its start), and returns PASS_BYTES, like a full pass, so that the caller reads again.
   */
  #read(report: boolean): number {
    const file = this.#file!;
    const check = this.#seenLength;
    if (check > 0) file.seekSync(this.#offset - check, Deno.SeekMode.Start);
    const end = check + PASS_BYTES;
    let total = 0;
    while (total < end) {
      const read = file.readSync(passBuffer.subarray(total, end));
      if (read === null) break;
      total += read;
      // A short read of a regular file is its end: no second call to learn that.
      if (total < end) break;
    }
    if (this.#firstChange(total) >= 0) {
      this.#rewindOrReset(report);
      return PASS_BYTES;
    }
    const fresh = total - check;
    if (fresh === 0) return 0;
    this.#offset += fresh;
    this.#seenLength = Math.min(CHECK_BYTES, total);
    this.#seen.set(passBuffer.subarray(total - this.#seenLength, total));
    const lines = this.#splitter.push(passBuffer.subarray(check, total));
    if (lines.length === 0) return fresh;
    // The last line end is in this pass: keep the bytes before it (what this pass holds of them).
    const lineEndAt = total - this.#splitter.pendingBytes;
    this.#lineSeenLength = Math.min(CHECK_BYTES, lineEndAt);
    this.#lineSeen.set(passBuffer.subarray(lineEndAt - this.#lineSeenLength, lineEndAt));
    const batch: LineBatch = {
      firstLine: this.#nextLine,
      lines,
      end: this.#offset - this.#splitter.pendingBytes,
    };
    this.#nextLine += lines.length;
    if (report) this.#handlers.onLines(batch);
    return fresh;
  }

  /** Where the bytes read again (the first `total` of the pass buffer) first differ from #seen; -1 if nowhere. */
  #firstChange(total: number): number {
    const check = this.#seenLength;
    for (let i = 0; i < check; i++) if (i >= total || passBuffer[i] !== this.#seen[i]) return i;
    return -1;
  }

  /**
   * The file changed behind the offset. If the lines handed out are still there, byte for byte at their end,
   * only the unfinished last line changed (a writer took back what a full disk cut short): it is read again
   * from its start, with no reset. Otherwise the file was rewritten or cut into its lines: reset.
   */
  #rewindOrReset(report: boolean): void {
    if (this.#splitter.pendingBytes === 0 || !this.#linesIntact()) return this.#reset(report);
    this.#offset = this.#lineEnd;
    this.#seen.set(this.#lineSeen);
    this.#seenLength = this.#lineSeenLength;
    this.#splitter = new LineSplitter();
    this.#file!.seekSync(this.#offset, Deno.SeekMode.Start);
  }

  /** True if the file still holds the bytes that were before the last complete line's end. */
  #linesIntact(): boolean {
    const end = this.#lineEnd;
    if (end === 0) return true;
    const length = this.#lineSeenLength;
    return length > 0 && holdsBefore(this.#file!, this.#lineSeen.subarray(0, length), end);
  }

  /** The log is not there to read: whatever was read of it is gone. Returns false: nothing more to read. */
  #missing(report: boolean): boolean {
    if (this.#inode !== null || this.#offset > 0) this.#reset(report);
    return false;
  }

  #reset(report: boolean): void {
    this.#file?.close();
    this.#file = undefined;
    this.#inode = null;
    this.#offset = 0;
    this.#seenLength = 0;
    this.#lineSeenLength = 0;
    this.#nextLine = 1;
    this.#splitter = new LineSplitter();
    if (report) this.#handlers.onReset();
  }
}
