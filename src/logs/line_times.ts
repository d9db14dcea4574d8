/**
 * @module
 * The sidecar of a log file, `<id>.times`: for every line, when shiplog first saw it and whether the command
 * wrote it to stderr, kept beside the plain-text log, which stays as it is. Fixed-size records, so that line
 * `n`'s is at a known offset: a resume after line 900,000 reads its few records, not a million. A 32-byte header
 * names the log file it belongs to (its inode): a log replaced or deleted and made again makes the sidecar
 * another file's, read as no times and started over by the next write. Each record holds a hash of its line's
 * text: a log truncated or rewritten in place (the same inode), or a crash between the record's write and the
 * line's, leaves records that do not match the lines now at their numbers, and they read as unknown (0), never
 * as another line's time. Only the store holding the directory's lock writes it. Synchronous, like the tail:
 * a few records of a local file, where each async call costs a round trip through the runtime's thread pool.
 *
 * Layout (little-endian): header `SHIPLOGT`, u32 version (1), u32 record size (16), f64 the log's inode (-1 when
 * the system gives none), 8 bytes zero; then record `n` at `32 + 16 * (n - 1)`: f64 time in epoch ms (0: none),
 * u32 FNV-1a hash of the line's UTF-16 code units (without a CR that a CRLF ending would leave), u8 flags
 * (bit 0: stderr), 3 bytes zero. A hole (records never written) reads as zeros: unknown.
 */

import { openRegularFile } from "./regular_file.ts";

/** The bytes before the first record. */
export const HEADER_BYTES = 32;
/** The bytes of one line's record. */
export const RECORD_BYTES = 16;
const MAGIC = new TextEncoder().encode("SHIPLOGT");
const VERSION = 1;
const STDERR = 1;

/** What the sidecar knows of consecutive lines, in the shape of a `LineBatch`'s `times` and `stderr`. */
export interface LineTimesRead {
  /** Epoch ms of each line, 0 when not known. */
  times: number[];
  /** The numbers of the lines written to stderr, ascending. */
  stderr: number[];
  /** The indexes (into the lines given) of the lines with no record that matches them. */
  missing: number[];
}

/** The FNV-1a hash of a line's text as a reader of the file gets it back (a trailing CR is a CRLF's). */
export function lineHash(line: string): number {
  const text = line.isWellFormed() ? line : line.toWellFormed();
  const end = text.endsWith("\r") ? text.length - 1 : text.length;
  let hash = 0x811c9dc5;
  for (let i = 0; i < end; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** One open sidecar, of the log file with inode `inode`. */
export class LineTimes {
  #file: Deno.FsFile;
  #inode: number;
  /** Whether the header names this log (checked once, at open, and made so by the first write). */
  #matches: boolean;

  private constructor(file: Deno.FsFile, inode: number, matches: boolean) {
    this.#file = file;
    this.#inode = inode;
    this.#matches = matches;
  }

  /**
   * Opens the sidecar at `path` for the log file with inode `inode`; to write, creating it if missing.
   * `undefined` when there is none to read, or something other than a regular file is there (never followed).
   */
  static open(path: string, inode: number | null, options: { write?: boolean } = {}): LineTimes | undefined {
    const opened = openRegularFile(
      path,
      options.write ? { read: true, write: true, create: true } : { read: true },
    );
    if (!opened || "refused" in opened) return undefined;
    const header = new Uint8Array(HEADER_BYTES);
    const read = readAt(opened.file, header, 0);
    const view = new DataView(header.buffer);
    const own = inode ?? -1;
    const matches = read === HEADER_BYTES && MAGIC.every((byte, i) => header[i] === byte) &&
      view.getUint32(8, true) === VERSION && view.getUint32(12, true) === RECORD_BYTES &&
      view.getFloat64(16, true) === own;
    return new LineTimes(opened.file, own, matches);
  }

  /** What is known of the lines `lines`, the first of which is line number `firstLine`. */
  read(firstLine: number, lines: readonly string[]): LineTimesRead {
    const times = new Array<number>(lines.length).fill(0);
    const stderr: number[] = [];
    const missing: number[] = [];
    const bytes = new Uint8Array(lines.length * RECORD_BYTES);
    const got = this.#matches ? readAt(this.#file, bytes, recordOffset(firstLine)) : 0;
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < lines.length; i++) {
      const at = i * RECORD_BYTES;
      const time = at + RECORD_BYTES <= got ? view.getFloat64(at, true) : 0;
      if (!(time > 0) || view.getUint32(at + 8, true) !== lineHash(lines[i])) {
        missing.push(i);
        continue;
      }
      times[i] = time;
      if (bytes[at + 12] & STDERR) stderr.push(firstLine + i);
    }
    return { times, stderr, missing };
  }

  /**
   * Writes the records of `lines` from line number `firstLine`: all seen at `time`, from stderr or not. With
   * `last`, also cuts off every record after them (left by a log that was longer, or by a crash before its
   * line was written): they describe no line there is.
   */
  write(
    firstLine: number,
    lines: readonly string[],
    time: number,
    stderr: boolean,
    options: { last?: boolean; only?: readonly number[] } = {},
  ): void {
    if (!this.#matches) this.#startOver();
    const indexes = options.only ?? lines.keys();
    const bytes = new Uint8Array(lines.length * RECORD_BYTES);
    const view = new DataView(bytes.buffer);
    for (const i of indexes) {
      const at = i * RECORD_BYTES;
      view.setFloat64(at, time, true);
      view.setUint32(at + 8, lineHash(lines[i]), true);
      bytes[at + 12] = stderr ? STDERR : 0;
    }
    if (options.only) {
      // Only some lines (those another process appended): each record on its own, the others left as they are.
      for (const i of options.only) {
        writeAt(
          this.#file,
          bytes.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES),
          recordOffset(firstLine + i),
        );
      }
      return;
    }
    writeAt(this.#file, bytes, recordOffset(firstLine));
    const end = recordOffset(firstLine + lines.length);
    if (options.last && this.#file.statSync().size > end) this.#file.truncateSync(end);
  }

  close(): void {
    this.#file.close();
  }

  /** The sidecar was another log file's (or none): it becomes this one's, with no records. */
  #startOver(): void {
    this.#file.truncateSync(0);
    const header = new Uint8Array(HEADER_BYTES);
    header.set(MAGIC);
    const view = new DataView(header.buffer);
    view.setUint32(8, VERSION, true);
    view.setUint32(12, RECORD_BYTES, true);
    view.setFloat64(16, this.#inode, true);
    writeAt(this.#file, header, 0);
    this.#matches = true;
  }
}

function recordOffset(line: number): number {
  return HEADER_BYTES + (line - 1) * RECORD_BYTES;
}

/** Reads into `buffer` from `offset` until it is full or the file ends; returns the bytes read. */
function readAt(file: Deno.FsFile, buffer: Uint8Array, offset: number): number {
  if (buffer.length === 0) return 0;
  file.seekSync(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < buffer.length) {
    const n = file.readSync(buffer.subarray(read));
    if (n === null) break;
    read += n;
  }
  return read;
}

/** Writes all of `bytes` at `offset` (past the end, the gap reads as zeros: no records). */
function writeAt(file: Deno.FsFile, bytes: Uint8Array, offset: number): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
}
