/**
 * Tests of the cluster's queue on a real redis-server: claims by several instances at once, with no runner, so
 * that only the scripts and the queue are under test.
 */

import assert from "node:assert/strict";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { RunCluster } from "./run_cluster.ts";

Deno.test({
  name: "RedisRunQueue.claim() by four instances at once hands out every deployment once, in queue order",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    const opened: { connection: RedisConnection; store: RedisStore; cluster: RunCluster }[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const connection = await RedisConnection.connect(server.url);
        const store = await RedisStore.open(connection);
        opened.push({
          connection,
          store,
          cluster: await RunCluster.join(connection, store, { instance: `i${i}` }),
        });
      }
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) ids.push((await opened[i % 4].cluster.deployments.create(null)).id);

      const claimed = await Promise.all(opened.map(async ({ cluster }) => {
        const mine: string[] = [];
        for (let id = await cluster.queue.claim(); id !== undefined; id = await cluster.queue.claim()) {
          mine.push(id);
        }
        return mine;
      }));
      assert.deepEqual(claimed.flat().sort(), [...ids].sort(), "each handed out once");
      for (const mine of claimed) {
        assert.deepEqual(mine, ids.filter((id) => mine.includes(id)), "each instance's in queue order");
      }
      assert.ok(claimed.filter((mine) => mine.length > 0).length > 1, "more than one instance claimed");
      const { deployments } = opened[0].cluster;
      claimed.forEach((mine, i) => {
        for (const id of mine) {
          assert.equal(deployments.get(id)!.status, "running");
          assert.equal(deployments.get(id)!.instance, `i${i}`, "the record names the claimer");
        }
      });
      assert.equal(await server.cli("ZCARD", "shiplog:running"), "200");
      assert.match(await server.cli("GET", `shiplog:lease:${claimed[0][0] ?? claimed.flat()[0]}`), /^i\d /);
    } finally {
      for (const { connection, store, cluster } of opened) {
        await cluster.close();
        await store.close();
        await connection.close();
      }
    }
  },
});
