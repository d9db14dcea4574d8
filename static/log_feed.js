/**
 * @module
 * Where a deployment page's lines and statuses come from. The record first (a deployment already over needs no
 * stream: its history is all there is). The history next, in bulk: pages of up to 100,000
 * lines from `/api/deployments/<id>/lines` (the next page fetched while this one is handed on), handed on in
 * slices with a yield between them, so the main thread is never held for long. Then live from
 * `/events/<id>?times=1&lastEventId=<last line>`: each `times` event gives the times and stderr marks of the
 * line events after it; lines are handed on in batches. Chromium's own EventSource costs about 1 s of main
 * thread per 20,000 events, so a long log must not be replayed through it. The stream's `status`, `done`,
 * `reset` and `unavailable` events, its reconnections and its backoff when refused are handled here and
 * reported to the page through callbacks.
 */

import { isFinal } from "./format.js";

/** Backoff when the stream failed for good (non-200 answer, e.g. a restarting server): 1 s doubling to 30 s. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** How often live lines are handed on: a batch per tick, not one call per line. */
const FLUSH_MS = 16;

/**
 * @typedef {object} LogFeedCallbacks
 * @property {(batch: import("./log_lines.js").LineBatch) => void} lines Lines after the last ones handed on.
 * @property {(record: any) => void} record The deployment's record (a `status` event or a fetch).
 * @property {(result: {status?: string, exitCode?: number | null} | null) => void} done The stream ended.
 * @property {() => void} reset The log was replaced: forget every line; it is fetched again from line 1.
 * @property {(state: "connecting" | "live" | "reconnecting", text: string, detail?: string) => void} connection
 * @property {(detail: string) => void} unavailable The server cannot reach its store.
 * @property {() => void} gone The deployment does not exist (any more).
 * @property {() => void} [historyLoaded] The history is in; live lines follow.
 */

/**
 * @typedef {object} LogFeedOptions
 * @property {number} [pageLines] Lines per request for the history (default 100,000).
 * @property {number} [sliceLines] Lines handed on at once while the history loads (default 5,000).
 */

export class LogFeed {
  #id;
  #callbacks;
  #pageLines;
  #sliceLines;
  /** The highest line number handed on. */
  #lastLine = 0;
  /** @type {EventSource | null} */
  #source = null;
  #ended = false;
  #retryDelay = RETRY_MIN_MS;
  #unavailable = false;
  /**
   * Whether a stream that failed before it opened was tried again at once. The first such failure is most
   * likely a 204: the deployment ended while the history loaded, and the record now says so. The next ones
   * back off.
   */
  #retriedAtOnce = false;
  /** Bumped by a reset or a new connection: a history load of an older generation stops. */
  #generation = 0;
  /** @type {{firstLine: number, times: number[], stderr: Set<number>}} From the last `times` event. */
  #times = { firstLine: 0, times: [], stderr: new Set() };
  /** @type {import("./log_lines.js").LineBatch | null} Live lines not handed on yet. */
  #pending = null;
  /** @type {number | undefined} */
  #flushTimer = undefined;

  /**
   * @param {string} id The deployment.
   * @param {LogFeedCallbacks} callbacks
   * @param {LogFeedOptions} [options]
   */
  constructor(id, callbacks, { pageLines = 100_000, sliceLines = 5000 } = {}) {
    this.#id = id;
    this.#callbacks = callbacks;
    this.#pageLines = pageLines;
    this.#sliceLines = sliceLines;
  }

  /** The number of the last line handed on. */
  get lastLine() {
    return this.#lastLine;
  }

  /** Loads the history, then follows live. */
  start() {
    this.#run();
  }

  /** Stops for good (the page knows the deployment is over). */
  stop() {
    this.#ended = true;
    this.#source?.close();
  }

  async #run() {
    const generation = ++this.#generation;
    this.#callbacks.connection("connecting", "Connecting…");
    // The record first: a deployment over before its history is read has every line in that history, so the
    // page is complete without a stream (which would answer a resume past the last line with 204).
    const record = await this.#fetchRecord();
    if (generation !== this.#generation || this.#ended) return;
    if (record === "signed out") return;
    if (record === "gone") {
      this.#ended = true;
      this.#callbacks.gone();
      return;
    }
    if (record !== null) this.#callbacks.record(record);
    const complete = await this.#loadHistory(generation);
    if (generation !== this.#generation || this.#ended) return;
    this.#callbacks.historyLoaded?.();
    if (complete && record !== null && isFinal(record.status)) {
      this.#ended = true;
      this.#callbacks.done({ status: record.status, exitCode: record.exitCode });
      return;
    }
    this.#connect();
  }

  /**
   * The deployment's record; "gone" when it does not exist, "signed out" when the page reloads to sign in, null
   * when it cannot be had now (the stream then says why).
   * @returns {Promise<any>}
   */
  async #fetchRecord() {
    try {
      const response = await fetch(`/api/deployments/${encodeURIComponent(this.#id)}`, {
        headers: { accept: "application/json" },
      });
      if (response.status === 404) return "gone";
      // Signed out (the token changed): reloading shows the sign-in form, which comes back here after.
      if (response.status === 401) {
        location.reload();
        return "signed out";
      }
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  /**
   * Hands on the lines after the last one handed on, up to the end of the log; returns whether it got there.
   * @param {number} generation
   * @returns {Promise<boolean>}
   */
  async #loadHistory(generation) {
    const base = `/api/deployments/${encodeURIComponent(this.#id)}/lines`;
    const fetchPage = (/** @type {number} */ after) =>
      fetch(`${base}?after=${after}&limit=${this.#pageLines}`, { headers: { accept: "application/json" } })
        .then(async (response) => response.ok ? await response.json() : null)
        .catch(() => null);
    let next = fetchPage(this.#lastLine);
    while (true) {
      const page = await next;
      if (generation !== this.#generation) return false;
      // No history here (an unknown id, a server without the route, a store out of reach): the stream says why.
      if (page === null || !Array.isArray(page.lines)) return false;
      const last = page.firstLine + page.lines.length - 1;
      const more = page.lines.length > 0 && last + 1 < page.nextLine;
      if (more) next = fetchPage(last);
      for (let start = 0; start < page.lines.length; start += this.#sliceLines) {
        const end = Math.min(page.lines.length, start + this.#sliceLines);
        const stderr = /** @type {number[]} */ (page.stderr ?? []).filter((line) =>
          line >= page.firstLine + start && line < page.firstLine + end
        );
        this.#hand({
          firstLine: page.firstLine + start,
          lines: page.lines.slice(start, end),
          times: page.times?.slice(start, end),
          stderr,
        });
        await yieldToPage();
        if (generation !== this.#generation) return false;
      }
      // A page past the end (the log was replaced meanwhile) is not the end: the stream resets it.
      if (!more) return page.nextLine === this.#lastLine + 1;
    }
  }

  /** @param {import("./log_lines.js").LineBatch} batch */
  #hand(batch) {
    if (batch.lines.length === 0) return;
    this.#lastLine = Math.max(this.#lastLine, batch.firstLine + batch.lines.length - 1);
    this.#callbacks.lines(batch);
  }

  #connect() {
    const params = new URLSearchParams({ times: "1" });
    // EventSource resumes by itself (Last-Event-ID) while it is reconnecting; a new one must say where to resume.
    if (this.#lastLine > 0) params.set("lastEventId", String(this.#lastLine));
    const source = new EventSource(`/events/${encodeURIComponent(this.#id)}?${params}`);
    this.#source = source;

    let opened = false;
    source.addEventListener("open", () => {
      opened = true;
      this.#retryDelay = RETRY_MIN_MS;
      this.#retriedAtOnce = false;
    });
    // Live once the first status arrives, not at `open`: a server that cannot reach its store opens, says so, and
    // ends, and EventSource resumes after the delay it was given (Last-Event-ID), as after any end of the stream.
    source.addEventListener("unavailable", (event) => {
      this.#unavailable = true;
      this.#callbacks.unavailable(event.data);
    });
    source.addEventListener("times", (event) => {
      const times = parseJson(event.data);
      if (times === null) return;
      this.#times = {
        firstLine: Number(times.firstLine),
        times: Array.isArray(times.times) ? times.times : [],
        stderr: new Set(Array.isArray(times.stderr) ? times.stderr : []),
      };
    });
    source.addEventListener("message", (event) => this.#receiveLine(event));
    // The log was truncated, replaced or deleted: what is shown goes, and the new log is fetched from line 1.
    source.addEventListener("reset", () => {
      source.close();
      this.#flush();
      this.#lastLine = 0;
      this.#pending = null;
      this.#callbacks.reset();
      this.#run();
    });
    source.addEventListener("status", (event) => {
      // The lines before it first: a failure's status must find its last step.
      this.#flush();
      this.#unavailable = false;
      this.#callbacks.connection("live", "Live");
      const record = parseJson(event.data);
      if (record) this.#callbacks.record(record);
    });
    source.addEventListener("done", (event) => {
      source.close();
      this.#flush();
      this.#ended = true;
      this.#callbacks.done(parseJson(event.data));
    });
    source.addEventListener("error", () => {
      if (this.#ended || this.#source !== source) return;
      if (source.readyState === EventSource.CONNECTING) {
        // A new attempt (after a server's restart, say): one that fails before it opens is tried again at once.
        opened = false;
        if (!this.#unavailable) this.#callbacks.connection("reconnecting", "Reconnecting…");
      } else {
        source.close();
        if (opened || this.#retriedAtOnce) return this.#retryLater();
        this.#retriedAtOnce = true;
        this.#flush();
        this.#run();
      }
    });
  }

  /** @param {MessageEvent} event */
  #receiveLine(event) {
    const number = Number(event.lastEventId);
    if (!Number.isSafeInteger(number) || number <= this.#lastLine) return;
    const times = this.#times;
    const offset = number - times.firstLine;
    const time = offset >= 0 && offset < times.times.length ? Number(times.times[offset]) || 0 : 0;
    let pending = this.#pending;
    if (pending !== null && pending.firstLine + pending.lines.length !== number) {
      this.#flush();
      pending = null;
    }
    if (pending === null) {
      pending = { firstLine: number, lines: [], times: [], stderr: [] };
      this.#pending = pending;
    }
    pending.lines.push(event.data);
    pending.times?.push(time);
    if (times.stderr.has(number)) pending.stderr?.push(number);
    this.#flushTimer ??= setTimeout(() => this.#flush(), FLUSH_MS);
  }

  #flush() {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null) this.#hand(pending);
  }

  /**
   * The stream failed for good (refused, or a 204 for a deployment that ended meanwhile): after a backoff, all
   * again from the record, which tells whether the deployment is still there and whether it is over.
   */
  #retryLater() {
    this.#flush();
    const delay = this.#retryDelay * (0.8 + Math.random() * 0.4);
    this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
    this.#callbacks.connection("reconnecting", `Reconnecting in ${Math.round(delay / 1000)}s…`);
    setTimeout(() => {
      if (!this.#ended) this.#run();
    }, delay);
  }
}

/**
 * Lets the page draw and take input between two slices of work: a message is a new task, queued behind what
 * waits (a nested `setTimeout` would wait at least 4 ms each time).
 * @returns {Promise<void>}
 */
function yieldToPage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
