/**
 * @module
 * The narrow interface between shiplog and where deployments are kept: records, and logs that can be appended
 * to, read from a line cursor and followed. `FileStore` (files in a directory) is the built-in one;
 * `RedisStore` (Redis Streams, shared by several shiplog instances behind one load balancer) is the other.
 * Line numbers start at 1 and are the same for every reader; what else a cursor holds is the store's own.
 */

import type { Deployment } from "./deployment.ts";

/** Consecutive log lines: `lines[0]` is line number `firstLine` (numbers start at 1). */
export interface LineBatch {
  firstLine: number;
  lines: string[];
  /**
   * Where the batch ends in the log, with the last line's number a cursor to read on from: opaque to all but
   * the store (a byte offset in a file, the last line's number in a stream).
   */
  end: number;
  /**
   * When shiplog first saw each line, in milliseconds since the epoch (`times[i]` is line `firstLine + i`'s),
   * 0 when not known (a log from before times were kept, a lost sidecar). Always in a follower's batches; in a
   * read's only when asked for ({@linkcode ReadLinesOptions.times}).
   */
  times?: number[];
  /** The numbers of the lines of the batch that the command wrote to stderr, ascending; with `times`. */
  stderr?: number[];
}

/** Options of {@linkcode LogStore.readLines}. */
export interface ReadLinesOptions {
  signal?: AbortSignal;
  /** The `end` of the batch holding line `afterLine`: read on from there instead of counting from the start. */
  from?: number;
  /** Give each batch its lines' `times` and `stderr` (a store may read them apart from the text). */
  times?: boolean;
}

/** Options of {@linkcode LogAppender.write}: what is kept of each of its lines besides the text. */
export interface WriteOptions {
  /** When shiplog first saw the lines (read them from the command, took them from a request), in epoch ms. Default: now. */
  time?: number;
  /** The command wrote them to stderr. Default false (stdout, or from outside). */
  stderr?: boolean;
}

/** Options of {@linkcode LogStore.openAppender}. */
export interface AppenderOptions {
  /**
   * While a store's engine cannot be reached (Redis away): `true` (default), the lines are kept in a bounded
   * buffer and written, in order, once it is back, and `write()` resolves at once with 0 (their numbers are
   * not known yet); `false`, `write()` rejects with {@linkcode StoreUnavailableError} and nothing is kept.
   * A store that is always reachable (files) ignores it.
   */
  bufferWhileAway?: boolean;
}

/** The store's engine cannot be reached now (Redis away): try again later (HTTP 503). */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/**
 * A record that has ended was not written over, or its log not appended to (a store shared by several instances
 * refuses both: an ended deployment never changes again). `stored` is the record as it stays.
 */
export class RecordEndedError extends Error {
  override name = "RecordEndedError";
  readonly stored: Deployment;

  constructor(stored: Deployment) {
    super(`Cannot change deployment ${stored.id}: it ended already (${stored.status})`);
    this.stored = stored;
  }
}

/** Appends lines to one deployment's log. */
export interface LogAppender {
  /**
   * Appends complete lines (without line endings), in one write, and resolves with the number of the first of
   * them (with none, the number the next line will have). Lines of two appenders never interleave.
   * A store shared by several instances (Redis) never appends to the log of a deployment whose stored record
   * has ended, in the same atomic step as the append: the write, and every one after it, rejects with
   * {@linkcode RecordEndedError} (an instance cut off past its lease, whose deployment another recorded
   * interrupted, must not add what it kept meanwhile after the end viewers were told). A store of files lets
   * any process append at any time: the runner, the one writer that matters, stops writing at the end.
   * Each line keeps its time and whether it came from stderr (see {@linkcode LineBatch.times}).
   */
  write(lines: string[], options?: WriteOptions): Promise<number>;
  close(): void;
}

/** What a follower of a log is told. */
export interface LogFollowHandlers {
  /** New complete lines were appended. */
  onLines(batch: LineBatch): void;
  /** The log was truncated, replaced or deleted, or the store lost it (Redis lost its data): numbers start over. */
  onReset(): void;
  /**
   * Between the pieces of a long read (a burst), the follower waits for what this returns, if anything: so it
   * reads the log no faster than its readers take the lines, and the file, not memory, holds the rest.
   */
  pace?(): Promise<void> | undefined;
}

/** A running follow of one log. */
export interface LogFollower {
  /** The number the next appended line will have. */
  readonly nextLine: number;
  /** Reads what was appended and not yet reported, and resolves once it has been handed to `onLines`. */
  catchUp(): Promise<void>;
  close(): void;
}

/** Where deployments and their logs are kept. */
export interface LogStore {
  /** Every deployment record, in no particular order. */
  list(): Promise<Deployment[]>;
  /**
   * Writes a deployment's record, replacing the previous one atomically. A new (queued) one gets an empty log.
   * A store shared by several instances (Redis) never replaces an ended record by another one: it rejects with
   * {@linkcode RecordEndedError}.
   */
  save(deployment: Deployment): Promise<void>;
  /** Opens a deployment's log for appending. */
  openAppender(id: string, options?: AppenderOptions): Promise<LogAppender>;
  /**
   * Reads the complete lines after line `afterLine`, in batches; a missing log reads as empty. A batch may
   * also hold lines already read (a paged read whose pages start at the last entry seen, or an entry of several
   * lines that starts before `afterLine`): the reader drops them by their numbers.
   */
  readLines(id: string, afterLine: number, options?: ReadLinesOptions): AsyncIterable<LineBatch>;
  /** Counts the complete lines of a log. */
  countLines(id: string): Promise<number>;
  /** Follows a log from its current end. */
  follow(id: string, handlers: LogFollowHandlers): Promise<LogFollower>;
  /** When the log was last written to; `undefined` when there is no log. */
  lastWrittenAt(id: string): Promise<Date | undefined>;
  /** The size of the log as written, in bytes of UTF-8 with a line feed after each line; 0 when missing. */
  byteLength(id: string): Promise<number>;
  /** Deletes a deployment's record and log. */
  remove(id: string): Promise<void>;
  /** The log as text, each line followed by a line feed (a file's bytes as written). */
  readRaw(id: string): Promise<ReadableStream<Uint8Array>>;
  /** Stops watching and releases everything. */
  close(): Promise<void>;
}
