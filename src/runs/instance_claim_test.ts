import assert from "node:assert/strict";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { InstanceClaim } from "./instance_claim.ts";

const SHORT = { ttlMs: 400, renewMs: 100 };

Deno.test({
  name: "InstanceClaim: a name held by a live process is refused after a wait; let go or lapsed, it is taken",
  ...REDIS_TEST,
  fn: async (t) => {
    await using redis = await startRedisServer({ appendOnly: false });
    const first = await RedisConnection.connect(redis.url);
    const second = await RedisConnection.connect(redis.url);
    try {
      const held = await InstanceClaim.take(first, "web-1", SHORT);

      await t.step("a second process of the name waits, then is refused while the first renews", async () => {
        let waited = 0;
        const started = performance.now();
        await assert.rejects(
          InstanceClaim.take(second, "web-1", { ...SHORT, onWait: () => waited++ }),
          /^Error: Cannot join the cluster as instance "web-1": another shiplog of that name is running; give each instance its own --instance$/,
        );
        assert.equal(waited, 1);
        assert.ok(performance.now() - started >= SHORT.ttlMs, "it waited past the time to live");
      });

      await t.step("another name is no trouble", async () => {
        await (await InstanceClaim.take(second, "web-2", SHORT)).close();
      });

      await t.step("let go at shutdown, the name is taken at once", async () => {
        await held.close();
        const started = performance.now();
        const again = await InstanceClaim.take(second, "web-1", SHORT);
        assert.ok(performance.now() - started < SHORT.ttlMs);
        await again.close();
      });

      await t.step("a holder that stops renewing (killed) loses the name when it lapses", async () => {
        const dying = await RedisConnection.connect(redis.url);
        const lost = await InstanceClaim.take(dying, "web-3", SHORT);
        // Its connection gone as with kill -9: no renewal reaches Redis, nor does the release of close().
        await dying.close();
        await lost.close();
        const taken = await InstanceClaim.take(second, "web-3", SHORT);
        assert.ok(
          Number(await redis.cli("PTTL", "shiplog:instance:web-3")) > 0,
          "held again, with a time to live",
        );
        await taken.close();
      });
    } finally {
      await first.close();
      await second.close();
    }
  },
});
