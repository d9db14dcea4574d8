import assert from "node:assert/strict";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { waitFor } from "../testing/test_helpers.ts";
import { RedisConnection } from "./redis_connection.ts";

Deno.test({
  name: "RedisConnection: while Redis is away a command fails at once, problem says why, and up/down tell",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(`redis://:hunter22@127.0.0.1:${redis.port}`);
    try {
      const events: string[] = [];
      for (const type of ["up", "down"]) connection.addEventListener(type, () => events.push(type));
      assert.equal(await connection.commands.sendCommand(["PING"]), "PONG");
      assert.equal(connection.problem, undefined);
      assert.equal(connection.key("log", "x"), "shiplog:log:x");
      await redis.stop();
      await waitFor("the connection to notice", () => connection.problem !== undefined);
      assert.match(connection.problem!, /^cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
      assert.doesNotMatch(connection.problem!, /hunter22/);
      const started = performance.now();
      await assert.rejects(connection.commands.sendCommand(["PING"]));
      assert.ok(performance.now() - started < 100, "a command while away waits for nothing");
      await redis.start();
      await waitFor("the connection to come back", () => connection.problem === undefined, {
        timeoutMs: 5000,
      });
      assert.equal(await connection.commands.sendCommand(["PING"]), "PONG");
      assert.deepEqual(events, ["down", "up"]);
    } finally {
      await connection.close();
    }
  },
});

Deno.test({
  name: "RedisConnection.close() while Redis is away leaves no reconnect timer behind",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    for (const awayMs of [30, 400]) {
      await redis.start();
      const connection = await RedisConnection.connect(redis.url);
      await connection.subscribe("channel", () => {});
      await connection.blocking();
      await redis.stop();
      await new Promise((resolve) => setTimeout(resolve, awayMs));
      // The sanitizer fails this test if a client's wait to reconnect outlives close().
      await connection.close();
    }
  },
});

Deno.test({
  name: "RedisConnection.connect() gives up on an unreachable Redis, naming it without its password",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    await redis.stop();
    await assert.rejects(
      RedisConnection.connect(`redis://:hunter22@127.0.0.1:${redis.port}`, { startTimeoutMs: 300 }),
      (error: Error) => {
        assert.match(
          error.message,
          /^Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ within 300 ms: .*ECONNREFUSED/,
        );
        return true;
      },
    );
  },
});

Deno.test({
  name:
    "RedisConnection.connect() that Redis refuses says why: a wrong password, a database it does not have",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    for (
      const [url, reason] of [
        [`redis://127.0.0.1:${redis.port}/99`, /DB index is out of range/],
        [`redis://:wrong-one@127.0.0.1:${redis.port}`, /WRONGPASS|invalid password|AUTH/],
      ] as const
    ) {
      if (url.includes("wrong-one")) await redis.cli("CONFIG", "SET", "requirepass", "the-right-one");
      await assert.rejects(RedisConnection.connect(url, { startTimeoutMs: 500 }), (error: Error) => {
        assert.match(error.message, /^Cannot reach Redis at redis:\/\/.* within 500 ms: /);
        assert.match(error.message, reason);
        assert.doesNotMatch(error.message, /wrong-one/);
        return true;
      });
    }
  },
});

/** The watchdog of the tests below: a look every 100 ms, down after two PINGs without an answer in 100 ms. */
const QUICK_WATCHDOG = { pingIntervalMs: 100, pingTimeoutMs: 100, missedPings: 2 };

Deno.test({
  name:
    "RedisConnection: a Redis that hangs (SIGSTOP) is down within the watchdog's misses, commands fail at once, and up once it answers",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(redis.url, QUICK_WATCHDOG);
    try {
      const events: string[] = [];
      for (const type of ["up", "down", "resubscribed"]) {
        connection.addEventListener(type, () => events.push(type));
      }
      const heard: string[] = [];
      await connection.subscribe("channel", (message) => heard.push(message));
      redis.pause();
      const paused = performance.now();
      await waitFor("the watchdog to notice", () => connection.problem !== undefined, { timeoutMs: 3000 });
      assert.ok(
        performance.now() - paused < 1500,
        "noticed within two looks and their timeouts, and a margin",
      );
      assert.equal(connection.problem, `Redis at ${redis.url} does not answer`);
      assert.deepEqual(events, ["down"]);
      // Its connections were made again: no command waits for the hung one's timeout (5 s).
      const started = performance.now();
      await assert.rejects(connection.commands.sendCommand(["GET", "x"]));
      assert.ok(performance.now() - started < 200, "a command while it hangs waits for nothing");
      // Some looks more: it stays down, without flapping.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.deepEqual(events, ["down"]);
      redis.resume();
      await waitFor("the connection to come back", () => connection.problem === undefined, {
        timeoutMs: 5000,
      });
      assert.equal(await connection.commands.sendCommand(["PING"]), "PONG");
      await waitFor("the pub/sub connection to come back", () => events.includes("resubscribed"));
      assert.deepEqual(events.filter((event) => event !== "resubscribed"), ["down", "up"]);
      await connection.commands.sendCommand(["PUBLISH", "channel", "after"]);
      await waitFor("a message after the hang", () => heard.includes("after"));
    } finally {
      redis.resume();
      await connection.close();
    }
  },
});

Deno.test({
  name: "RedisConnection: CLIENT PAUSE ALL is down while it lasts and up after, once each",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(redis.url, QUICK_WATCHDOG);
    try {
      const events: string[] = [];
      for (const type of ["up", "down"]) connection.addEventListener(type, () => events.push(type));
      await redis.cli("CLIENT", "PAUSE", "1500", "ALL");
      await waitFor("the watchdog to notice", () => connection.problem !== undefined, { timeoutMs: 1400 });
      assert.equal(connection.problem, `Redis at ${redis.url} does not answer`);
      await waitFor("the connection to come back", () => connection.problem === undefined, {
        timeoutMs: 4000,
      });
      assert.deepEqual(events, ["down", "up"]);
      assert.equal(await connection.commands.sendCommand(["PING"]), "PONG");
    } finally {
      await connection.close();
    }
  },
});

Deno.test({
  name:
    "RedisConnection: a pub/sub connection killed alone comes back with its subscriptions and says resubscribed; Redis stays up",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(redis.url, QUICK_WATCHDOG);
    try {
      const events: string[] = [];
      for (const type of ["up", "down", "resubscribed"]) {
        connection.addEventListener(type, () => events.push(type));
      }
      const heard: string[] = [];
      await connection.subscribe("channel", (message) => heard.push(message));
      assert.equal(events.length, 0, "the first subscription is no resubscription");
      assert.equal(await redis.cli("CLIENT", "KILL", "TYPE", "pubsub"), "1");
      await waitFor("the pub/sub connection to come back", () => events.includes("resubscribed"));
      assert.deepEqual(events, ["resubscribed"]);
      await connection.commands.sendCommand(["PUBLISH", "channel", "after"]);
      await waitFor("a message after the kill", () => heard.includes("after"));
    } finally {
      await connection.close();
    }
  },
});
