/**
 * The routes while the shared store is away: a real server on a free port whose health is a real
 * `RedisConnection` to a real `redis-server`, stopped and started again. The log and records stay in files
 * here, so that what is checked is the HTTP side alone: `/healthz`, `POST /start`, the event streams, the
 * metrics, and a real `EventSource` that keeps retrying and resumes with no gap and no duplicate.
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import { EventSource } from "npm:eventsource@5.1.5";
import { RedisConnection } from "../redis/redis_connection.ts";
import { serveHttp } from "../testing/http_test_server.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { makeTempDir, waitFor, waitForValue, withDeadline } from "../testing/test_helpers.ts";

const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
}

async function start(base: string): Promise<Response> {
  return await fetch(`${base}start`, {
    method: "POST",
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(10_000),
  });
}

/** Reads an event stream until `until` holds for what arrived (it stays open), or until it ends. */
async function readStream(
  response: Response,
  until: (text: string) => boolean = () => false,
): Promise<{ text: string; ended: boolean; rest: () => Promise<{ text: string; ended: boolean }> }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const read = async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return { text, ended: true };
      text += value;
      if (until(text)) return { text, ended: false };
    }
  };
  const first = await withDeadline("the stream's first events", read(), 10_000);
  return {
    ...first,
    rest: async () => {
      until = () => false;
      try {
        return await withDeadline("the end of the stream", read(), 10_000);
      } finally {
        await reader.cancel().catch(() => {});
      }
    },
  };
}

Deno.test("without a health dependency (files): /healthz is 200 and /metrics names the instance, no Redis", async () => {
  await using dir = await makeTempDir();
  await using served = await serveHttp(dir.path, { command: "true" });
  const health = await get(`${served.url}healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "ok\n");
  const metrics = await (await get(`${served.url}metrics`)).text();
  assert.match(metrics, /^shiplog_instance_info\{instance="web-1"\} 1$/m);
  assert.doesNotMatch(metrics, /shiplog_redis_up/);
});

Deno.test({
  name:
    "while Redis is away: /healthz and POST /start are 503, event streams end and EventSource resumes after",
  ...REDIS_TEST,
  async fn(t) {
    await using redis = await startRedisServer();
    const connection = await RedisConnection.connect(redis.url, {
      commandTimeoutMs: 500,
      connectTimeoutMs: 200,
    });
    try {
      await using dir = await makeTempDir();
      // A line every 50 ms for about 3 s: lines keep coming while Redis is away and after it is back.
      await using served = await serveHttp(dir.path, {
        command: "i=1; while [ $i -le 60 ]; do echo line $i; i=$((i+1)); sleep 0.05; done",
        health: connection,
      });
      const base = served.url;

      let id = "";
      await t.step("with Redis up: 200 ok, shiplog_redis_up 1, and a start is 201", async () => {
        const health = await get(`${base}healthz`);
        assert.equal(health.status, 200);
        assert.equal(await health.text(), "ok\n");
        assert.match(await (await get(`${base}metrics`)).text(), /^shiplog_redis_up 1$/m);
        const response = await start(base);
        assert.equal(response.status, 201);
        id = (await response.json()).id;
      });

      // A real EventSource on the deployment's log: it must see every line once, in order, across the outage.
      const received: number[] = [];
      const unavailable: string[] = [];
      const source = new EventSource(`${base}events/${id}`);
      source.addEventListener("message", (event) => received.push(Number(event.lastEventId)));
      source.addEventListener("unavailable", (event) => unavailable.push(event.data));
      const done = new Promise<void>((resolve) => source.addEventListener("done", () => resolve()));
      try {
        await waitFor("the first lines", () => received.length >= 3, WAIT);
        const feed = await readStream(
          await get(`${base}events`),
          (text) => text.includes("event: deployments"),
        );
        assert.equal(feed.ended, false);

        await t.step("Redis stopped: /healthz is 503 with the reason, and shiplog_redis_up 0", async () => {
          await redis.stop();
          const response = await waitForValue("a 503 from /healthz", async () => {
            const response = await get(`${base}healthz`);
            if (response.status === 503) return response;
            await response.body?.cancel();
            return undefined;
          }, WAIT);
          assert.match(await response.text(), /^unavailable: .*Redis at redis:\/\/127\.0\.0\.1:\d+.*\n$/);
          assert.ok(Number(response.headers.get("retry-after")) > 0);
          assert.match(await (await get(`${base}metrics`)).text(), /^shiplog_redis_up 0$/m);
        });

        await t.step("the open home feed ends with an unavailable event and a retry delay", async () => {
          const { text, ended } = await feed.rest();
          assert.equal(ended, true);
          assert.match(text, /retry: \d+\n\nevent: unavailable\ndata: the store cannot be reached: .*Redis/);
        });

        await t.step("POST /start is 503 with a clear message and Retry-After", async () => {
          const response = await start(base);
          assert.equal(response.status, 503);
          assert.equal(response.headers.get("retry-after"), "5");
          assert.match(
            (await response.json()).error,
            /^Cannot start a deployment now: the store cannot be reached/,
          );
        });

        await t.step("cancel, an append and the raw log are 503 too, not 500", async () => {
          for (
            const [path, init, what] of [
              [`api/deployments/${id}/cancel`, { method: "POST" }, "cancel a deployment"],
              [`api/deployments/${id}/log`, {
                method: "POST",
                headers: { "content-type": "text/plain" },
                body: "from CI\n",
              }, "append to a log"],
              [`deployments/${id}/log`, {}, "read the log"],
            ] as const
          ) {
            const response = await fetch(`${base}${path}`, init);
            assert.equal(response.status, 503, path);
            assert.equal(response.headers.get("retry-after"), "5");
            assert.match(
              await response.text(),
              new RegExp(`^Cannot ${what} now: the store cannot be reached`),
            );
          }
        });

        await t.step(
          "a new event stream is a 200 that says unavailable, with retry, and ends at once",
          async () => {
            for (const path of ["events", `events/${id}`]) {
              const response = await get(`${base}${path}`);
              assert.equal(response.status, 200);
              assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
              const { text, ended } = await readStream(response);
              assert.equal(ended, true);
              const retry = Number(/^retry: (\d+)$/m.exec(text)?.[1]);
              assert.ok(retry >= 100 && retry <= 200, `retry ${retry} within 100 to 200 ms`);
              assert.match(text, /^event: unavailable$/m);
              assert.doesNotMatch(text, /^id:/m);
            }
          },
        );

        await t.step("the EventSource keeps retrying while Redis is away", async () => {
          await waitFor("two unavailable events", () => unavailable.length >= 2, WAIT);
          assert.notEqual(source.readyState, EventSource.CLOSED);
        });

        await t.step(
          "Redis back: 200 again, a start works, and the log resumes with no gap, no duplicate",
          async () => {
            const before = received.length;
            await redis.start();
            await waitFor("a 200 from /healthz", async () => {
              const response = await get(`${base}healthz`);
              await response.body?.cancel();
              return response.status === 200;
            }, WAIT);
            await waitFor("lines after the outage", () => received.length > before, WAIT);
            const response = await start(base);
            assert.equal(response.status, 201);
            await response.body?.cancel();
            await withDeadline("the log's done event", done, 15_000);
            assert.deepEqual(received, Array.from({ length: 60 }, (_, i) => i + 1));
          },
        );
      } finally {
        source.close();
      }
    } finally {
      connection.close();
    }
  },
});

Deno.test({
  name:
    "with a token, /healthz (open to anyone) says the store cannot be reached without naming Redis's address",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(redis.url, {
      commandTimeoutMs: 500,
      connectTimeoutMs: 200,
    });
    try {
      await using dir = await makeTempDir();
      await using served = await serveHttp(dir.path, {
        command: "true",
        health: connection,
        token: "a-long-token",
      });
      await redis.stop();
      const response = await waitForValue("a 503 from /healthz", async () => {
        const response = await get(`${served.url}healthz`);
        if (response.status === 503) return response;
        await response.body?.cancel();
        return undefined;
      }, WAIT);
      assert.equal(await response.text(), "unavailable: the store cannot be reached\n");
      await redis.start();
      await waitFor("Redis back", () => connection.problem === undefined, WAIT);
    } finally {
      await connection.close();
    }
  },
});

Deno.test({
  name:
    "a Redis that hangs (SIGSTOP): /healthz is 503 within a second or two, an open feed ends, 200 once it answers",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(redis.url, {
      pingIntervalMs: 200,
      pingTimeoutMs: 200,
    });
    try {
      await using dir = await makeTempDir();
      await using served = await serveHttp(dir.path, { command: "echo hi", health: connection });
      const base = served.url;
      const feed = await readStream(
        await get(`${base}events`),
        (text) => text.includes("event: deployments"),
      );
      redis.pause();
      const paused = performance.now();
      const response = await waitForValue("a 503 from /healthz", async () => {
        const response = await get(`${base}healthz`);
        if (response.status === 503) return response;
        await response.body?.cancel();
        return undefined;
      }, WAIT);
      // Two looks and their timeouts (800 ms), and a margin: well before a command's timeout (5 s).
      assert.ok(performance.now() - paused < 2000, `503 after ${Math.round(performance.now() - paused)} ms`);
      assert.match(
        await response.text(),
        /^unavailable: Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer\n$/,
      );
      const { text, ended } = await feed.rest();
      assert.equal(ended, true);
      assert.match(
        text,
        /event: unavailable\ndata: the store cannot be reached: Redis at .* does not answer/,
      );
      redis.resume();
      await waitFor("a 200 from /healthz", async () => {
        const response = await get(`${base}healthz`);
        await response.body?.cancel();
        return response.status === 200;
      }, WAIT);
    } finally {
      redis.resume();
      await connection.close();
    }
  },
});
