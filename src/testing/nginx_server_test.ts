/**
 * The example configs of `deploy/` work as the README says: a real nginx run from `deploy/nginx.conf` in front
 * of two real shiplogs, and a real redis-server started with `deploy/redis.conf`.
 */

import assert from "node:assert/strict";
import { createDeployment, startTestApp, TIMEOUT_MS } from "./test_app.ts";
import { NGINX_CONF, NGINX_TEST, startNginx, testNginxConfig } from "./nginx_server.ts";
import { REDIS_TEST, startRedisServer } from "./redis_server.ts";
import { withDeadline } from "./test_helpers.ts";

/** The text of an event stream as it arrives, read with a deadline for each thing waited for. */
class StreamText {
  #reader: ReadableStreamDefaultReader<string>;
  #text = "";
  /** A read under way, kept across waits that timed out so that nothing it brings is lost. */
  #pending: Promise<ReadableStreamReadResult<string>> | undefined;
  ended = false;

  constructor(response: Response) {
    this.#reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Waits until `needle` arrives; returns the text up to its end and drops it, so a later wait reads on. */
  async until(needle: string, timeoutMs = 5000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#text.includes(needle)) {
      if (this.ended) {
        throw new Error(`the stream ended before "${needle}"; got ${JSON.stringify(this.#text)}`);
      }
      await this.#read(`"${needle}"`, deadline);
    }
    const end = this.#text.indexOf(needle) + needle.length;
    const read = this.#text.slice(0, end);
    this.#text = this.#text.slice(end);
    return read;
  }

  /** Waits until the stream ends. */
  async end(timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.ended) await this.#read("the end of the stream", deadline);
  }

  async #read(what: string, deadline: number): Promise<void> {
    this.#pending ??= this.#reader.read();
    const { value, done } = await withDeadline(
      `${what} (got ${JSON.stringify(this.#text)})`,
      this.#pending,
      Math.max(0, deadline - performance.now()),
    );
    this.#pending = undefined;
    if (done) this.ended = true;
    else this.#text += value;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/**
 * GETs `path` through nginx until an instance that knows the deployment answers: with file stores each
 * instance has its own deployments, and nginx takes turns, so the other one says 404.
 */
async function getKnown(nginx: { url: string }, path: string, headers: Record<string, string> = {}) {
  for (let attempt = 0; attempt < 6; attempt++) {
    const response = await fetch(new URL(path, nginx.url), { headers });
    if (response.status !== 404) return response;
    await response.body?.cancel();
  }
  throw new Error(`no instance behind nginx knows ${path}`);
}

Deno.test("testNginxConfig() replaces the placeholders of deploy/nginx.conf and nothing else", async () => {
  const example = await Deno.readTextFile(NGINX_CONF);
  const config = testNginxConfig(example, ["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"], 4321);
  assert.match(
    config,
    /upstream shiplog \{\n(.*\n)*? {8}server 127\.0\.0\.1:1001;\n {8}server 127\.0\.0\.1:1002;\n {8}server 127\.0\.0\.1:1003;\n/,
  );
  assert.doesNotMatch(config, /server 127\.0\.0\.1:808[12];/);
  assert.match(config, /^ {8}listen 127\.0\.0\.1:4321;$/m);
  assert.match(config, /^pid nginx\.pid;$/m);
  // Every line of the example is kept, but for the placeholders.
  const kept = example.split("\n").filter((line) =>
    !/^\s*(server 127\.0\.0\.1:808[12]|listen 8080);/.test(line)
  );
  for (const line of kept) assert.ok(config.split("\n").includes(line), line);
  assert.throws(
    () => testNginxConfig(example.replace(/^( *)listen 8080;/m, "$1listen 80;"), [], 1),
    /listen 8080;/,
  );
});

Deno.test({
  name:
    "deploy/nginx.conf in front of two shiplogs: spread, live streams, heartbeats, X-Forwarded-For, failover",
  ...NGINX_TEST,
  fn: async (t) => {
    const config = {
      command: "echo started; sleep 30",
      heartbeatSeconds: 1,
      trustedProxies: ["127.0.0.1"],
      maxViewersPerClient: 1,
    };
    await using first = await startTestApp(config);
    await using second = await startTestApp(config);
    await using nginx = await startNginx([`127.0.0.1:${first.port}`, `127.0.0.1:${second.port}`]);
    const deployment = await createDeployment(first);
    const other = await createDeployment(second);
    const streams: StreamText[] = [];
    try {
      await t.step("requests are spread over both instances", async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 4; i++) {
          const response = await fetch(new URL("api/deployments", nginx.url), {
            signal: AbortSignal.timeout(TIMEOUT_MS),
          });
          assert.equal(response.status, 200);
          for (const { id } of await response.json()) seen.add(id);
        }
        assert.deepEqual([...seen].sort(), [deployment.id, other.id].sort());
      });

      const live = await getKnown(nginx, `events/${deployment.id}`, { "x-forwarded-for": "203.0.113.1" });
      const stream = new StreamText(live);
      streams.push(stream);

      await t.step(
        "an event stream through nginx delivers each line within a second, while it stays open",
        async () => {
          assert.equal(live.status, 200);
          assert.match(live.headers.get("content-type") ?? "", /^text\/event-stream/);
          await stream.until("data: started\n");
          for (const n of [1, 2, 3]) {
            const sent = performance.now();
            const response = await fetch(new URL(`api/deployments/${deployment.id}/log`, first.url), {
              method: "POST",
              headers: { "content-type": "text/plain" },
              body: `live line ${n}\n`,
            });
            assert.equal(response.status, 200);
            await response.body?.cancel();
            await stream.until(`data: live line ${n}\n`, 1000);
            assert.ok(performance.now() - sent < 1000);
          }
          assert.equal(stream.ended, false);
        },
      );

      await t.step("heartbeats pass through while the stream is idle", async () => {
        await stream.until(": heartbeat", 3000);
        await stream.until(": heartbeat", 3000);
      });

      await t.step("X-Forwarded-For reaches shiplog: streams are capped per forwarded client", async () => {
        // One stream per client (--max-viewers-per-client 1): 203.0.113.1 holds one already. From 127.0.0.1,
        // a trusted proxy as nginx is, the client's own header is believed.
        const otherClient = await getKnown(nginx, `events/${deployment.id}`, {
          "x-forwarded-for": "203.0.113.2",
        });
        assert.equal(otherClient.status, 200);
        streams.push(new StreamText(otherClient));
        const sameClient = await getKnown(nginx, `events/${deployment.id}`, {
          "x-forwarded-for": "203.0.113.1",
        });
        assert.equal(sameClient.status, 429);
        assert.match(await sameClient.text(), /from your address/);
      });

      await t.step(
        "nginx appends the client's address to X-Forwarded-For; what the client sent is not believed",
        async () => {
          if (!nginx.ipv6Url) {
            console.error(
              "!! no IPv6 loopback: the check that nginx appends the client's address is SKIPPED",
            );
            return;
          }
          // Over ::1 the client is not a trusted proxy, unlike nginx's own connections to shiplog (127.0.0.1).
          const overIpv6 = { url: nginx.ipv6Url };
          const forwarded = await getKnown(overIpv6, `events/${deployment.id}`);
          assert.equal(forwarded.status, 200);
          streams.push(new StreamText(forwarded));
          // Straight from 127.0.0.1: another client than ::1, so nginx's request did not count as 127.0.0.1.
          const direct = await fetch(new URL(`events/${deployment.id}`, first.url));
          assert.equal(direct.status, 200);
          streams.push(new StreamText(direct));
          // A forged header from ::1 is left of nginx's entry for ::1: still the same client, so past its cap.
          const forged = await getKnown(overIpv6, `events/${deployment.id}`, {
            "x-forwarded-for": "203.0.113.3",
          });
          assert.equal(forged.status, 429);
          await forged.body?.cancel();
        },
      );

      await t.step("the end of a stream passes through: done, then the stream ends", async () => {
        const response = await fetch(new URL(`api/deployments/${deployment.id}/cancel`, first.url), {
          method: "POST",
        });
        assert.equal(response.status, 200);
        await response.body?.cancel();
        await stream.until("event: done\n");
        await stream.end();
      });

      await t.step("an instance that is down is skipped: every request reaches the other", async () => {
        await second.shutdown();
        for (let i = 0; i < 4; i++) {
          const response = await fetch(new URL("api/deployments", nginx.url), {
            signal: AbortSignal.timeout(TIMEOUT_MS),
          });
          assert.equal(response.status, 200, await response.clone().text());
          assert.deepEqual((await response.json()).map(({ id }: { id: string }) => id), [deployment.id]);
        }
      });
    } finally {
      for (const stream of streams) await stream.cancel();
    }
    assert.doesNotMatch(await nginx.errorLog(), /\[(emerg|alert|crit)\]/);
  },
});

Deno.test({
  name: "every test redis-server runs with deploy/redis.conf: appendonly, appendfsync always, noeviction",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer();
    assert.match(
      await redis.cli("INFO", "server"),
      new RegExp(`^config_file:${NGINX_CONF.replace("nginx.conf", "redis.conf")}\\r?$`, "m"),
    );
    assert.equal(await redis.cli("CONFIG", "GET", "appendonly"), "appendonly\nyes");
    assert.equal(await redis.cli("CONFIG", "GET", "appendfsync"), "appendfsync\nalways");
    assert.equal(await redis.cli("CONFIG", "GET", "maxmemory-policy"), "maxmemory-policy\nnoeviction");
  },
});
