/**
 * The press-once guard of a cluster, with a real `redis-server`: two guards on two connections are two
 * instances; the deployments they make are counted in one place, as the cluster's records would be.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Deployment } from "../logs/deployment.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "../testing/redis_server.ts";
import { delay, deploymentRecord, waitFor } from "../testing/test_helpers.ts";
import { HttpError } from "./http_error.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { RunCluster } from "../runs/run_cluster.ts";
import { RedisStartGuard, type RedisStartGuardOptions } from "./redis_start_guard.ts";

/** Two instances' guards on `redis`; their connections close when the returned disposable is. */
async function twoGuards(
  redis: RedisServer,
  options: RedisStartGuardOptions = {},
): Promise<{ guards: RedisStartGuard[]; connections: RedisConnection[] } & AsyncDisposable> {
  const connections: RedisConnection[] = [];
  const guards: RedisStartGuard[] = [];
  for (let i = 0; i < 2; i++) {
    const connection = await RedisConnection.connect(redis.url, {
      commandTimeoutMs: 500,
      connectTimeoutMs: 200,
    });
    connections.push(connection);
    guards.push(await RedisStartGuard.create(connection, options));
  }
  return {
    guards,
    connections,
    [Symbol.asyncDispose]: () => Promise.resolve(connections.forEach((connection) => connection.close())),
  };
}

/** Makes deployments, each after `ms`, and counts them. */
function maker(ms = 0) {
  const made: Deployment[] = [];
  const create = async () => {
    await delay(ms);
    const deployment = deploymentRecord();
    made.push(deployment);
    return deployment;
  };
  return { create, made };
}

const entry = (key: string) => `shiplog:idempotency:${createHash("sha256").update(key).digest("hex")}`;

Deno.test({
  name: "RedisStartGuard: the same key pressed on two instances at once starts one deployment, named by both",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using cluster = await twoGuards(redis);
    const [a, b] = cluster.guards;
    const { create, made } = maker(200);
    const [first, second] = await Promise.all([
      a.start("key-aaaaaaaa", create),
      b.start('"key-aaaaaaaa"', create),
    ]);
    const [one, two] = await Promise.all([first.deployment, second.deployment]);
    assert.equal(made.length, 1);
    assert.equal(one.id, made[0].id);
    assert.equal(two.id, made[0].id);
    assert.deepEqual([first.repeated, second.repeated], [false, true]);
    // Pressed again later, on either: the same one.
    const third = await a.start("key-aaaaaaaa", create);
    assert.deepEqual([third.repeated, (await third.deployment).id], [true, made[0].id]);
    // The entry is the record, kept for the window.
    assert.equal(JSON.parse(await redis.cli("GET", entry("key-aaaaaaaa"))).id, made[0].id);
    const ttl = Number(await redis.cli("PTTL", entry("key-aaaaaaaa")));
    assert.ok(ttl > 8000 && ttl <= 10_000, `PTTL ${ttl}`);
    // Other keys, or none, start their own.
    await (await b.start("key-bbbbbbbb", create)).deployment;
    await (await a.start(null, create)).deployment;
    await (await b.start(undefined, create)).deployment;
    assert.equal(made.length, 4);
  },
});

Deno.test({
  name:
    "RedisStartGuard: a failed start frees its key for every instance, and a key is new again after its window",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using cluster = await twoGuards(redis, { windowMs: 300 });
    const [a, b] = cluster.guards;
    const failed = await a.start("key-cccccccc", () => Promise.reject(new Error("disk full")));
    await assert.rejects(failed.deployment, /disk full/);
    assert.equal(await redis.cli("EXISTS", entry("key-cccccccc")), "0");
    const { create, made } = maker();
    const retried = await b.start("key-cccccccc", create);
    assert.equal(retried.repeated, false);
    await retried.deployment;
    await waitFor(
      "the key's window to pass",
      async () => await redis.cli("EXISTS", entry("key-cccccccc")) === "0",
      {
        timeoutMs: 5000,
        intervalMs: 20,
      },
    );
    const later = await a.start("key-cccccccc", create);
    assert.equal(later.repeated, false);
    await later.deployment;
    assert.equal(made.length, 2);
  },
});

Deno.test({
  name:
    "RedisStartGuard: a repeat waits for the first at most waitMs (then 409), and gets its record once made",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using cluster = await twoGuards(redis, { waitMs: 200 });
    const [a, b] = cluster.guards;
    const slow = Promise.withResolvers<Deployment>();
    const first = await a.start("key-dddddddd", () => slow.promise);
    const started = performance.now();
    await assert.rejects(
      b.start("key-dddddddd", () => Promise.reject(new Error("must not be called"))),
      (error) => error instanceof HttpError && error.status === 409,
    );
    const waited = performance.now() - started;
    assert.ok(waited >= 200 && waited < 2000, `waited ${waited} ms`);
    const record = deploymentRecord();
    slow.resolve(record);
    assert.equal((await first.deployment).id, record.id);
    const repeat = await b.start("key-dddddddd", () => Promise.reject(new Error("must not be called")));
    assert.deepEqual([repeat.repeated, (await repeat.deployment).id], [true, record.id]);
  },
});

Deno.test({
  name: "RedisStartGuard: 400 for a malformed key, 503 while Redis is away",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using cluster = await twoGuards(redis);
    const [a] = cluster.guards;
    const { create, made } = maker();
    await assert.rejects(
      a.start("has space", create),
      (error) => error instanceof HttpError && error.status === 400,
    );
    await redis.stop();
    await waitFor("Redis gone", () => cluster.connections[0].problem !== undefined, { timeoutMs: 5000 });
    await assert.rejects(
      a.start("key-eeeeeeee", create),
      (error) =>
        error instanceof HttpError && error.status === 503 && /store cannot be reached/.test(error.message) &&
        new Headers(error.headers).get("retry-after") === "5",
    );
    assert.equal(made.length, 0);
    // Closed while Redis is away, a connection would leave node-redis's reconnection timer behind.
    await redis.start();
    await waitFor("Redis back", () => cluster.connections[0].problem === undefined, { timeoutMs: 5000 });
  },
});

/** A guard beside one instance's records (commands time out after 300 ms): starts make real deployments. */
async function guardedCluster(redis: RedisServer) {
  const connection = await RedisConnection.connect(redis.url, { commandTimeoutMs: 300 });
  const store = await RedisStore.open(connection);
  const cluster = await RunCluster.join(connection, store, {
    instance: "a",
    renewMs: 60_000,
    pollMs: 60_000,
    reapMs: 60_000,
  });
  const guard = await RedisStartGuard.create(connection, { waitMs: 200 });
  // Redis knows the creation script (EVALSHA): one it has never seen would fail NOSCRIPT, after a pause.
  await cluster.deployments.create(null);
  return {
    guard,
    create: (id: string) => cluster.deployments.create(null, { id }),
    count: async () => Number(await redis.cli("ZCARD", "shiplog:deployments")) - 1,
    [Symbol.asyncDispose]: async () => {
      await cluster.close();
      await store.close();
      await connection.close();
    },
  };
}

const mustNotCreate = () => Promise.reject(new Error("must not be called"));

Deno.test({
  name: "RedisStartGuard: a creation that timed out but that Redis ran: the retry gets it, not a second one",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using a = await guardedCluster(redis);
    const first = await a.guard.start("key-ffffffff", async (id) => {
      // Long enough for the creation and the guard's question after it to time out.
      await redis.cli("CLIENT", "PAUSE", "1000", "WRITE");
      return await a.create(id);
    });
    await assert.rejects(first.deployment, /timed out/);
    await waitFor("Redis to run the creation", async () => await a.count() === 1, {
      timeoutMs: 3000,
      intervalMs: 50,
    });
    // The guard's own question after the timeout went unanswered too (its script, new to this Redis, failed
    // NOSCRIPT after the pause): the key is left pending with the id.
    const [id] = (await redis.cli("GET", entry("key-ffffffff"))).split(" ").slice(1);
    const retry = await a.guard.start("key-ffffffff", mustNotCreate);
    assert.equal(retry.repeated, true);
    assert.equal((await retry.deployment).id, id);
    assert.equal(JSON.parse(await redis.cli("GET", entry("key-ffffffff"))).id, id, "settled");
    assert.equal(await a.count(), 1, "one deployment");
  },
});

Deno.test({
  name:
    "RedisStartGuard: a creation that timed out, made by the time the guard asks: the start answers with it",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using a = await guardedCluster(redis);
    let made = "";
    const first = await a.guard.start("key-gggggggg", async (id) => {
      made = id;
      await redis.cli("CLIENT", "PAUSE", "450", "WRITE");
      return await a.create(id);
    });
    assert.equal((await first.deployment).id, made);
    assert.equal(JSON.parse(await redis.cli("GET", entry("key-gggggggg"))).id, made);
    const retry = await a.guard.start("key-gggggggg", mustNotCreate);
    assert.deepEqual([retry.repeated, (await retry.deployment).id], [true, made]);
    assert.equal(await a.count(), 1);
  },
});

Deno.test({
  name:
    "RedisStartGuard: a creation refused frees the key, and its id is refused for good (a late creation too)",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using a = await guardedCluster(redis);
    let refused = "";
    const first = await a.guard.start("key-hhhhhhhh", (id) => {
      refused = id;
      return Promise.reject(new RangeError("1 deployments are queued in the cluster already"));
    });
    await assert.rejects(first.deployment, RangeError);
    assert.equal(await redis.cli("EXISTS", entry("key-hhhhhhhh")), "0", "freed");
    assert.equal(await redis.cli("EXISTS", `shiplog:refused:${refused}`), "1");
    // A creation of that id that Redis had yet to run (its answer lost) makes nothing.
    await assert.rejects(a.create(refused), RangeError);
    assert.equal(await a.count(), 0);
    const retry = await a.guard.start("key-hhhhhhhh", a.create);
    assert.equal(retry.repeated, false);
    await retry.deployment;
    assert.equal(await a.count(), 1);
  },
});

Deno.test({
  name: "RedisStartGuard: a repeat while the first start is still on its way back gets the record it made",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using a = await guardedCluster(redis);
    const answered = Promise.withResolvers<void>();
    const first = await a.guard.start("key-iiiiiiii", async (id) => {
      const deployment = await a.create(id);
      await answered.promise;
      return deployment;
    });
    // Within waitMs (200): no 409.
    const repeat = await a.guard.start("key-iiiiiiii", mustNotCreate);
    answered.resolve();
    assert.equal(repeat.repeated, true);
    assert.equal((await repeat.deployment).id, (await first.deployment).id);
    assert.equal(await a.count(), 1);
  },
});
