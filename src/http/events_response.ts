/**
 * @module
 * `GET /events/<id>`: joins the log store, the hub and the event stream into one SSE response. A viewer
 * registers with the hub before its history is replayed, queues live lines meanwhile, and drops what the
 * replay already sent: no gap and no duplicate. The log file is the buffer: a viewer that falls more than
 * half its queue's bound behind live lines stops queueing them and reads on from the file at its own pace,
 * then rejoins live. Event ids are line numbers; `Last-Event-ID` (or `?lastEventId=`) resumes strictly after that
 * line. An id that is not a line of this log (not a whole number, or past its end) replays from the first line.
 * With `?times=1`, each run of line events is preceded by a `times` event (no id) with the lines' times and
 * stderr marks; without it, the stream is what it always was, so a plain `EventSource` sees no new event.
 */

import { type Deployment, isFinal } from "../logs/deployment.ts";
import type { Deployments } from "../runs/deployments.ts";
import type { EventStream } from "./event_stream.ts";
import type { EncodedBatch, LogHub, LogViewer } from "./log_hub.ts";
import type { LineBatch, LogStore } from "../logs/log_store.ts";
import type { Health } from "./health.ts";
import type { Metrics } from "./metrics.ts";
import {
  encodeComment,
  encodeEvent,
  encodeLineTimes,
  encodeLogLines,
  encodeRetry,
  skipEvents,
} from "../logs/sse_encoder.ts";
import { querySwitch } from "./log_query.ts";

/** What an events response needs. */
export interface EventsContext {
  deployments: Deployments;
  store: LogStore;
  hub: LogHub;
  metrics: Metrics;
  /** Opens a stream for this client: kept alive by heartbeats, counted against the caps (throws 429 past them). */
  openStream: () => EventStream;
  /** Whether the shared store can be reached: a read that fails while it cannot is expected, not logged. */
  health?: Health;
}

/** The headers of every event stream: no caching, no proxy buffering, no compression. */
export const EVENT_STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  // no-transform also keeps Deno.serve (and proxies) from compressing, which would hold events back.
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

const encoder = new TextEncoder();

/** What every event stream opens with: a comment (so proxies flush the headers) and the reconnection delay. */
export const STREAM_OPENING: Uint8Array = encoder.encode(encodeComment("connected") + encodeRetry(2000));

/** Tells a client that the log it shows is gone; id 0 makes its next reconnection start from line 1. */
const RESET = encodeEvent({ event: "reset", id: 0, data: "the log was truncated, replaced or deleted" });

/** The line a client asks to resume after, if it sent a whole number; else undefined (from the start). */
export function parseLastEventId(request: Request): number | undefined {
  // The URL is parsed only when it has a query: one parse less per viewer that connects.
  const raw = request.headers.get("last-event-id") ??
    (request.url.includes("?") ? new URL(request.url).searchParams.get("lastEventId") : null) ?? "";
  if (!/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

/** Streams a deployment's log: history, then live lines, status events, and `done` at the end. */
export async function eventsResponse(
  request: Request,
  deployment: Deployment,
  context: EventsContext,
): Promise<Response> {
  const { id } = deployment;
  // Checked before anything else: a bad value is a 400 (which EventSource does not retry), not a stream.
  const times = request.url.includes("?") && querySwitch(new URL(request.url).searchParams, "times");
  const resumeAfter = parseLastEventId(request);
  let after = resumeAfter ?? 0;
  let replaced = false;
  if (resumeAfter !== undefined) {
    const count = await context.store.countLines(id);
    // A reconnection after everything was sent: 204 tells EventSource to stop for good. `done` carries the
    // last line's number as its id, 0 for an empty log, so a client that got it always asks with one.
    if (after === count && isFinal(context.deployments.get(id)?.status ?? deployment.status)) {
      return new Response(null, { status: 204 });
    }
    // Past the end: the log was replaced or cut while the client was away, and it starts over from line 1.
    if (after > count) [after, replaced] = [0, true];
  }

  const stream = context.openStream();
  stream.send(STREAM_OPENING);
  // A client that shows the old lines must drop them, or it would take the new ones for lines it has.
  if (replaced) stream.send(RESET);
  stream.send(statusEvent(context.deployments.get(id) ?? deployment));
  const viewer = new LogStreamViewer(stream, deployment, after, context, times);
  if (!isFinal(deployment.status)) {
    // If the log cannot be followed, the stream (and its place under the viewer caps) is released, not leaked.
    await context.hub.subscribe(id, viewer, stream).catch((error) => {
      stream.close();
      throw error;
    });
  }
  viewer.startReplay();
  return new Response(stream.readable, { headers: EVENT_STREAM_HEADERS });
}

/**
 * One viewer's stream of one log. Replaying, it reads the log file from `lastSent` at its own pace while live
 * lines wait in `pending` (bounded: past the bound they are dropped, and read from the file by one more pass).
 * A class, not a nest of closures: thousands of idle viewers each hold one object, not a dozen functions.
 */
class LogStreamViewer implements LogViewer {
  #stream: EventStream;
  #deployment: Deployment;
  // The store and the metrics, not the whole request context: that stays garbage once the response is made.
  #store: LogStore;
  #metrics: Metrics;
  #health: Health | undefined;
  #lastSent: number;
  /** Where line `lastSent` ends in the log, once known: a replay reads on from there. */
  #lastSentEnd: number | undefined;
  #replaying = true;
  #pending: EncodedBatch[] | undefined;
  #pendingBytes = 0;
  #dropped = false;
  #ended: Deployment | undefined;
  /** Whether the client asked for `times` events (`?times=1`). */
  #times: boolean;

  constructor(
    stream: EventStream,
    deployment: Deployment,
    after: number,
    context: EventsContext,
    times: boolean,
  ) {
    this.#stream = stream;
    this.#times = times;
    this.#deployment = deployment;
    this.#lastSent = after;
    this.#store = context.store;
    this.#metrics = context.metrics;
    this.#health = context.health;
  }

  lines(batch: EncodedBatch): void {
    if (!this.#replaying) {
      // A burst this viewer cannot take as fast as it comes: rather than queue it without bound (or drop the
      // viewer), stop queueing and let it read the rest from the log file at its own pace.
      // Half the queue's bound: the bytes are shared by every viewer, so letting them queue is cheap; reading
      // from the file costs a decode and an encode per viewer, so it is for viewers really behind.
      if (this.#stream.queuedBytes <= this.#stream.maxQueueBytes / 2) return this.#sendEncoded(batch);
      this.#replaying = true;
      this.#metrics.viewersBehind++;
      this.#dropPending();
      return this.startReplay();
    }
    if (this.#pendingBytes + batch.bytes.length > this.#stream.maxQueueBytes / 2) return this.#dropPending();
    (this.#pending ??= []).push(batch);
    this.#pendingBytes += batch.bytes.length;
  }

  get backlog(): number | undefined {
    return this.#replaying ? undefined : this.#stream.queuedBytes;
  }

  drained(): Promise<void> {
    return this.#stream.ready();
  }

  status(changed: Deployment): void {
    this.#stream.send(statusEvent(changed));
  }

  reset(): void {
    this.#stream.send(RESET);
    this.#stream.close();
  }

  end(final: Deployment): void {
    if (this.#replaying) this.#ended = final;
    else this.#finish(final);
  }

  startReplay(): void {
    this.#replay().catch((error) => {
      // The store going away ends the stream (its client comes back); a read may fail just before that.
      if (!this.#stream.closed && this.#health?.problem === undefined) {
        console.error(`shiplog: streaming the log of ${this.#deployment.id} failed:`, error);
      }
      this.#stream.close();
    });
  }

  /** Reads the log from `lastSent` until no live line was dropped meanwhile, then goes live. */
  async #replay(): Promise<void> {
    const stream = this.#stream;
    do {
      this.#dropped = false;
      const cursor = { signal: stream.signal, from: this.#lastSentEnd, times: this.#times };
      for await (const batch of this.#store.readLines(this.#deployment.id, this.#lastSent, cursor)) {
        if (stream.closed) return;
        this.#sendLines(batch);
        // Room for the next piece before reading it, not after: so the text of a piece is garbage at once,
        // instead of waiting on a slow client long enough to be kept (and to grow the heap).
        await stream.ready();
      }
    } while (this.#dropped && !stream.closed);
    this.#replaying = false;
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    this.#pendingBytes = 0;
    for (const batch of pending) this.#sendEncoded(batch);
    const final = this.#ended ?? (isFinal(this.#deployment.status) ? this.#deployment : undefined);
    if (final) this.#finish(final);
  }

  /**
   * Sends the lines of a batch read from the log that were not sent yet. The file store never repeats one, but
   * a store may (see {@linkcode LogStore.readLines}): a line sent twice would show twice on the page.
   */
  #sendLines(batch: LineBatch): void {
    let { firstLine, lines } = batch;
    const skip = this.#lastSent - firstLine + 1;
    if (skip >= lines.length) return;
    if (skip > 0) {
      lines = lines.slice(skip);
      firstLine += skip;
    }
    const times = this.#times
      ? timesEvent(firstLine, lines.length, batch.times?.slice(Math.max(skip, 0)), batch.stderr)
      : undefined;
    this.#send(encoder.encode(encodeLogLines(firstLine, lines)), firstLine, lines.length, batch.end, times);
  }

  /** Sends the events of a shared batch that were not sent yet: all its bytes, or the part after them. */
  #sendEncoded(batch: EncodedBatch): void {
    const { firstLine, count, end, bytes } = batch;
    const skip = this.#lastSent - firstLine + 1;
    if (skip >= count) return;
    if (skip <= 0) {
      // The whole batch's `times` event is the same for every viewer: encoded once.
      const times = this.#times
        ? batch.timesBytes ??= timesEvent(firstLine, count, batch.times, batch.stderr)
        : undefined;
      return this.#send(bytes, firstLine, count, end, times);
    }
    const times = this.#times
      ? timesEvent(firstLine + skip, count - skip, batch.times.slice(skip), batch.stderr)
      : undefined;
    this.#send(skipEvents(bytes, skip), firstLine + skip, count - skip, end, times);
  }

  /**
   * Sends the events of `count` lines from `firstLine`, which end at `end` in the log, after their `times`
   * event if the client asked for them.
   */
  #send(bytes: Uint8Array, firstLine: number, count: number, end: number, times?: Uint8Array): void {
    if (this.#stream.closed || times && !this.#stream.send(times) || !this.#stream.send(bytes)) return;
    this.#metrics.linesSent += count;
    this.#lastSent = firstLine + count - 1;
    this.#lastSentEnd = end;
  }

  #finish(final: Deployment): void {
    this.#stream.send(
      encodeEvent({
        event: "done",
        // Its id is what a reconnection sends back, to be told (204) that nothing more will come.
        id: this.#lastSent,
        data: JSON.stringify({ status: final.status, exitCode: final.exitCode }),
      }),
    );
    this.#stream.close();
  }

  #dropPending(): void {
    this.#pending = undefined;
    this.#pendingBytes = 0;
    this.#dropped = true;
  }
}

/**
 * The `times` event of the `count` lines from `firstLine`: `times` theirs (or more, from the first; missing ones
 * not known), and those of `stderr` among them.
 */
function timesEvent(
  firstLine: number,
  count: number,
  times: readonly number[] | undefined,
  stderr: readonly number[] | undefined,
): Uint8Array {
  const own = Array.from({ length: count }, (_, i) => times?.[i] ?? 0);
  const last = firstLine + count - 1;
  const marked = (stderr ?? []).filter((line) => line >= firstLine && line <= last);
  return encoder.encode(encodeLineTimes(firstLine, own, marked));
}

/** The `status` event of a deployment: its record. */
export function statusEvent(deployment: Deployment): string {
  return encodeEvent({ event: "status", data: JSON.stringify(deployment) });
}
