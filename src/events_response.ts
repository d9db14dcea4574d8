/**
 * @module
 * `GET /events/<id>`: joins the log store, the hub and the event stream into one SSE response. A viewer
 * registers with the hub before its history is replayed, queues live lines meanwhile, and drops what the
 * replay already sent: no gap and no duplicate. The log file is the buffer: a viewer that falls more than
 * half its queue's bound behind live lines stops queueing them and reads on from the file at its own pace,
 * then rejoins live. Event ids are line numbers; `Last-Event-ID` (or `?lastEventId=`) resumes strictly after that line. An
 * id that is not a line of this log (not a whole number, or past its end) replays from the first line.
 */

import { type Deployment, isFinal } from "./deployment.ts";
import type { Deployments } from "./deployments.ts";
import type { EventStream } from "./event_stream.ts";
import type { EncodedBatch, LogHub } from "./log_hub.ts";
import type { LineBatch, LogStore } from "./log_store.ts";
import type { Metrics } from "./metrics.ts";
import { encodeComment, encodeEvent, encodeLogLines, encodeRetry } from "./sse_encoder.ts";

/** What an events response needs. */
export interface EventsContext {
  deployments: Deployments;
  store: LogStore;
  hub: LogHub;
  metrics: Metrics;
  /** Opens a stream for this client: kept alive by heartbeats, counted against the caps (throws 429 past them). */
  openStream: () => EventStream;
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
export const STREAM_OPENING = encodeComment("connected") + encodeRetry(2000);

/** The line a client asks to resume after: 0 (from the start) unless it sent a whole number. */
export function parseLastEventId(request: Request): number {
  const raw = request.headers.get("last-event-id") ?? new URL(request.url).searchParams.get("lastEventId") ??
    "";
  if (!/^\d{1,15}$/.test(raw.trim())) return 0;
  return Number(raw.trim());
}

/** Streams a deployment's log: history, then live lines, status events, and `done` at the end. */
export async function eventsResponse(
  request: Request,
  deployment: Deployment,
  context: EventsContext,
): Promise<Response> {
  const { id } = deployment;
  const { store, hub, metrics } = context;
  let after = parseLastEventId(request);
  if (after > 0) {
    const count = await store.countLines(id);
    // A reconnection after everything was sent: 204 tells EventSource to stop for good.
    if (after === count && isFinal(context.deployments.get(id)?.status ?? deployment.status)) {
      return new Response(null, { status: 204 });
    }
    if (after > count) after = 0;
  }

  const stream = context.openStream();
  stream.send(STREAM_OPENING);
  stream.send(statusEvent(context.deployments.get(id) ?? deployment));

  let lastSent = after;
  /** Where line `lastSent` ends in the log, once known: a replay reads on from there. */
  let lastSentEnd: number | undefined;
  // Replaying: the viewer reads the log file from `lastSent` at its own pace; live lines wait in `pending`
  // (bounded: past the bound they are dropped, and read from the file by one more pass).
  let replaying = true;
  let pending: EncodedBatch[] = [];
  let pendingBytes = 0;
  let dropped = false;
  let ended: Deployment | undefined;

  const send = ({ firstLine, lines, end }: LineBatch, bytes?: Uint8Array) => {
    if (stream.closed) return;
    const lastLine = firstLine + lines.length - 1;
    if (lastLine <= lastSent) return;
    if (firstLine <= lastSent) {
      lines = lines.slice(lastSent - firstLine + 1);
      firstLine = lastSent + 1;
      bytes = undefined;
    }
    if (!stream.send(bytes ?? encoder.encode(encodeLogLines(firstLine, lines)))) return;
    metrics.linesSent += lines.length;
    lastSent = lastLine;
    lastSentEnd = end;
  };
  const finish = (final: Deployment) => {
    stream.send(
      encodeEvent({
        event: "done",
        data: JSON.stringify({ status: final.status, exitCode: final.exitCode }),
      }),
    );
    stream.close();
  };
  const dropPending = () => {
    pending = [];
    pendingBytes = 0;
    dropped = true;
  };
  /** Reads the log from `lastSent` until no live line was dropped meanwhile, then goes live. */
  const replay = async () => {
    do {
      dropped = false;
      const cursor = { signal: stream.signal, from: lastSentEnd };
      for await (const batch of store.readLines(id, lastSent, cursor)) {
        await stream.ready();
        if (stream.closed) return;
        send(batch);
      }
    } while (dropped && !stream.closed);
    replaying = false;
    for (const batch of pending) send(batch, batch.bytes);
    pending = [];
    pendingBytes = 0;
    const final = ended ?? (isFinal(deployment.status) ? deployment : undefined);
    if (final) finish(final);
  };
  const startReplay = () => {
    replay().catch((error) => {
      if (!stream.closed) console.error(`shiplog: streaming the log of ${id} failed:`, error);
      stream.close();
    });
  };

  if (!isFinal(deployment.status)) {
    // If the log cannot be followed, the stream (and its place under the viewer caps) is released, not leaked.
    await hub.subscribe(id, {
      lines(batch) {
        if (!replaying) {
          // A burst this viewer cannot take as fast as it comes: rather than queue it without bound (or drop the
          // viewer), stop queueing and let it read the rest from the log file at its own pace.
          // Half the queue's bound: the bytes are shared by every viewer, so letting them queue is cheap; reading
          // from the file costs a decode and an encode per viewer, so it is for viewers really behind.
          if (stream.queuedBytes <= stream.maxQueueBytes / 2) return send(batch, batch.bytes);
          replaying = true;
          dropPending();
          return startReplay();
        }
        if (pendingBytes + batch.bytes.length > stream.maxQueueBytes / 2) return dropPending();
        pending.push(batch);
        pendingBytes += batch.bytes.length;
      },
      status(changed) {
        stream.send(statusEvent(changed));
      },
      reset() {
        // id 0 makes the client's next reconnection start from the new log's first line.
        stream.send(
          encodeEvent({ event: "reset", id: 0, data: "the log was truncated, replaced or deleted" }),
        );
        stream.close();
      },
      end(final) {
        if (replaying) ended = final;
        else finish(final);
      },
    }, stream.signal).catch((error) => {
      stream.close();
      throw error;
    });
  }
  startReplay();

  return new Response(stream.readable, { headers: EVENT_STREAM_HEADERS });
}

function statusEvent(deployment: Deployment): string {
  return encodeEvent({ event: "status", data: JSON.stringify(deployment) });
}
