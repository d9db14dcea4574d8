/**
 * Tests of the reaper's rule on a real redis-server: a running deployment is recorded interrupted only when its
 * lease was missing at two looks in a row with Redis reachable throughout. The looks are called by the test.
 */

import assert from "node:assert/strict";
import { Deployments } from "./deployments.ts";
import { loadRunScripts } from "./run_scripts.ts";
import { Reaper } from "./reaper.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { RedisRecords } from "./redis_records.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { deploymentRecord, waitFor } from "../testing/test_helpers.ts";

const LAST_SEEN = Date.parse("2026-11-24T08:00:05.000Z");

Deno.test({
  name:
    "Reaper interrupts a running deployment only when its lease is missing at two looks in a row with Redis up",
  ...REDIS_TEST,
  fn: async (t) => {
    await using server = await startRedisServer();
    const connection = await RedisConnection.connect(server.url, { commandTimeoutMs: 1000 });
    const store = await RedisStore.open(connection);
    const scripts = await loadRunScripts();
    const records = new RedisRecords(connection, store, scripts, { instance: "reaper" });
    const deployments = await Deployments.load(store, { shared: records });
    const reaper = new Reaper(connection, store, deployments, scripts, { intervalMs: 3_600_000 });
    /** A deployment recorded running on instance "gone", listed among the running, with no lease. */
    const orphan = async () => {
      const record = deploymentRecord({
        status: "running",
        startedAt: "2026-11-24T08:00:01.000Z",
        instance: "gone",
      });
      await store.save(record);
      await server.cli("ZADD", "shiplog:running", String(LAST_SEEN), record.id);
      await waitFor("it to be heard", () => deployments.get(record.id) !== undefined);
      return record.id;
    };
    try {
      await t.step(
        "missing at two looks: interrupted, naming the instance, at its last sign of life",
        async () => {
          const id = await orphan();
          await reaper.look();
          assert.equal(deployments.get(id)!.status, "running", "not at the first look");
          await reaper.look();
          const record = deployments.get(id)!;
          assert.equal(record.status, "interrupted");
          assert.equal(record.reason, "instance gone stopped answering (its lease expired)");
          assert.equal(record.finishedAt, new Date(LAST_SEEN).toISOString());
          assert.match(await server.cli("GET", `shiplog:deployment:${id}`), /"interrupted"/);
          assert.equal(await server.cli("ZSCORE", "shiplog:running", id), "", "no longer listed as running");
        },
      );

      await t.step("a lease back before the second look: left running", async () => {
        const id = await orphan();
        await reaper.look();
        await server.cli("SET", `shiplog:lease:${id}`, "gone token", "PX", "60000");
        await reaper.look();
        await server.cli("DEL", `shiplog:lease:${id}`);
        assert.equal(deployments.get(id)!.status, "running");
        await reaper.look();
        assert.equal(deployments.get(id)!.status, "running", "missing once since");
        await reaper.look();
        assert.equal(deployments.get(id)!.status, "interrupted");
      });

      await t.step("Redis away between two looks: the count starts over", async () => {
        const id = await orphan();
        await reaper.look();
        await server.stop();
        await waitFor("the connection to be down", () => connection.problem !== undefined);
        await server.start();
        await waitFor("the connection to be up", () => connection.problem === undefined, { timeoutMs: 5000 });
        await reaper.look();
        assert.equal(deployments.get(id)!.status, "running", "the look before the outage does not count");
        await reaper.look();
        assert.equal(deployments.get(id)!.status, "interrupted");
      });

      await t.step("one that ended meanwhile is only taken off the running ones", async () => {
        const id = await orphan();
        await reaper.look();
        await store.save({
          ...deployments.get(id)!,
          status: "succeeded",
          finishedAt: "2026-11-24T08:00:09.000Z",
        });
        await reaper.look();
        assert.equal(deployments.get(id)!.status, "succeeded");
        assert.equal(await server.cli("ZSCORE", "shiplog:running", id), "");
      });
    } finally {
      await reaper.close();
      records.close();
      await store.close();
      await connection.close();
    }
  },
});
