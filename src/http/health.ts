/**
 * @module
 * Whether the store that several instances share can be reached, as the routes see it: a reason while it
 * cannot, `down` and `up` events when that changes. The routes know nothing of what the store is (in a cluster,
 * the instance's `RedisConnection` is one as it is); with files there is none, and shiplog is always healthy.
 * While the store is away, `/healthz` and `POST /start` answer 503, every open event stream is ended with an
 * `unavailable` event, and a new one gets that event and ends at once: a 200, so that `EventSource` retries by
 * itself (after a non-200 it gives up), with `Last-Event-ID`, after the `retry` delay it was sent.
 */

import { encodeEvent, encodeRetry } from "../logs/sse_encoder.ts";
import { EVENT_STREAM_HEADERS } from "./events_response.ts";

/** The state of the shared store. Dispatches `down` and `up` (plain `Event`s) when {@linkcode problem} changes. */
export interface Health extends EventTarget {
  /** Why the store cannot be reached now, in words; `undefined` while it can. */
  readonly problem: string | undefined;
}

/** Seconds a client is asked to wait (`Retry-After`) before trying a refused request again. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * What an event stream ends with while the store is away: an `unavailable` event (its data the reason, no id,
 * so the client resumes from the last event it had) and a reconnection delay. The delay is drawn between
 * `retryMs` and twice that, so that the viewers of every instance do not all come back in the same moment.
 */
export function unavailableEvent(problem: string, retryMs: number): string {
  return encodeRetry(Math.round(retryMs * (1 + Math.random()))) +
    encodeEvent({ event: "unavailable", data: `the store cannot be reached: ${problem}` });
}

/**
 * The answer to a new event stream while the store is away: 200, `first` (what this instance knows without the
 * store, say the deployment's record), the `unavailable` event, and the end.
 */
export function unavailableStreamResponse(problem: string, retryMs: number, first = ""): Response {
  return new Response(": unavailable\n\n" + first + unavailableEvent(problem, retryMs), {
    headers: EVENT_STREAM_HEADERS,
  });
}
