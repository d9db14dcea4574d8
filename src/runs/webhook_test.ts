import assert from "node:assert/strict";
import { postWebhook, signature } from "./webhook.ts";
import { downUrl, startWebhookReceiver } from "../testing/webhook_receiver.ts";

const FAST = { timeoutMs: 1000, backoffMs: 20 };

/** The hex HMAC-SHA256 of `body` under `secret`, by WebCrypto: not by the code under test. */
async function hmacHex(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(body)));
  return [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

Deno.test("postWebhook() POSTs the body as JSON, signed with the HMAC-SHA256 of exactly those bytes", async () => {
  await using receiver = startWebhookReceiver();
  const body = JSON.stringify({ event: "deployment.started", text: "production v1 started (zoë)" });
  const outcome = await postWebhook(receiver.url, body, {
    ...FAST,
    secret: "s3cret-key",
    headers: { "x-shiplog-event": "deployment.started" },
  });
  assert.deepEqual(outcome, { delivered: true, tries: 1, problem: null });
  const [request] = await receiver.waitFor(1);
  assert.equal(request.method, "POST");
  assert.equal(request.body, body);
  assert.equal(request.headers.get("content-type"), "application/json");
  assert.equal(request.headers.get("x-shiplog-event"), "deployment.started");
  assert.equal(request.headers.get("x-shiplog-signature"), `sha256=${await hmacHex("s3cret-key", body)}`);
  assert.equal(signature("s3cret-key", body), `sha256=${await hmacHex("s3cret-key", body)}`);
  // Another key gives another signature: a receiver can tell.
  assert.notEqual(signature("other-key", body), signature("s3cret-key", body));
});

Deno.test("postWebhook() sends no signature without a key", async () => {
  await using receiver = startWebhookReceiver();
  assert.equal((await postWebhook(receiver.url, "{}", FAST)).delivered, true);
  assert.equal((await receiver.waitFor(1))[0].headers.get("x-shiplog-signature"), null);
});

Deno.test("postWebhook() tries again after a 500, waiting the backoff, and stops at the 200", async () => {
  await using receiver = startWebhookReceiver((_, index) => index === 0 ? 500 : 200);
  const outcome = await postWebhook(receiver.url, '{"n":1}', { ...FAST, backoffMs: 150, secret: "k" });
  assert.deepEqual(outcome, { delivered: true, tries: 2, problem: null });
  const [first, second] = receiver.received;
  assert.equal(receiver.received.length, 2);
  assert.ok(second.at - first.at >= 140, `tried again after ${second.at - first.at} ms`);
  // The same delivery on every try: the same body and signature.
  assert.equal(second.body, first.body);
  assert.equal(second.headers.get("x-shiplog-signature"), first.headers.get("x-shiplog-signature"));
});

Deno.test("postWebhook() gives up after 3 tries at a receiver that answers 500, saying so", async () => {
  await using receiver = startWebhookReceiver(() => 500);
  assert.deepEqual(await postWebhook(receiver.url, "{}", FAST), {
    delivered: false,
    tries: 3,
    problem: "answered 500",
  });
  assert.equal(receiver.received.length, 3);
});

Deno.test("postWebhook() does not try again an answer that will not change (404), nor follow a redirect", async () => {
  await using receiver = startWebhookReceiver((_, index) => index === 0 ? 404 : 308);
  assert.deepEqual(await postWebhook(receiver.url, "{}", FAST), {
    delivered: false,
    tries: 1,
    problem: "answered 404",
  });
  assert.deepEqual(await postWebhook(receiver.url, "{}", FAST), {
    delivered: false,
    tries: 1,
    problem: "answered 308",
  });
  assert.equal(receiver.received.length, 2);
});

Deno.test("postWebhook() tries a receiver that is down 3 times, then gives up with the connection's error", async () => {
  const started = performance.now();
  const outcome = await postWebhook(`${downUrl()}/T000/B000/XXXX`, "{}", { ...FAST, backoffMs: 50 });
  assert.equal(outcome.delivered, false);
  assert.equal(outcome.tries, 3);
  assert.match(outcome.problem!, /Connection refused/);
  // The URL is often the webhook's secret: the log line does not repeat it.
  assert.ok(!outcome.problem!.includes("127.0.0.1"), outcome.problem!);
  // Paused 50 then 100 ms between the tries.
  assert.ok(performance.now() - started >= 140);
});

Deno.test("postWebhook() ends a try that gets no answer after the timeout, and tries again", async () => {
  await using receiver = startWebhookReceiver(() => "hang");
  const started = performance.now();
  const outcome = await postWebhook(receiver.url, "{}", { tries: 2, timeoutMs: 200, backoffMs: 10 });
  const elapsed = performance.now() - started;
  assert.deepEqual(outcome, { delivered: false, tries: 2, problem: "no answer within 200 ms" });
  assert.equal(receiver.received.length, 2);
  assert.ok(elapsed >= 400 && elapsed < 2000, `took ${elapsed} ms`);
});

Deno.test("postWebhook() stops at once, between tries or during one, when its signal is aborted", async () => {
  await using receiver = startWebhookReceiver(() => "hang");
  const stop = new AbortController();
  const delivering = postWebhook(receiver.url, "{}", {
    tries: 3,
    timeoutMs: 5000,
    backoffMs: 5000,
    signal: stop.signal,
  });
  await receiver.waitFor(1);
  const started = performance.now();
  stop.abort();
  assert.deepEqual(await delivering, { delivered: false, tries: 1, problem: "shiplog was stopped" });
  assert.ok(performance.now() - started < 1000);
});
