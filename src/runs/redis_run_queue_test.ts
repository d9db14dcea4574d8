/**
 * Tests of the cluster's queue on a real redis-server: claims by several instances at once, with no runner, so
 * that only the scripts and the queue are under test.
 */

import assert from "node:assert/strict";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "../testing/redis_server.ts";
import { waitFor } from "../testing/test_helpers.ts";
import { loadRunScripts } from "./run_scripts.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { RunCluster, type RunClusterOptions } from "./run_cluster.ts";

Deno.test({
  name:
    "RedisRunQueue.claim() by four instances at once hands out every deployment once, one per target at a time, in queue order",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    const targets = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const commands = Object.fromEntries(targets.map((target) => [target, `./deploy.sh ${target}`]));
    const opened: { connection: RedisConnection; store: RedisStore; cluster: RunCluster }[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const connection = await RedisConnection.connect(server.url);
        const store = await RedisStore.open(connection);
        opened.push({
          connection,
          store,
          cluster: await RunCluster.join(connection, store, { instance: `i${i}`, commands }),
        });
      }
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const { deployments } = opened[i % 4].cluster;
        ids.push((await deployments.create(null, { target: targets[i % targets.length] })).id);
      }
      const { deployments } = opened[0].cluster;
      const targetOf = (id: string) => deployments.get(id)!.target;
      const claimed: string[][] = [[], [], [], []];
      let waiting = [...ids];
      while (waiting.length > 0) {
        // Every instance claims until none is handed out: one deployment per target at most, the first of each.
        const round = await Promise.all(opened.map(async ({ cluster }) => {
          const mine: string[] = [];
          for (let id = await cluster.queue.claim(); id !== undefined; id = await cluster.queue.claim()) {
            mine.push(id);
          }
          return mine;
        }));
        const taken = round.flat();
        const firsts = targets.map((target) => waiting.find((id) => targetOf(id) === target)).filter(Boolean);
        assert.deepEqual(taken.sort(), firsts.sort(), "the first waiting of each target, once");
        for (const [i, mine] of round.entries()) {
          claimed[i].push(...mine);
          for (const id of mine) {
            const record = opened[i].cluster.deployments.get(id)!;
            assert.equal(record.status, "running");
            assert.equal(record.instance, `i${i}`, "the record names the claimer");
            assert.equal(record.command, `./deploy.sh ${record.target}`, "the command of its target");
            await opened[i].cluster.deployments.update(id, {
              status: "succeeded",
              finishedAt: record.startedAt,
            });
            opened[i].cluster.queue.finished(id);
          }
        }
        waiting = waiting.filter((id) => !taken.includes(id));
      }
      assert.deepEqual(claimed.flat().sort(), [...ids].sort(), "each handed out once");
      for (const mine of claimed) {
        assert.deepEqual(mine, ids.filter((id) => mine.includes(id)), "each instance's in queue order");
      }
      assert.ok(claimed.filter((mine) => mine.length > 0).length > 1, "more than one instance claimed");
    } finally {
      for (const { connection, store, cluster } of opened) {
        await cluster.close();
        await store.close();
        await connection.close();
      }
    }
  },
});

Deno.test({
  name:
    "RedisRunQueue.claim() leaves a deployment of a target this instance does not know to one that knows it",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using staging = await instance(server, "staging-only", { commands: { staging: "./staging.sh" } });
    await using both = await instance(server, "both", {
      commands: { staging: "./staging.sh", production: "./production.sh" },
    });
    const production = await staging.cluster.deployments.create(null, { target: "production" });
    const later = await staging.cluster.deployments.create(null, { target: "staging" });
    assert.equal(await staging.cluster.queue.claim(), later.id, "past the one it cannot run");
    assert.equal(await staging.cluster.queue.claim(), undefined);
    assert.equal(await both.cluster.queue.claim(), production.id);
    assert.equal(both.cluster.deployments.get(production.id)!.command, "./production.sh");
  },
});

/** One instance of a cluster on `server`, its commands timing out after 300 ms; closed with the disposable. */
async function instance(server: RedisServer, name = "a", options: Partial<RunClusterOptions> = {}) {
  const connection = await RedisConnection.connect(server.url, { commandTimeoutMs: 300 });
  const store = await RedisStore.open(connection);
  // Renewals and looks at the queue only when the test asks: nothing but the test's commands.
  const cluster = await RunCluster.join(connection, store, {
    instance: name,
    renewMs: 60_000,
    pollMs: 60_000,
    reapMs: 60_000,
    ...options,
  });
  return {
    connection,
    cluster,
    [Symbol.asyncDispose]: async () => {
      await cluster.close();
      await store.close();
      await connection.close();
    },
  };
}

Deno.test({
  name:
    "RedisRunQueue.claim() that times out while Redis runs it anyway: the next claim adopts that deployment",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using a = await instance(server);
    const { queue, deployments } = a.cluster;
    // Redis knows the script (EVALSHA): a claim it has never seen would fail NOSCRIPT, after the pause.
    assert.equal(await queue.claim(), undefined);
    const { id } = await deployments.create(null);
    let available = 0;
    queue.addEventListener("available", () => available++);

    await server.cli("CLIENT", "PAUSE", "1000", "WRITE");
    await assert.rejects(queue.claim(), /timed out/);
    await waitFor("Redis to run the claim", async () => {
      return JSON.parse(await server.cli("GET", `shiplog:deployment:${id}`)).status === "running";
    }, { timeoutMs: 3000, intervalMs: 50 });
    await waitFor("the runner to be asked to claim again", () => available > 0, { timeoutMs: 1000 });
    assert.ok(queue.size > 0, "the claim to resolve counts as one waiting");

    assert.equal(await queue.claim(), id, "adopted");
    assert.ok(queue.held.has(id), "held here: renewed, and run by the runner");
    assert.equal(deployments.get(id)!.status, "running");
    assert.equal(deployments.get(id)!.instance, "a");
    assert.equal(queue.size, 0);
    assert.equal(await queue.claim(), undefined, "resolved once");
  },
});

Deno.test({
  name: "claimed.lua gives up a claim's token: the claim, if Redis runs it later, takes nothing",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using a = await instance(server);
    const scripts = await loadRunScripts();
    const { commands } = a.connection;
    const { id } = await a.cluster.deployments.create(null);
    assert.equal(await scripts.claimed.run(commands, ["shiplog:claimed:t1"], ["shiplog", "60000"]), null);
    const now = new Date();
    const claim = (token: string) =>
      scripts.claim.run(commands, ["shiplog:queue", "shiplog:running", `shiplog:claimed:${token}`], [
        "shiplog",
        "b",
        "b lease",
        "10000",
        now.toISOString(),
        String(now.getTime()),
        JSON.stringify({ default: null }),
        "60000",
        "default",
      ]);
    assert.equal(await claim("t1"), null, "the token given up takes nothing");
    assert.equal(await server.cli("LRANGE", "shiplog:queue", "0", "-1"), id, "still queued");
    assert.equal(JSON.parse(await claim("t2") as string).id, id);
    const [found, json] = await scripts.claimed.run(commands, ["shiplog:claimed:t2"], [
      "shiplog",
      "60000",
    ]) as [
      string,
      string,
    ];
    assert.deepEqual([found, JSON.parse(json).instance], [id, "b"]);
  },
});

Deno.test({
  name: "the run scripts leave a record that is not JSON alone, and lose no queued id for it",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using a = await instance(server);
    const scripts = await loadRunScripts();
    const { commands } = a.connection;
    await server.cli("SET", "shiplog:deployment:bad", "{not json");
    await server.cli("RPUSH", "shiplog:queue", "bad");
    const { id } = await a.cluster.deployments.create(null);

    await t("claim: parks it in P:unreadable and takes the next", async () => {
      assert.equal(await a.cluster.queue.claim(), id);
      assert.equal(await server.cli("SISMEMBER", "shiplog:unreadable", "bad"), "1");
      assert.equal(await server.cli("LLEN", "shiplog:queue"), "0");
    });
    await t("cancel: not cancellable", async () => {
      assert.equal(await a.cluster.queue.cancel("bad"), false);
    });
    await t("renew: missing, for its owner to write again", async () => {
      const reply = await scripts.renew.run(commands, ["shiplog:running"], [
        "shiplog",
        "a",
        "a lease",
        "10000",
        String(Date.now()),
        "bad",
      ]);
      assert.deepEqual(reply, ["bad", "missing", ""]);
    });
    await t("reap: only taken off the running ones", async () => {
      await server.cli("ZADD", "shiplog:running", "1", "bad");
      const reply = await scripts.reap.run(commands, ["shiplog:running"], [
        "shiplog",
        "bad",
        new Date().toISOString(),
      ]);
      assert.deepEqual(reply, []);
      assert.equal(await server.cli("ZSCORE", "shiplog:running", "bad"), "");
      assert.equal(await server.cli("GET", "shiplog:deployment:bad"), "{not json");
    });
  },
});

Deno.test({
  name:
    "RedisRunQueue renews and lets go of leases, cancels and reaps while Redis is out of memory (noeviction)",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    // Three targets: both claimed run at once.
    await using a = await instance(server, "a", { commands: { one: null, two: null, three: null } });
    const { queue, deployments } = a.cluster;
    const [renewed, reaped, cancelled] = [
      await deployments.create(null, { target: "one" }),
      await deployments.create(null, { target: "two" }),
      await deployments.create(null, { target: "three" }),
    ];
    assert.equal(await queue.claim(), renewed.id);
    assert.equal(await queue.claim(), reaped.id);
    await server.cli("PEXPIRE", `shiplog:lease:${renewed.id}`, "2000");
    // Its instance stopped answering (this queue renews it: the reap comes before the renewal).
    await server.cli("DEL", `shiplog:lease:${reaped.id}`);
    await server.cli("CONFIG", "SET", "maxmemory", "1");
    try {
      assert.match(await server.cli("SET", "filler", "x"), /OOM/, "Redis is full");
      await t("reap", async () => {
        const scripts = await loadRunScripts();
        await scripts.reap.run(a.connection.commands, ["shiplog:running"], [
          "shiplog",
          reaped.id,
          new Date().toISOString(),
        ]);
        const record = JSON.parse(await server.cli("GET", `shiplog:deployment:${reaped.id}`));
        assert.equal(record.status, "interrupted");
        assert.match(
          await server.cli("XRANGE", `shiplog:log:${reaped.id}`, "-", "+"),
          /shiplog: interrupted: /,
        );
      });
      await t("renew", async () => {
        await queue.renew();
        const ttl = Number(await server.cli("PTTL", `shiplog:lease:${renewed.id}`));
        assert.ok(ttl > 5000, `the lease renewed: PTTL ${ttl}`);
      });
      await t("cancel", async () => {
        assert.equal(await queue.cancel(cancelled.id, { by: "alice" }), true);
        const record = JSON.parse(await server.cli("GET", `shiplog:deployment:${cancelled.id}`));
        assert.deepEqual([record.status, record.cancelledBy], ["cancelled", "alice"]);
        assert.match(
          await server.cli("XRANGE", `shiplog:log:${cancelled.id}`, "-", "+"),
          /shiplog: cancelled by alice/,
        );
      });
      await t("release", async () => {
        queue.finished(renewed.id);
        await waitFor("the lease to be let go", async () => {
          return await server.cli("EXISTS", `shiplog:lease:${renewed.id}`) === "0";
        }, { timeoutMs: 2000, intervalMs: 20 });
        assert.equal(await server.cli("ZSCORE", "shiplog:running", renewed.id), "");
      });
    } finally {
      await server.cli("CONFIG", "SET", "maxmemory", "0");
    }
  },
});

/** A named phase of a test (its failure names it). */
async function t(phase: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    throw new Error(`${phase}: ${(error as Error).message}`, { cause: error });
  }
}

Deno.test({
  name:
    "parameters keep their order through the scripts that rewrite a record (claim, cancel): the first is the version",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    const connection = await RedisConnection.connect(server.url);
    const store = await RedisStore.open(connection);
    const cluster = await RunCluster.join(connection, store, {
      instance: "i0",
      commands: { staging: "true" },
    });
    try {
      // Names Lua's tables would give back in another order, and values of every kind of key.
      const params = { version: "v1.4.2", region: "eu", dry_run: "no", a: "1", zz: "2", constructor: "x" };
      const order = Object.keys(params);
      const { deployments, queue } = cluster;
      const claimedOne = await deployments.create(null, { target: "staging", params });
      const cancelledOne = await deployments.create(null, { target: "staging", params });
      assert.equal(await queue.claim(), claimedOne.id);
      await queue.cancel(cancelledOne.id, { by: "bob" });
      // As this instance has them, and as any instance reads them from Redis.
      const listed = new Map((await store.list()).map((record) => [record.id, record]));
      for (const record of [deployments.get(claimedOne.id)!, deployments.get(cancelledOne.id)!]) {
        assert.deepEqual(Object.keys(record.params), order, record.status);
        assert.deepEqual(Object.keys(listed.get(record.id)!.params), order, `${record.status}, listed`);
      }
      assert.deepEqual(
        [...listed.values()].map(({ status }) => status).sort(),
        ["cancelled", "running"],
        "both scripts did rewrite them",
      );
    } finally {
      await cluster.close();
      await store.close();
      await connection.close();
    }
  },
});
