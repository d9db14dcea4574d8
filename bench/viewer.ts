/**
 * @module
 * The benchmark's SSE viewer, used unchanged for shiplog and for the baseline. One `fetch()` per viewer and a
 * hand-written incremental parser that understands only what both servers send: `id:`, `data:`, `event:`,
 * comments and the blank line that ends an event, correct across chunk boundaries (a line, a field name or a
 * multi-byte character may be split between two reads). It stays lean because thousands of viewers run in one
 * process: no per-event objects, one clock reading per chunk.
 *
 * Lines carry `seq=N t=MS` (see `writer.ts`); the viewer checks that event ids (over all lines, unmeasured
 * `warmup=N` lines included) and seq numbers both arrive strictly consecutively from 1, i.e. every line exactly
 * once and in order, and records arrival minus `t` as the line's latency.
 */

/** The wall clock shared by all benchmark processes: ms since the epoch, with fractions. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** A growable list of latency samples (ms) shared by all viewers of one scenario. */
export class LatencyRecorder {
  #values = new Float64Array(4096);
  #length = 0;

  add(ms: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = ms;
  }

  get count(): number {
    return this.#length;
  }

  /** Percentiles by nearest rank; NaN when empty. */
  summary(): LatencySummary {
    const sorted = this.#values.slice(0, this.#length).sort();
    const at = (p: number) =>
      sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
    return {
      count: sorted.length,
      min: sorted.length === 0 ? NaN : sorted[0],
      p50: at(0.5),
      p99: at(0.99),
      max: sorted.length === 0 ? NaN : sorted[sorted.length - 1],
    };
  }
}

export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
}

/** Receives the events an {@link SseParser} dispatches; `data` is valid only during the call. */
export interface SseHandler {
  /**
   * `type` is `"message"` unless an `event:` field said otherwise; `id` is the last event id read as a decimal
   * number (NaN if it is not one); the event's data are `data[start, end)` as UTF-8; `arrival` is the clock
   * reading taken when the chunk that completed the event was read.
   */
  event(type: string, id: number, data: Uint8Array, start: number, end: number, arrival: number): void;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const DATA = [100, 97, 116, 97, COLON]; // "data:"
const ID = [105, 100, COLON]; // "id:"
const EVENT = [101, 118, 101, 110, 116, COLON]; // "event:"

function startsWith(bytes: Uint8Array, start: number, end: number, prefix: number[]): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[start + i] !== prefix[i]) return false;
  return true;
}

/** Parses a run of ASCII digits; NaN if empty or if anything else is in it. */
export function parseDecimal(bytes: Uint8Array, start: number, end: number): number {
  if (start >= end) return NaN;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i] - 48;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * Incremental SSE parser working on bytes, so that no string is made per line: `\n` never occurs inside a UTF-8
 * sequence, and a line split across chunks is completed in a carry buffer. It implements the parts of the SSE
 * spec both servers use: `data:` (several lines joined by `\n`), `id:` (kept across events), `event:`, comments,
 * one optional space after the colon, a blank line ending the event, `\r\n` line ends. An event without data is
 * not dispatched.
 */
export class SseParser {
  #handler: SseHandler;
  #decoder = new TextDecoder();
  /** Bytes of an unfinished line from earlier chunks. */
  #carry = new Uint8Array(1024);
  #carryLength = 0;
  #id = NaN;
  #type = "message";
  /** The pending event's data: a view into the current chunk or carry, or (across chunks) into #scratch. */
  #data: Uint8Array | null = null;
  #dataStart = 0;
  #dataEnd = 0;
  #scratch = new Uint8Array(1024);

  constructor(handler: SseHandler) {
    this.#handler = handler;
  }

  feed(chunk: Uint8Array, arrival: number): void {
    let start = 0;
    if (this.#carryLength > 0) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        this.#keep(chunk, 0, chunk.length);
        return;
      }
      this.#keep(chunk, 0, nl + 1);
      const length = this.#carryLength;
      this.#carryLength = 0;
      this.#line(this.#carry, 0, length - 1, arrival);
      start = nl + 1;
    }
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl < 0) break;
      this.#line(chunk, start, nl, arrival);
      start = nl + 1;
    }
    // The pending data may point into the chunk or the carry, both about to change: copy it out.
    if (this.#data !== null && this.#data !== this.#scratch) {
      this.#setData(this.#data, this.#dataStart, this.#dataEnd);
    }
    if (start < chunk.length) this.#keep(chunk, start, chunk.length);
  }

  #keep(bytes: Uint8Array, start: number, end: number): void {
    const needed = this.#carryLength + end - start;
    if (needed > this.#carry.length) {
      const bigger = new Uint8Array(Math.max(needed, this.#carry.length * 2));
      bigger.set(this.#carry.subarray(0, this.#carryLength));
      this.#carry = bigger;
    }
    this.#carry.set(bytes.subarray(start, end), this.#carryLength);
    this.#carryLength = needed;
  }

  /** Copies `bytes[start, end)` into #scratch as the whole pending data (or, with `append`, after a `\n`). */
  #setData(bytes: Uint8Array, start: number, end: number, append = false): void {
    const at = append ? this.#dataEnd + 1 : 0;
    const needed = at + end - start;
    if (needed > this.#scratch.length) {
      const bigger = new Uint8Array(Math.max(needed, this.#scratch.length * 2));
      if (append) bigger.set(this.#scratch.subarray(0, this.#dataEnd));
      this.#scratch = bigger;
    }
    if (append) this.#scratch[at - 1] = LF;
    this.#scratch.set(bytes.subarray(start, end), at);
    this.#data = this.#scratch;
    this.#dataStart = 0;
    this.#dataEnd = needed;
  }

  /** One line, `bytes[start, end)` without its `\n`. */
  #line(bytes: Uint8Array, start: number, end: number, arrival: number): void {
    if (end > start && bytes[end - 1] === CR) end--;
    if (end === start) {
      const data = this.#data;
      const type = this.#type;
      this.#data = null;
      this.#type = "message";
      if (data !== null) this.#handler.event(type, this.#id, data, this.#dataStart, this.#dataEnd, arrival);
      return;
    }
    if (startsWith(bytes, start, end, DATA)) {
      let at = start + DATA.length;
      if (bytes[at] === SPACE && at < end) at++;
      if (this.#data === null) {
        this.#data = bytes;
        this.#dataStart = at;
        this.#dataEnd = end;
      } else {
        if (this.#data !== this.#scratch) this.#setData(this.#data, this.#dataStart, this.#dataEnd);
        this.#setData(bytes, at, end, true);
      }
    } else if (startsWith(bytes, start, end, ID)) {
      let at = start + ID.length;
      if (bytes[at] === SPACE && at < end) at++;
      this.#id = parseDecimal(bytes, at, end);
    } else if (startsWith(bytes, start, end, EVENT)) {
      let at = start + EVENT.length;
      if (bytes[at] === SPACE && at < end) at++;
      this.#type = this.#decoder.decode(bytes.subarray(at, end));
    } // else: a comment (`:`) or a field we do not use
  }
}

export interface ViewerOptions {
  /** The `seq=` number (and id) of the line after which `finished` resolves. */
  expectedLines: number;
  /** Resumes after this line, sent as `Last-Event-ID`: ids and `seq=` numbers then start after it. */
  lastEventId?: number;
  /** Where to record per-line latency; omitted = not recorded. */
  latency?: LatencyRecorder;
  /** Aborting closes the connection. */
  signal: AbortSignal;
  /** Called once when `finished` settles; lets a scenario count finished viewers without a promise per check. */
  onFinished?: (viewer: Viewer) => void;
}

/** Errors kept per viewer; the rest are only counted. */
const MAX_ERRORS_KEPT = 5;

/** One SSE connection and what it saw. */
export class Viewer implements SseHandler {
  /** Distinct `seq=` lines received (a duplicate is an error and is not counted again). */
  lines = 0;
  /** Highest seq seen. */
  lastSeq = 0;
  /** Default events whose data is not a `seq=` line (e.g. a line the server itself wrote to the log). */
  foreign = 0;
  /** Out-of-order, missing or duplicate lines, id gaps, HTTP errors, early ends. */
  errorCount = 0;
  errors: string[] = [];
  sawDone = false;
  /** The stream ended (server closed it) before the viewer was aborted. */
  ended = false;
  openedAt = NaN;
  connectedAt = NaN;
  firstArrival = NaN;
  lastArrival = NaN;
  readonly connected: Promise<void>;
  readonly finished: Promise<void>;

  #lastId = 0;
  #options: ViewerOptions;
  #resolveConnected!: () => void;
  #resolveFinished!: () => void;
  #isFinished = false;

  constructor(url: string, options: ViewerOptions) {
    this.#options = options;
    this.#lastId = this.lastSeq = options.lastEventId ?? 0;
    this.connected = new Promise((resolve) => this.#resolveConnected = resolve);
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    if (options.expectedLines <= 0) this.#finish();
    this.#run(url).catch((error) => {
      if (!options.signal.aborted) this.#error(`connection failed: ${error}`);
    }).finally(() => {
      this.#resolveConnected();
      this.#finish();
    });
  }

  /** True once the expected lines arrived or the stream ended or failed. */
  get isFinished(): boolean {
    return this.#isFinished;
  }

  async #run(url: string): Promise<void> {
    this.openedAt = wallClock();
    const response = await fetch(url, {
      signal: this.#options.signal,
      headers: {
        accept: "text/event-stream",
        ...(this.#options.lastEventId ? { "last-event-id": String(this.#options.lastEventId) } : {}),
      },
    });
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      this.#error(`GET ${url} -> ${response.status}`);
      return;
    }
    this.connectedAt = wallClock();
    this.#resolveConnected();
    const parser = new SseParser(this);
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value, wallClock());
    }
    this.ended = true;
    if (this.lastSeq < this.#options.expectedLines && !this.sawDone) {
      this.#error(`stream ended after line ${this.lastSeq} of ${this.#options.expectedLines}`);
    }
  }

  /** The {@link SseHandler} side: checks and records one event. */
  event(type: string, id: number, data: Uint8Array, start: number, end: number, arrival: number): void {
    if (type !== "message") {
      if (type === "done") {
        this.sawDone = true;
        if (this.lastSeq < this.#options.expectedLines) {
          this.#error(`done after line ${this.lastSeq} of ${this.#options.expectedLines}`);
        }
        this.#finish();
      }
      return; // `status` and anything else: not log lines
    }
    if (id !== this.#lastId + 1) this.#error(`id ${id} after ${this.#lastId}`);
    this.#lastId = id;
    // `seq=N t=MS[ …]`
    if (
      !(end - start > 4 && data[start] === 115 && data[start + 1] === 101 && data[start + 2] === 113 &&
        data[start + 3] === 61)
    ) {
      this.foreign++;
      return;
    }
    let at = start + 4;
    let seq = 0;
    for (; at < end && data[at] !== 32; at++) seq = seq * 10 + data[at] - 48;
    if (seq !== this.lastSeq + 1) {
      this.#error(`seq ${seq} after ${this.lastSeq}`);
      if (seq <= this.lastSeq) return; // a duplicate or a step back: do not count it twice
    }
    this.lastSeq = seq;
    this.lines++;
    if (this.#options.latency !== undefined) {
      // " t=" then digits, a dot and fraction digits
      at += 3;
      let t = 0;
      for (; at < end && data[at] !== 46 && data[at] !== 32; at++) t = t * 10 + data[at] - 48;
      if (data[at] === 46) {
        let scale = 1;
        for (at++; at < end && data[at] !== 32; at++) t += (data[at] - 48) / (scale *= 10);
      }
      this.#options.latency.add(arrival - t);
    }
    if (Number.isNaN(this.firstArrival)) this.firstArrival = arrival;
    this.lastArrival = arrival;
    if (this.lastSeq >= this.#options.expectedLines) this.#finish();
  }

  #error(message: string): void {
    this.errorCount++;
    if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push(message);
  }

  #finish(): void {
    if (this.#isFinished) return;
    this.#isFinished = true;
    this.#resolveFinished();
    this.#options.onFinished?.(this);
  }
}

/** Opens one viewer; see {@link Viewer}. */
export function openViewer(url: string, options: ViewerOptions): Viewer {
  return new Viewer(url, options);
}

/**
 * Opens `count` viewers on the given URLs (round robin) in waves of `wave` connections, waiting for each wave's
 * responses, so thousands of connects do not overflow the server's accept queue.
 */
export async function openViewers(
  urls: string[],
  count: number,
  options: ViewerOptions & { wave?: number },
): Promise<Viewer[]> {
  const wave = options.wave ?? 100;
  const viewers: Viewer[] = [];
  for (let i = 0; i < count; i += wave) {
    const batch: Viewer[] = [];
    for (let j = i; j < Math.min(count, i + wave); j++) {
      batch.push(openViewer(urls[j % urls.length], options));
    }
    await Promise.all(batch.map((viewer) => viewer.connected));
    viewers.push(...batch);
    if (options.signal.aborted) break;
  }
  return viewers;
}
