/**
 * The claims on deliveries with a real `redis-server`: two claims on two connections are two instances; one of
 * them gets each event of each deployment for each webhook, and a Redis that is away is said, not guessed.
 */

import assert from "node:assert/strict";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { RedisDeliveryClaim } from "./redis_delivery_claim.ts";

const HOOK = "https://hooks.chat.test/services/T0/B0/secret-part";

Deno.test(
  "RedisDeliveryClaim gives each event of a deployment for a webhook to one instance",
  REDIS_TEST,
  async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connections = await Promise.all(
      [0, 1].map(() => RedisConnection.connect(redis.url, { prefix: "claims", commandTimeoutMs: 500 })),
    );
    try {
      const [a, b] = connections.map((connection, i) =>
        new RedisDeliveryClaim(connection, { instance: `web-${i + 1}`, ttlMs: 60_000 })
      );
      const id = crypto.randomUUID();
      // Both at once, as two instances hearing the same change.
      const first = await Promise.all([
        a.take(id, "deployment.started", HOOK),
        b.take(id, "deployment.started", HOOK),
      ]);
      assert.deepEqual(first.toSorted(), [false, true]);
      assert.equal(await a.take(id, "deployment.started", HOOK), false, "taken once, for good");
      // Another event, another webhook, another deployment: claims of their own.
      assert.equal(await b.take(id, "deployment.finished", HOOK), true);
      assert.equal(await a.take(id, "deployment.finished", `${HOOK}-2`), true);
      assert.equal(await a.take(crypto.randomUUID(), "deployment.started", HOOK), true);

      const keys = (await redis.cli("--scan", "--pattern", "claims:notified:*")).split("\n").sort();
      assert.equal(keys.length, 4);
      const started = keys.find((key) => key.startsWith(`claims:notified:${id}:deployment.started:`))!;
      assert.match(started, /:[0-9a-f]{16}$/);
      // The key names the instance that sends, never the URL (its path is the webhook's secret).
      assert.ok(keys.every((key) => !key.includes("secret-part")));
      assert.equal(await redis.cli("get", started), first[0] ? "web-1" : "web-2");
      const ttl = Number(await redis.cli("pttl", started));
      assert.ok(ttl > 50_000 && ttl <= 60_000, `PTTL ${ttl}`);

      await redis.stop();
      await assert.rejects(a.take(crypto.randomUUID(), "deployment.started", HOOK));
    } finally {
      for (const connection of connections) await connection.close();
    }
  },
);
