/**
 * @module
 * A real webhook receiver for the tests of notifications: `Deno.serve` on a free port of 127.0.0.1 that keeps
 * every POST it gets (body, headers, when) and answers each as the test says: a status, or never (a receiver
 * that hangs, let go when disposed). And the URL of a port where nothing listens: a receiver that is down.
 */

import { waitForValue } from "./test_helpers.ts";

/** One request as the receiver got it. */
export interface ReceivedWebhook {
  method: string;
  headers: Headers;
  body: string;
  /** `performance.now()` when it arrived. */
  at: number;
}

/** How the receiver answers its `index`-th request (from 0): a status, or `"hang"` to never answer. */
export type Answer = (request: ReceivedWebhook, index: number) => number | "hang";

/** A receiver started by {@linkcode startWebhookReceiver}; use it with `await using`. */
export interface WebhookReceiver extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/hook`. */
  url: string;
  /** Every request so far, in order. */
  readonly received: ReceivedWebhook[];
  /** Resolves with the requests once there are `count` of them; rejects after `timeoutMs` (default 10,000). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
}

/** Starts a receiver that answers as `answer` says (default: 200 to every request). */
export function startWebhookReceiver(answer: Answer = () => 200): WebhookReceiver {
  const received: ReceivedWebhook[] = [];
  const letGo = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const got = {
      method: request.method,
      headers: request.headers,
      body: await request.text(),
      at: performance.now(),
    };
    const index = received.push(got) - 1;
    const status = answer(got, index);
    if (status === "hang") {
      await letGo.promise;
      return new Response(null, { status: 503 });
    }
    return new Response(status === 200 ? "ok" : `status ${status}`, { status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    received,
    waitFor: (count, timeoutMs = 10_000) =>
      waitForValue(
        `${count} webhook request(s), got ${received.length}`,
        () => received.length >= count ? received.slice() : undefined,
        { timeoutMs, intervalMs: 5 },
      ),
    async [Symbol.asyncDispose]() {
      letGo.resolve();
      await server.shutdown();
    },
  };
}

/** The URL of a port of 127.0.0.1 where nothing listens (it was free a moment ago): connections are refused. */
export function downUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return `http://127.0.0.1:${port}/hook`;
}
