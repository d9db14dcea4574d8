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
