/**
 * @module
 * One webhook delivery: a JSON body POSTed to a URL, signed when there is a key (`X-Shiplog-Signature:
 * sha256=<hex HMAC-SHA256 of the body>`, as GitHub signs its webhooks), tried up to `tries` times with a
 * doubling pause between tries and a timeout on each. A receiver that is down, hangs or answers 5xx (or 408,
 * 429) is tried again; any other answer but 2xx is final (a 404 will not become a 200). Nothing is thrown: the
 * outcome says whether it arrived, and if not, why, in words, for the log.
 */

import { createHmac } from "node:crypto";

/** Options of {@linkcode postWebhook}. */
export interface WebhookOptions {
  /** The key that signs the body; none: unsigned. */
  secret?: string;
  /** Tries in all. Default 3. */
  tries?: number;
  /** How long one try may take until the receiver's answer begins, in milliseconds. Default 5000. */
  timeoutMs?: number;
  /** The pause after the first failed try, in milliseconds, doubled after each one. Default 1000. */
  backoffMs?: number;
  /** More headers (what the body is about: `X-Shiplog-Event`), the same on every try. */
  headers?: Record<string, string>;
  /** Ends the tries at once (a shutdown that waited long enough). */
  signal?: AbortSignal;
}

/** How a delivery went. */
export interface WebhookOutcome {
  /** True when the receiver answered 2xx. */
  delivered: boolean;
  /** Tries made. */
  tries: number;
  /** Why the last try failed (`answered 500`, `no answer within 5000 ms`); `null` when delivered. */
  problem: string | null;
}

/** The `X-Shiplog-Signature` of `body` under `secret`. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** POSTs `body` (JSON) to `url` until it arrives or the tries are spent. */
export async function postWebhook(
  url: string,
  body: string,
  options: WebhookOptions = {},
): Promise<WebhookOutcome> {
  const tries = options.tries ?? 3;
  const timeoutMs = options.timeoutMs ?? 5000;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "shiplog",
    ...options.headers,
  };
  if (options.secret !== undefined) headers["x-shiplog-signature"] = signature(options.secret, body);
  let problem = "not tried";
  for (let attempt = 1; attempt <= tries; attempt++) {
    if (attempt > 1) await pause((options.backoffMs ?? 1000) * 2 ** (attempt - 2), options.signal);
    if (options.signal?.aborted) {
      return { delivered: false, tries: attempt - 1, problem: "shiplog was stopped" };
    }
    const result = await postOnce(url, body, headers, timeoutMs, options.signal);
    if (result.delivered) return { delivered: true, tries: attempt, problem: null };
    problem = result.problem;
    if (!result.again) return { delivered: false, tries: attempt, problem };
  }
  return { delivered: false, tries, problem };
}

type Try = { delivered: true } | { delivered: false; again: boolean; problem: string };

async function postOnce(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  stop: AbortSignal | undefined,
): Promise<Try> {
  const timeout = new AbortController();
  // A timer of its own, cleared as soon as the answer begins: nothing is left pending after a try.
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body,
      // A redirect would turn the POST into a GET: a receiver that moved says so by failing, in the log.
      redirect: "manual",
      signal: stop ? AbortSignal.any([timeout.signal, stop]) : timeout.signal,
    });
    // What the receiver says back is not read: a chat's "ok", or a page.
    await response.body?.cancel().catch(() => {});
    if (response.ok) return { delivered: true };
    const again = response.status >= 500 || response.status === 408 || response.status === 429;
    return { delivered: false, again, problem: `answered ${response.status}` };
  } catch (error) {
    if (stop?.aborted) return { delivered: false, again: false, problem: "shiplog was stopped" };
    if (timeout.signal.aborted) {
      return { delivered: false, again: true, problem: `no answer within ${timeoutMs} ms` };
    }
    return { delivered: false, again: true, problem: networkProblem(error as Error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What a failed `fetch` says of the network, without the URL it names (a webhook's URL is often its secret): the
 * parts of its cause after the last one holding a URL (which has no spaces, so none of `": "`).
 */
function networkProblem(error: Error): string {
  const message = error.cause instanceof Error ? error.cause.message : error.message;
  const parts = message.split(": ");
  return parts.slice(parts.findLastIndex((part) => part.includes("://")) + 1).join(": ") || "cannot connect";
}

/** Waits `ms`, or less if `signal` is aborted meanwhile (the pause between two tries). */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}
