/**
 * @module
 * The byte stream of one SSE response, with a bounded queue. What is sent waits in the stream's queue until
 * the client reads it; a client that stops reading while more than `maxQueueBytes` wait is disconnected rather
 * than buffered without limit (it resumes from the log with `Last-Event-ID`, so nothing is lost). Replay
 * waits with {@linkcode EventStream.ready} until the client has taken what was sent, so a long history never
 * floods the queue. The open streams
 * are kept in one {@linkcode OpenStreams}: one timer heartbeats them all (not a timer per stream), and shutdown
 * closes them all.
 */

/** Options of {@linkcode EventStream}. */
export interface EventStreamOptions {
  /** Bytes that may wait for a slow client before it is disconnected. Default 16 MiB. */
  maxQueueBytes?: number;
  /** Called once if the stream is ended because its client is too slow (for metrics). */
  onOverflow?: () => void;
}

const encoder = new TextEncoder();
const TICKS_PER_INTERVAL = 4;
const SLOW_CLIENT = "slow client";

/** True for the error that ends the body of a stream whose client was too slow: expected, not worth a log line. */
export function isSlowClientError(error: unknown): boolean {
  return error instanceof RangeError && error.cause === SLOW_CLIENT;
}

/**
 * One SSE response body. Closing it, or the client going away, aborts {@linkcode EventStream.signal} and calls
 * the {@linkcode EventStream.onEnd} callbacks.
 *
 * Memory per stream matters (thousands of idle viewers), so the stream counts chunks, as it does by default,
 * and this class counts their bytes itself, only for chunks that actually wait: a byte-length strategy would
 * cost a callback wrapper per stream and a callback per chunk.
 */
export class EventStream {
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #abort = new AbortController();
  #maxQueueBytes: number;
  #overflowed = false;
  /** Sizes of the chunks waiting in the stream's queue, oldest at `#head`; undefined while none wait. */
  #sizes: number[] | undefined;
  #head = 0;
  #queuedBytes = 0;
  /** What everybody waiting for the queue to drain (a replay, the pace of a burst) shares; usually none. */
  #room: PromiseWithResolvers<void> | undefined;
  /** Every byte ever sent: with those still queued, what the client has taken. */
  #sentBytes = 0;
  /** Resolves the stream's pending `pull`, parked while nobody waits for room. */
  #unpark: (() => void) | undefined;
  #onEnd: (() => void)[] | undefined;
  #closed = false;
  #onOverflow: (() => void) | undefined;
  /** Heartbeat ticks since the last send: a counter, not a clock read on every send of every stream. */
  idleTicks = 0;
  /** Heartbeat ticks spent waiting in {@linkcode EventStream.ready} for a client that read nothing meanwhile. */
  stalledTicks = 0;
  /** What the client had taken at the last heartbeat tick: more now means it read some. */
  takenAtLastTick = 0;

  constructor(options: EventStreamOptions = {}) {
    this.#maxQueueBytes = options.maxQueueBytes ?? 16 * 1024 * 1024;
    this.#onOverflow = options.onOverflow;
    // The default strategy: a high-water mark of one chunk, so pull means "the queue is empty".
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      // The stream calls pull after every read that empties the queue. Answering each call would cost every
      // viewer a promise per line for nothing: only someone waiting in ready() needs to hear of it, so
      // without one the pull stays pending (the stream does not call it again) until ready() releases it.
      pull: () => {
        if (this.#room) return this.#wakeWaiting();
        return new Promise<void>((resolve) => this.#unpark = resolve);
      },
      cancel: () => this.#end(),
    });
  }

  /** Aborted when the stream ends, for whatever reason. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Calls `callback` once when the stream ends: a plain call, lighter than a listener on {@linkcode signal}. */
  onEnd(callback: () => void): void {
    if (this.#closed) return callback();
    (this.#onEnd ??= []).push(callback);
  }

  /** True when the stream was ended because the client did not read fast enough. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while something (a replay, the pace of a burst) waits for the client to read. */
  get waitingForReader(): boolean {
    return this.#room !== undefined;
  }

  /** Bytes the client has taken from the stream so far. */
  get bytesTaken(): number {
    return this.#sentBytes - this.queuedBytes;
  }

  /** Queues bytes (or text) for the client. Returns false, and ends the stream, when the client is too slow. */
  send(chunk: Uint8Array | string): boolean {
    if (this.#closed) return false;
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    // Bounded at the limit plus one chunk: a replay chunk larger than the limit still goes to a reader that keeps up.
    if (this.queuedBytes > this.#maxQueueBytes) {
      this.overflow();
      return false;
    }
    this.#controller.enqueue(bytes);
    this.#sentBytes += bytes.length;
    // A read already waiting takes the chunk at once (the usual case for a live viewer): then nothing waits.
    if (this.#chunksQueued() > this.#chunksCounted()) {
      (this.#sizes ??= []).push(bytes.length);
      this.#queuedBytes += bytes.length;
    }
    this.idleTicks = 0;
    return true;
  }

  /** Bytes waiting for the client to read them. */
  get queuedBytes(): number {
    if (this.#sizes === undefined) return 0;
    // Chunks leave the queue oldest first: those no longer in it were read.
    const queued = this.#chunksQueued();
    if (queued === 0) {
      this.#sizes = undefined;
      this.#head = 0;
      this.#queuedBytes = 0;
      return 0;
    }
    while (this.#chunksCounted() > queued) this.#queuedBytes -= this.#sizes[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#sizes.length) {
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
    return this.#queuedBytes;
  }

  /** Bytes that may wait for the client before it is disconnected. */
  get maxQueueBytes(): number {
    return this.#maxQueueBytes;
  }

  /** Ends the stream because the client is too slow: what is queued is dropped, and so is the connection. */
  overflow(): void {
    if (this.closed) return;
    this.#overflowed = true;
    this.#onOverflow?.();
    // Erroring, not closing: a closed stream would keep its whole queue, and the socket, until a client that
    // does not read had read it all.
    this.#controller.error(
      new RangeError(`Cannot queue more than ${this.#maxQueueBytes} bytes for a slow client`, {
        cause: SLOW_CLIENT,
      }),
    );
    this.#end();
  }

  /** Resolves once the client has taken everything queued (or the stream ended), to pace a replay to it. */
  ready(): Promise<void> {
    if (this.#closed || this.#chunksQueued() === 0) return Promise.resolve();
    if (this.#room) return this.#room.promise;
    this.#room = Promise.withResolvers<void>();
    const unpark = this.#unpark;
    this.#unpark = undefined;
    // The stream calls pull again once this resolves: at once if the client read meanwhile, else on its next read.
    unpark?.();
    return this.#room.promise;
  }

  /** Ends the stream after what is queued has been read. */
  close(): void {
    if (this.closed) return;
    try {
      this.#controller.close();
    } catch {
      // Already cancelled by the client.
    }
    this.#end();
  }

  /** Chunks in the stream's queue: its high-water mark (1) minus its desired size. */
  #chunksQueued(): number {
    return 1 - (this.#controller.desiredSize ?? 1);
  }

  #chunksCounted(): number {
    return this.#sizes === undefined ? 0 : this.#sizes.length - this.#head;
  }

  #end(): void {
    this.#closed = true;
    this.#sizes = undefined;
    this.#abort.abort();
    this.#wakeWaiting();
    const callbacks = this.#onEnd;
    this.#onEnd = undefined;
    for (const callback of callbacks ?? []) {
      // One failing callback must not keep the others (a place under the caps, say) from being released.
      try {
        callback();
      } catch (error) {
        reportError(error);
      }
    }
  }

  #wakeWaiting(): void {
    const room = this.#room;
    if (!room) return;
    this.stalledTicks = 0;
    this.#room = undefined;
    room.resolve();
  }
}

/** The open event streams. One timer sends a comment to each that was silent for the heartbeat interval. */
export class OpenStreams {
  #streams = new Set<EventStream>();
  #closing = false;
  #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #bytes: Uint8Array;

  constructor(intervalMs: number, comment = ": heartbeat\n\n") {
    this.#intervalMs = intervalMs;
    this.#bytes = encoder.encode(comment);
  }

  /** Keeps `stream` alive until it ends. */
  add(stream: EventStream): void {
    // An ended stream will never abort again, so it would be kept, and the timer with it, for ever.
    if (stream.closed) return;
    // A request that was still on its way at shutdown must not open a stream that nothing will end.
    if (this.#closing) return stream.close();
    this.#streams.add(stream);
    stream.onEnd(() => this.#delete(stream));
    // Tick at a quarter of the interval so a stream is silent for at most a quarter longer than the interval.
    this.#timer ??= setInterval(() => this.#beat(), Math.max(this.#intervalMs / TICKS_PER_INTERVAL, 10));
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Ends every stream (at shutdown); clients reconnect to whoever serves next. */
  closeAll(): void {
    this.#closing = true;
    for (const stream of [...this.#streams]) stream.close();
  }

  /**
   * Ends every stream open now with `last` (the store went away, say), but goes on taking new ones: their
   * clients reconnect, with `Last-Event-ID`, and resume where they were.
   */
  endAll(last: string): void {
    const bytes = encoder.encode(last);
    for (const stream of [...this.#streams]) {
      stream.send(bytes);
      stream.close();
    }
  }

  #delete(stream: EventStream): void {
    this.#streams.delete(stream);
    if (this.#streams.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #beat(): void {
    for (const stream of this.#streams) {
      // A client that stops reading while something waits for it (its replay, or the pace of a burst) never
      // overflows its queue, so it would hold its file handle, or the burst, for ever: after two intervals
      // without a read, it is as slow as any. One that reads, however slowly, is not stalled.
      if (stream.waitingForReader) {
        const taken = stream.bytesTaken;
        if (taken > stream.takenAtLastTick) stream.stalledTicks = 0;
        stream.takenAtLastTick = taken;
        if (++stream.stalledTicks > 2 * TICKS_PER_INTERVAL) {
          stream.overflow();
          continue;
        }
      }
      // More than a whole interval of ticks without a send: silent for between 1 and 1.25 intervals.
      if (++stream.idleTicks > TICKS_PER_INTERVAL) stream.send(this.#bytes);
    }
  }
}
