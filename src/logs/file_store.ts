/**
 * @module
 * The built-in {@linkcode LogStore}: a directory with `<id>.log` (plain text, append-only, readable with
 * `tail -f`, appendable by any process), `<id>.json` (the record, replaced atomically through a temporary
 * file and a rename) and `<id>.times` (each line's time and stream, see {@linkcode LineTimes}: written before
 * the lines, so a tail never sees a line of the runner's before its record). Ids are checked by the caller;
 * this module only ever joins a checked id to the directory.
 */

import { join } from "node:path";
import { asDeployment, type Deployment } from "./deployment.ts";
import { type Change, DirWatcher, type FsEvents } from "./dir_watcher.ts";
import { type DirectoryLock, lockDirectory } from "./directory_lock.ts";
import { CHECKPOINT_BYTES, holdsBefore, LineIndex } from "./line_index.ts";
import { LineSplitter } from "./line_splitter.ts";
import { LineTimes } from "./line_times.ts";
import type {
  LineBatch,
  LogAppender,
  LogFollower,
  LogFollowHandlers,
  LogStore,
  ReadLinesOptions,
  WriteOptions,
} from "./log_store.ts";
import { isMissingLog, LogTail } from "./log_tail.ts";
import { isDeploymentId } from "./deployment_id.ts";
import { lstatOrUndefined, openRegularFile } from "./regular_file.ts";

/** Options of {@linkcode FileStore}. */
export interface FileStoreOptions {
  /** How often followed logs are checked even without a notification, in milliseconds. Default 1000. */
  pollIntervalMs?: number;
  /** Opens the watch of the directory (see {@linkcode DirWatcher}). Default `Deno.watchFs`. */
  watchFs?: (dir: string) => FsEvents;
}

/**
 * A replay reads a log in pieces of this size. Small on purpose: V8 keeps every object over 128 KiB (the text
 * of a piece, its encoding) in a large-object space, and pieces of 1 MiB, decoded and encoded for each viewer
 * reading on its own, grew the heap faster than it was collected: 480 MB RSS against 181 MB with 64 KiB, and
 * 1.6x the CPU (bench scenario 5 with every viewer reading the file itself).
 */
const READ_CHUNK_BYTES = 64 * 1024;
const encoder = new TextEncoder();
const LF = 0x0a;
/** The most a record may hold: those shiplog writes hold their command and well under 1 KiB more. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** Deployments kept as files in one directory. */
export class FileStore implements LogStore {
  #dir: string;
  #lock: DirectoryLock;
  #watcher: DirWatcher;
  #index = new LineIndex();
  /** The count of each log under way, which later counts of the same log wait for. */
  #counting = new Map<string, Promise<number>>();
  /**
   * The last write under way to each log, which the next write of any appender of that log waits for: so that
   * no other write of this store lands between a write's count of the lines before it and its own lines.
   */
  #writes = new Map<string, Promise<void>>();

  private constructor(dir: string, lock: DirectoryLock, options: FileStoreOptions) {
    this.#dir = dir;
    this.#lock = lock;
    this.#watcher = new DirWatcher(dir, { pollIntervalMs: options.pollIntervalMs, watchFs: options.watchFs });
  }

  /**
   * Opens the store in `dir`, creating the directory if it is missing. The store is this process's alone until
   * closed: another shiplog that uses `dir` is waited for a few seconds (a restart), then refused with an error.
   */
  static async open(dir: string, options: FileStoreOptions = {}): Promise<FileStore> {
    await Deno.mkdir(dir, { recursive: true });
    const lock = await lockDirectory(dir, {
      onWait: (owner) =>
        console.error(`shiplog: waiting for the shiplog (pid ${owner}) that uses ${dir} to exit`),
    });
    await removeLeftovers(dir);
    return new FileStore(dir, lock, options);
  }

  async list(): Promise<Deployment[]> {
    const deployments: Deployment[] = [];
    for await (const entry of Deno.readDir(this.#dir)) {
      const id = entry.name.endsWith(".json") ? entry.name.slice(0, -5) : "";
      // Not only files: a symlink (or anything else) named like a record is refused, with a message.
      if (!isDeploymentId(id)) continue;
      try {
        const text = readRecord(this.#path(id, "json"));
        if (text === undefined) continue; // deleted since the directory was read
        const record = asDeployment(JSON.parse(text));
        if (record?.id === id) deployments.push(record);
        else console.error(`shiplog: ignoring ${entry.name}: not a deployment record`);
      } catch (error) {
        console.error(`shiplog: ignoring ${entry.name}: ${(error as Error).message}`);
      }
    }
    return deployments;
  }

  async save(deployment: Deployment): Promise<void> {
    const path = this.#path(deployment.id, "json");
    const temporary = join(this.#dir, `.${deployment.id}.json.${crypto.randomUUID()}.tmp`);
    try {
      await Deno.writeTextFile(temporary, JSON.stringify(deployment, null, 2) + "\n");
      await Deno.rename(temporary, path);
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      throw error;
    }
    // A new deployment (saved queued, once) gets its empty log, so `tail -f` works before it starts. Never an
    // open of one that exists: a writer may have started it, and a FIFO put in its place would block the open.
    if (deployment.status !== "queued") return;
    try {
      (await Deno.open(this.#path(deployment.id, "log"), { write: true, createNew: true })).close();
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }

  async openAppender(id: string): Promise<LogAppender> {
    const path = this.#path(id, "log");
    let file = openForAppending(path);
    let inode = (await file.stat()).ino;
    const timesPath = this.#path(id, "times");
    // The sidecar of the file appended to, opened with its first write and again when the file is replaced.
    let times: LineTimes | undefined;
    let timesFailed = false;
    // Writes are chained, with those of every other appender of the log, so that lines from two sources
    // (stdout, stderr, lines posted to the API) never interleave within a line and are numbered right.
    const writes = this.#writes;
    // After a failed write nothing more is written: lines after a gap would read as if none were lost.
    let failure: unknown;
    let closed = false;
    // The number of the next line, while the file is as this appender left it (its size then): another writer
    // (a process appending to the file) makes it count again.
    let nextLine = 0;
    let sizeAfter = -1;
    const count = this.countLines.bind(this);
    return {
      write(lines: string[], options: WriteOptions = {}): Promise<number> {
        const time = options.time ?? Date.now();
        const bytes = encoder.encode(lines.length === 0 ? "" : lines.join("\n") + "\n");
        const written = (writes.get(id) ?? Promise.resolve()).then(async () => {
          if (failure !== undefined) throw failure;
          let before = 0;
          let done = 0;
          try {
            // The log was deleted, or replaced by a rename (a rotation, a tool rewriting it): what follows goes
            // to the path, where viewers and `tail -F` look, not to a file that nobody can open any more.
            if (lstatOrUndefined(path)?.ino !== inode) {
              // Opened before the old one is closed: if the path cannot be opened, this appender still holds
              // a file it can close.
              const next = openForAppending(path);
              file.close();
              file = next;
              inode = (await file.stat()).ino;
              times?.close();
              times = undefined;
            }
            before = file.statSync().size;
            if (before !== sizeAfter) nextLine = await count(id) + 1;
            if (lines.length > 0 && !timesFailed) {
              // The records first: a line in the log is one a tail may read at once, and its record must be
              // there by then. A crash in between leaves records past the end, cut off by the next write.
              try {
                times ??= LineTimes.open(timesPath, inode, { write: true });
                times?.write(nextLine, lines, time, options.stderr === true, { last: true });
              } catch (error) {
                // The log is what matters: without its sidecar, its lines read as of no known time.
                timesFailed = true;
                console.error(`shiplog: cannot keep the line times of ${id}: ${(error as Error).message}`);
              }
            }
            // write() may write less than asked; a log line must never be left half-written.
            while (done < bytes.length) done += await file.write(bytes.subarray(done));
            const firstLine = nextLine;
            nextLine += lines.length;
            sizeAfter = before + done;
            return firstLine;
          } catch (error) {
            failure = error;
            // A full disk (or a quota) took part of the lines. The last one written, cut short, would be glued
            // to the next line anybody appends, so it is cut off again (unless somebody appended after it).
            const whole = bytes.subarray(0, done).lastIndexOf(LF) + 1;
            if (whole < done && file.statSync().size === before + done) {
              await file.truncate(before + whole).catch(() => {});
            }
            throw error;
          }
        });
        const settled = written.then(() => {}, () => {});
        writes.set(id, settled);
        settled.then(() => writes.get(id) === settled && writes.delete(id));
        return written;
      },
      close: () => {
        if (closed) return;
        closed = true;
        file.close();
        times?.close();
      },
    };
  }

  readLines(id: string, afterLine: number, options: ReadLinesOptions = {}): AsyncIterable<LineBatch> {
    return this.#readLines(id, afterLine, options);
  }

  async countLines(id: string): Promise<number> {
    // After a restart the index is empty, and every open page resumes at once: each count would read the whole
    // log. So a count waits for one already under way, which notes checkpoints as it goes, then reads on from
    // the last of them: the log is read once, and each count still sees the log as it is when it starts.
    const underWay = this.#counting.get(id);
    if (underWay) await underWay.catch(() => {});
    const count = this.#count(id);
    if (!this.#counting.has(id)) {
      this.#counting.set(id, count);
      count.finally(() => this.#counting.get(id) === count && this.#counting.delete(id)).catch(() => {});
    }
    return await count;
  }

  async #count(id: string): Promise<number> {
    // Every line is at or before the last one possible: only what follows the last checkpoint is read.
    const lines = this.#readLines(id, Number.MAX_SAFE_INTEGER);
    for (;;) {
      const next = await lines.next();
      if (next.done) return next.value;
    }
  }

  /** Yields the lines after `afterLine`, and returns how many complete lines the log held. */
  async *#readLines(
    id: string,
    afterLine: number,
    options: ReadLinesOptions = {},
  ): AsyncGenerator<LineBatch, number> {
    // A cursor: no need to read (and count) every line before it.
    let offset = options.from ?? 0;
    let nextLine = options.from === undefined ? 1 : afterLine + 1;
    // Nothing past the cursor (an idle viewer of a new log, say): no file opened, no buffer.
    if ((this.#statLog(id)?.size ?? 0) <= offset) return nextLine - 1;
    const file = this.#openLog(id);
    if (!file) return nextLine - 1;
    let times: LineTimes | undefined;
    try {
      const { ino, size } = await file.stat();
      const checkpoint = options.from === undefined && afterLine > 0
        ? this.#index.before(id, ino, size, afterLine)
        : undefined;
      if (checkpoint && checkpoint.offset > 0) {
        if (holdsBefore(file, checkpoint.before, checkpoint.offset)) {
          offset = checkpoint.offset;
          nextLine = checkpoint.line + 1;
        } else {
          this.#index.forget(id);
        }
      }
      // Also back to the start after a failed check, which moved the file's position.
      if (offset > 0 || checkpoint) await file.seek(offset, Deno.SeekMode.Start);
      if (options.times) times = this.#openTimes(id, ino);
      // What the file held when opened, no more: lines appended since reach viewers through the follower.
      let remaining = size - offset;
      const splitter = new LineSplitter();
      // Sized to the log: a viewer of a short log must not cost a buffer of garbage.
      const buffer = new Uint8Array(Math.max(0, Math.min(remaining, READ_CHUNK_BYTES)));
      while (remaining > 0 && !options.signal?.aborted) {
        const read = await file.read(buffer.subarray(0, Math.min(remaining, buffer.length)));
        if (read === null) break;
        remaining -= read;
        offset += read;
        let lines = splitter.push(buffer.subarray(0, read));
        let firstLine = nextLine;
        nextLine += lines.length;
        const end = offset - splitter.pendingBytes;
        // Where this read numbered the lines itself (a caller's cursor may be from a file since replaced), at a
        // real line end (a line cut for its length ends elsewhere) with the bytes before it in this piece.
        const at = end - (offset - read);
        if (options.from === undefined && at >= CHECKPOINT_BYTES && buffer[at - 1] === LF) {
          this.#index.note(id, ino, nextLine - 1, end, buffer.subarray(at - CHECKPOINT_BYTES, at));
        }
        if (nextLine - 1 <= afterLine) continue;
        if (firstLine <= afterLine) {
          lines = lines.slice(afterLine - firstLine + 1);
          firstLine = afterLine + 1;
        }
        if (lines.length === 0) continue;
        if (!options.times) yield { firstLine, lines, end };
        else yield { firstLine, lines, end, ...timesOf(times, firstLine, lines) };
      }
      return nextLine - 1;
    } finally {
      file.close();
      times?.close();
    }
  }

  async follow(id: string, handlers: LogFollowHandlers): Promise<LogFollower> {
    let closed = false;
    let tail: LogTail | undefined;
    let wokeWhileOpening = false;
    const catchUp = (change: Change) => {
      if (!tail) return void (wokeWhileOpening = true);
      tail.catchUp(change).catch((error) => {
        if (!closed) console.error(`shiplog: reading the log of ${id} failed:`, error);
      });
    };
    // Watch before opening: a line another process appends while the tail opens still wakes it at once.
    const stopWatching = this.#watcher.watch(`${id}.log`, catchUp);
    // The first viewer of a long running log, after the last one left, counts its lines from where they were
    // known to end, not from byte 0.
    const info = this.#statLog(id);
    const known = info && this.#index.before(id, info.ino, info.size);
    try {
      tail = await LogTail.open(this.#path(id, "log"), {
        ...handlers,
        onLines: (batch) => handlers.onLines(this.#timed(id, tail!.inode, batch)),
        // Whatever was noted of the old log's lines no longer holds.
        onReset: () => {
          this.#index.forget(id);
          handlers.onReset();
        },
      }, known && known.offset > 0 ? { ...known, inode: info.ino } : undefined);
    } catch (error) {
      stopWatching();
      throw error;
    }
    if (wokeWhileOpening) catchUp("any");
    const opened = tail;
    // Where the tail got to, for the next open (and for resumes near the end) to start at.
    const noteWhereItIs = () => {
      const at = opened.checkpoint;
      if (at) this.#index.note(id, at.inode, at.line, at.offset, at.before);
    };
    noteWhereItIs();
    return {
      get nextLine() {
        return opened.nextLine;
      },
      catchUp: () => opened.catchUp(),
      close() {
        closed = true;
        stopWatching();
        noteWhereItIs();
        opened.close();
      },
    };
  }

  async remove(id: string): Promise<void> {
    this.#index.forget(id);
    // The record goes first: a deployment without a record is invisible, one without a log reads as empty.
    for (const extension of ["json", "log", "times"] as const) {
      await Deno.remove(this.#path(id, extension)).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
  }

  // deno-lint-ignore require-await -- async, so that a stat that throws (a symlink loop) rejects, not throws
  async lastWrittenAt(id: string): Promise<Date | undefined> {
    return this.#statLog(id)?.mtime ?? undefined;
  }

  // deno-lint-ignore require-await -- the interface's, for stores that ask their engine
  async byteLength(id: string): Promise<number> {
    return this.#statLog(id)?.size ?? 0;
  }

  // deno-lint-ignore require-await -- async, so that an error of the open rejects, not throws
  async readRaw(id: string): Promise<ReadableStream<Uint8Array>> {
    return this.#openLog(id)?.readable ?? new Blob([]).stream();
  }

  async close(): Promise<void> {
    try {
      await this.#watcher.close();
    } finally {
      this.#lock.release();
    }
  }

  /**
   * The log's file info, or `undefined` when there is none or it is not a regular file (a symlink is not
   * followed). Synchronous: a local stat is microseconds, and the async one costs a thread-pool round trip and
   * kilobytes of garbage per viewer.
   */
  #statLog(id: string): Deno.FileInfo | undefined {
    try {
      const info = lstatOrUndefined(this.#path(id, "log"));
      return info?.isFile ? info : undefined;
    } catch (error) {
      if (isMissingLog(error)) return undefined;
      throw error;
    }
  }

  /**
   * Opens a log for reading, or `undefined` when there is none or it is not a regular file: through a symlink
   * it would serve another file, opening a FIFO blocks until someone writes to it, and a device never ends, so
   * all of them read as an empty log.
   */
  #openLog(id: string): Deno.FsFile | undefined {
    try {
      const opened = openRegularFile(this.#path(id, "log"), { read: true });
      return opened && "file" in opened ? opened.file : undefined;
    } catch (error) {
      if (isMissingLog(error)) return undefined;
      throw error;
    }
  }

  /** The sidecar of log `id` (the file with inode `inode`) to read, if there is one. */
  #openTimes(id: string, inode: number | null, write = false): LineTimes | undefined {
    try {
      return LineTimes.open(this.#path(id, "times"), inode, { write });
    } catch (error) {
      if (isMissingLog(error)) return undefined;
      throw error;
    }
  }

  /**
   * A batch a tail read, with its times. Lines with no record are another process's (the runner's records are
   * written before its lines): they were first seen now, and their records say so from here on.
   */
  #timed(id: string, inode: number | null, batch: LineBatch): LineBatch {
    let times: LineTimes | undefined;
    try {
      times = this.#openTimes(id, inode, true);
      const read = timesOf(times, batch.firstLine, batch.lines);
      if (times && read.missing.length > 0) {
        const now = Date.now();
        times.write(batch.firstLine, batch.lines, now, false, { only: read.missing });
        for (const i of read.missing) read.times[i] = now;
      }
      return { ...batch, times: read.times, stderr: read.stderr };
    } catch (error) {
      console.error(`shiplog: cannot read the line times of ${id}: ${(error as Error).message}`);
      return { ...batch, times: new Array(batch.lines.length).fill(0), stderr: [] };
    } finally {
      times?.close();
    }
  }

  #path(id: string, extension: "log" | "json" | "times"): string {
    // Defence in depth: routes check ids already, but no other string may ever become a path here.
    if (!isDeploymentId(id)) throw new TypeError(`Cannot use deployment id ${JSON.stringify(id)}`);
    return join(this.#dir, `${id}.${extension}`);
  }
}

/**
 * Opens a log to append to it, creating it if it is missing. Anything but a regular file is refused: through a
 * symlink the output would go to the file it points to, and opening a FIFO for writing blocks until somebody
 * reads it, which would stall the runner for good.
 */
function openForAppending(path: string): Deno.FsFile {
  const opened = openRegularFile(path, { append: true, create: true })!;
  if ("refused" in opened) throw new TypeError(`Cannot append to ${path}: it is ${opened.refused}`);
  return opened.file;
}

/**
 * The text of the record at `path`, or `undefined` if it is gone; throws if it is not a regular file or holds
 * more than {@linkcode MAX_RECORD_BYTES}, which is never read whole: each record is kept in memory and sent to
 * every viewer of the home page, and one of 30 MB made by hand took the server from 109 to 584 MB.
 */
function readRecord(path: string): string | undefined {
  const opened = openRegularFile(path, { read: true });
  if (!opened) return undefined;
  if ("refused" in opened) throw new TypeError(`it is ${opened.refused}`);
  const { file, info } = opened;
  try {
    if (info.size > MAX_RECORD_BYTES) {
      throw new RangeError(
        `${info.size} bytes, over the limit of ${MAX_RECORD_BYTES} bytes (64 KiB) for a record`,
      );
    }
    // No more than its size when opened: one that grows meanwhile (records are renamed in, never written to) is
    // read no further.
    const buffer = new Uint8Array(info.size);
    let length = 0;
    for (let read; length < buffer.length && (read = file.readSync(buffer.subarray(length))) !== null;) {
      length += read;
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    file.close();
  }
}

/** The times of a batch's lines from its log's sidecar (none: all unknown), and which have no record. */
function timesOf(times: LineTimes | undefined, firstLine: number, lines: readonly string[]) {
  return times?.read(firstLine, lines) ??
    { times: new Array<number>(lines.length).fill(0), stderr: [], missing: [] as number[] };
}

/** What {@linkcode FileStore.save} writes before renaming it over the record: `.<id>.json.<uuid>.tmp`. */
const UNFINISHED_SAVE = /^\.[0-9a-f-]{36}\.json\.[0-9a-f-]{36}\.tmp$/;
/** A log's sidecar of line times: `<id>.times`. */
const TIMES = /^([0-9a-f-]{36})\.times$/;

/**
 * Deletes the temporary files of saves that a crash cut short: the record they were to replace is whole (the
 * rename never happened), and nothing else would ever delete them. And the sidecars of logs that are gone
 * (deleted by hand): a log made again under that id would start one of its own. Only with the directory's lock
 * held: another shiplog's save under way would look the same.
 */
async function removeLeftovers(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const times = TIMES.exec(entry.name);
    if (UNFINISHED_SAVE.test(entry.name) || times && !lstatOrUndefined(join(dir, `${times[1]}.log`))) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  }
}
