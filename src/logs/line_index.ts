/**
 * @module
 * Where a log's lines end, every so often: checkpoints (line number, byte offset) noted while logs are read
 * anyway. A later read after line N, or a count of the lines, then starts at the checkpoint before N instead of
 * at the first byte: a viewer that resumes a long log (`Last-Event-ID`, after every network blip) costs a read
 * of its tail, not of the whole file. Checkpoints belong to one file (its inode) and keep the bytes just before
 * them, which the caller compares with the file's before using one: a log rewritten in place (against the
 * append-only rule) is then read from its start, unless it kept those very bytes at that very place.
 */

/** Line `line` (numbers start at 1; 0 means none) ends just before byte `offset` of the log. */
export interface Checkpoint {
  line: number;
  offset: number;
  /** The log's bytes just before `offset` (a copy, at most {@linkcode CHECKPOINT_BYTES}), ending with its LF. */
  before: Uint8Array;
}

/** Bytes of the log kept with each checkpoint, to recognise the file at that place. */
export const CHECKPOINT_BYTES = 32;

/**
 * True when `file` holds `bytes` just before `offset`: a checkpoint (or what a tail saw) still fits it. Moves
 * the file's position. Synchronous: a few bytes of a local file, where an async read costs a thread-pool trip.
 */
export function holdsBefore(file: Deno.FsFile, bytes: Uint8Array, offset: number): boolean {
  const found = new Uint8Array(bytes.length);
  file.seekSync(offset - bytes.length, Deno.SeekMode.Start);
  let read = 0;
  while (read < found.length) {
    const n = file.readSync(found.subarray(read));
    if (n === null) return false;
    read += n;
  }
  return found.every((byte, i) => byte === bytes[i]);
}

/** Options of {@linkcode LineIndex}. */
export interface LineIndexOptions {
  /** Bytes of log between two checkpoints. Default 256 KiB. */
  spacingBytes?: number;
  /** Logs whose checkpoints are kept; the least recently used go first. Default 256. */
  maxLogs?: number;
}

interface LogCheckpoints {
  inode: number | null;
  /** Ascending in both line and offset. */
  checkpoints: Checkpoint[];
}

const START: Checkpoint = { line: 0, offset: 0, before: new Uint8Array() };

/** Checkpoints of the lines of many logs, by log id, in bounded memory. */
export class LineIndex {
  #logs = new Map<string, LogCheckpoints>();
  #spacingBytes: number;
  #maxLogs: number;

  constructor(options: LineIndexOptions = {}) {
    this.#spacingBytes = options.spacingBytes ?? 256 * 1024;
    this.#maxLogs = options.maxLogs ?? 256;
  }

  /**
   * The last checkpoint at or before line `line` of log `id`, whose file has inode `inode` and `size` bytes;
   * the start of the log when none is known for this file.
   */
  before(id: string, inode: number | null, size: number, line = Infinity): Checkpoint {
    const log = this.#logs.get(id);
    if (!log) return START;
    // Another file under the same name, or a shorter one: nothing noted holds for it.
    if (log.inode !== inode || log.checkpoints.at(-1)!.offset > size) {
      this.#logs.delete(id);
      return START;
    }
    // Recently used: to the back of the eviction order.
    this.#logs.delete(id);
    this.#logs.set(id, log);
    const { checkpoints } = log;
    if (checkpoints[0].line > line) return START;
    let low = 0;
    let high = checkpoints.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (checkpoints[middle].line <= line) low = middle;
      else high = middle - 1;
    }
    return checkpoints[low];
  }

  /**
   * Notes that line `line` of log `id` (inode `inode`) ends before byte `offset`, preceded by the bytes
   * `before`, if far enough past the last checkpoint.
   */
  note(id: string, inode: number | null, line: number, offset: number, before: Uint8Array): void {
    let log = this.#logs.get(id);
    if (log && log.inode !== inode) {
      this.#logs.delete(id);
      log = undefined;
    }
    const last = log?.checkpoints.at(-1) ?? START;
    if (line <= last.line || offset - last.offset < this.#spacingBytes) return;
    const checkpoint = { line, offset, before: before.slice(-CHECKPOINT_BYTES) };
    if (log) return void log.checkpoints.push(checkpoint);
    this.#logs.set(id, { inode, checkpoints: [checkpoint] });
    if (this.#logs.size > this.#maxLogs) this.#logs.delete(this.#logs.keys().next().value!);
  }

  /** Forgets what was noted of log `id` (it was deleted, or its checkpoints proved wrong). */
  forget(id: string): void {
    this.#logs.delete(id);
  }
}
