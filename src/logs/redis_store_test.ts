/**
 * Tests of what only the Redis store has, on a real `redis-server` per test: several instances on one Redis,
 * Redis restarted (with its append-only file, or without its data), Redis down while a deployment writes, the
 * connections it takes, and its scripts. What every store must do is in `log_store_contract_test.ts`.
 */

import assert from "node:assert/strict";
import { asDeployment, type Deployment, stringifyDeployment } from "./deployment.ts";
import { type LogFollowHandlers, RecordEndedError, StoreUnavailableError } from "./log_store.ts";
import type { RedisAppender } from "./redis_appender.ts";
import { LOG_LINES_SCRIPT, RedisStore, type RedisStoreOptions } from "./redis_store.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { RedisScript } from "../redis/redis_script.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "../testing/redis_server.ts";
import { startTcpProxy, type TcpProxy } from "../testing/tcp_proxy.ts";
import { delay, deploymentRecord, waitFor, waitForValue, withDeadline } from "../testing/test_helpers.ts";

const PREFIX = "t";

/** One shiplog instance's store on `server` (or a relay to it): its own connection; both closed when disposed. */
async function openInstance(server: { url: string }, options: RedisStoreOptions = {}) {
  const connection = await RedisConnection.connect(server.url, { prefix: PREFIX, commandTimeoutMs: 2000 });
  const store = await RedisStore.open(connection, options);
  return {
    store,
    connection,
    async [Symbol.asyncDispose]() {
      await store.close();
      connection.close();
    },
  };
}

/**
 * A TCP relay to `server` that can be cut and put back: one instance cut off from Redis while the others still
 * reach it. Cut, it closes the connections it relays and closes those that come in.
 */
function openRelay(server: RedisServer) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const copies = new Set<Promise<void>>();
  let cut = false;
  const close = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch {
      // closed already
    }
  };
  const copy = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        for (let offset = 0; offset < n;) offset += await to.write(buffer.subarray(offset, n));
      }
    } catch {
      // cut
    }
    close(from);
    close(to);
  };
  const relay = async (client: Deno.Conn) => {
    if (cut) return close(client);
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    } catch {
      return close(client);
    }
    open.add(client).add(upstream);
    await Promise.all([copy(client, upstream), copy(upstream, client)]);
  };
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const copied = relay(client);
        copies.add(copied);
        copied.finally(() => copies.delete(copied));
      }
    } catch {
      // the listener was closed
    }
  })();
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    cut() {
      cut = true;
      for (const conn of [...open]) close(conn);
    },
    restore() {
      cut = false;
    },
    async [Symbol.asyncDispose]() {
      this.cut();
      listener.close();
      await accepting;
      await Promise.all(copies);
    },
  };
}

/** Follows a log and records what it is told as `"<number>:<text>"` and `"reset"`. */
async function follow(store: RedisStore, id: string, extra: Partial<LogFollowHandlers> = {}) {
  const events: string[] = [];
  const follower = await store.follow(id, {
    onLines: (batch) => batch.lines.forEach((line, i) => events.push(`${batch.firstLine + i}:${line}`)),
    onReset: () => events.push("reset"),
    ...extra,
  });
  return { follower, events, [Symbol.dispose]: () => follower.close() };
}

async function readAll(store: RedisStore, id: string): Promise<string[]> {
  const all: string[] = [];
  for await (const batch of store.readLines(id, 0)) {
    batch.lines.forEach((line, i) => all.push(`${batch.firstLine + i}:${line}`));
  }
  return all;
}

function numbered(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:${prefix}${from + i}`);
}

/** How many times Redis ran a command since it started (`INFO commandstats`). */
async function callsOf(server: RedisServer, command: string): Promise<number> {
  const stats = await server.cli("INFO", "commandstats");
  return Number(stats.match(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m"))?.[1] ?? 0);
}

/** The clients connected to Redis, without the `redis-cli` that asks. */
async function clientCount(server: RedisServer): Promise<number> {
  const clients = (await server.cli("CLIENT", "LIST")).split("\n").filter((line) => line.startsWith("id="));
  return clients.filter((line) => !line.includes("cmd=client|list")).length;
}

Deno.test({
  name: "RedisStore.save() refuses to change an ended record, from any instance, and takes the same again",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using one = await openInstance(server);
    await using two = await openInstance(server);
    const queued = deploymentRecord();
    await one.store.save(queued);
    const running: Deployment = { ...queued, status: "running", startedAt: "2026-11-24T08:00:01.000Z" };
    await two.store.save(running);
    const interrupted: Deployment = {
      ...running,
      status: "interrupted",
      finishedAt: "2026-11-24T08:00:30.000Z",
      reason: "instance a was lost",
    };
    await two.store.save(interrupted);
    // The instance that ran it did not hear in time, and says it succeeded.
    const succeeded: Deployment = { ...running, status: "succeeded", finishedAt: "2026-11-24T08:00:31.000Z" };
    await assert.rejects(one.store.save(succeeded), (error) => {
      assert.ok(error instanceof RecordEndedError);
      assert.deepEqual(error.stored, interrupted);
      return true;
    });
    await assert.rejects(one.store.save(running), RecordEndedError);
    // The same record again, in another order of fields, is no change: taken.
    const { reason, id, ...rest } = interrupted;
    await one.store.save({ reason, ...rest, id });
    await one.store.save(interrupted);
    assert.deepEqual(await one.store.list(), [interrupted]);
  },
});

Deno.test({
  name:
    "RedisStore.save() and remove() announce each change on P:changes; a removed deployment leaves no key",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    const messages: unknown[] = [];
    await instance.connection.subscribe(`${PREFIX}:changes`, (message) => messages.push(JSON.parse(message)));
    const record = deploymentRecord();
    await instance.store.save(record);
    const appender = await instance.store.openAppender(record.id);
    await appender.write(["a line"]);
    appender.close();
    await waitFor("the change", () => messages.length === 1);
    // As Redis holds it: the parameters as pairs, which any instance reads back as the record.
    assert.deepEqual(messages[0], { change: JSON.parse(stringifyDeployment(record)) });
    assert.deepEqual(asDeployment((messages[0] as { change: unknown }).change), record);
    const keysOf = async () => (await server.cli("--scan", "--pattern", `${PREFIX}:*`)).split("\n").sort();
    assert.deepEqual(await keysOf(), [
      `${PREFIX}:deployment:${record.id}`,
      `${PREFIX}:deployments`,
      `${PREFIX}:epoch`,
      `${PREFIX}:log:${record.id}`,
      `${PREFIX}:log:${record.id}:info`,
    ]);
    await instance.store.remove(record.id);
    await waitFor("the removal", () => messages.length === 2);
    assert.deepEqual(messages[1], { remove: record.id });
    assert.deepEqual(await keysOf(), [`${PREFIX}:epoch`]);
  },
});

Deno.test({
  name: "RedisStore: a line written through one instance reaches a follower on another",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using writer = await openInstance(server);
    await using viewer = await openInstance(server);
    const id = crypto.randomUUID();
    using followed = await follow(viewer.store, id);
    const appender = await writer.store.openAppender(id);
    const started = performance.now();
    await appender.write(["across instances"]);
    await waitFor("the line on the other instance", () => followed.events.length === 1);
    assert.deepEqual(followed.events, ["1:across instances"]);
    assert.ok(performance.now() - started < 500, "within a fraction of the block timeout");
    appender.close();
  },
});

Deno.test({
  name:
    "RedisStore: a log followed while the read blocks is read at once (CLIENT UNBLOCK), not at the timeout",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server, { blockMs: 20_000 });
    using first = await follow(instance.store, crypto.randomUUID());
    // The read of the first log is blocked in Redis by now.
    await waitFor("the blocked read", async () => (await server.cli("CLIENT", "LIST")).includes("cmd=xread"));
    const id = crypto.randomUUID();
    using second = await follow(instance.store, id);
    const appender = await instance.store.openAppender(id);
    const started = performance.now();
    await appender.write(["to the second"]);
    await waitFor("the second log's line", () => second.events.length === 1, { timeoutMs: 2000 });
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(first.events, []);
    appender.close();
  },
});

Deno.test({
  name: "RedisStore: 50 followed logs take no more connections than one (commands, one blocking, pub/sub)",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    await instance.connection.subscribe(`${PREFIX}:changes`, () => {});
    const before = await clientCount(server);
    assert.equal(before, 3, "commands, the blocking reader, pub/sub");
    const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
    const followed = await Promise.all(ids.map((id) => follow(instance.store, id)));
    const appender = await instance.store.openAppender(ids[0]);
    for (const [i, id] of ids.entries()) {
      const log = await instance.store.openAppender(id);
      await log.write([`line of log ${i}`]);
      log.close();
    }
    await waitFor("a line in every log", () => followed.every((log) => log.events.length === 1));
    followed.forEach((log, i) => assert.deepEqual(log.events, [`1:line of log ${i}`]));
    assert.equal(await clientCount(server), before);
    appender.close();
    for (const log of followed) log.follower.close();
  },
});

Deno.test({
  name:
    "RedisStore: a batch goes in one script call per 1000 lines, and a follower gets a burst in few reads",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    const id = crypto.randomUUID();
    using followed = await follow(instance.store, id);
    const appender = await instance.store.openAppender(id);
    // The first call loads the script into Redis (EVALSHA, then EVAL): counted from the next one.
    assert.equal(await appender.write([]), 1);
    const calls = await callsOf(server, "evalsha") + await callsOf(server, "eval");
    assert.equal(await appender.write(Array.from({ length: 100 }, (_, i) => `line ${i + 1}`)), 1);
    assert.equal(await callsOf(server, "evalsha") + await callsOf(server, "eval") - calls, 1);
    assert.equal(await appender.write(Array.from({ length: 2500 }, (_, i) => `line ${i + 101}`)), 101);
    assert.equal(await callsOf(server, "evalsha") + await callsOf(server, "eval") - calls, 4);
    await waitFor("the burst", () => followed.events.length === 2600);
    assert.deepEqual(followed.events, numbered("line ", 1, 2600));
    // Read by the reader, a page of up to 1000 lines at a time: not a range per line.
    assert.ok(await callsOf(server, "xread") < 20, `${await callsOf(server, "xread")} reads`);
    assert.equal(await callsOf(server, "xrange"), 0);
    appender.close();
  },
});

Deno.test({
  name: "append.lua: the same call again (a retry after a lost answer) writes nothing and answers the same",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    const connection = await RedisConnection.connect(server.url);
    try {
      const script = await RedisScript.load(new URL("./redis_scripts/append.lua", import.meta.url), {
        include: [LOG_LINES_SCRIPT],
      });
      const keys = ["s", "s:info", "d"];
      // ARGV: token, sequence, each line's time, each line's stderr mark, the lines.
      assert.equal(await script.run(connection.commands, keys, ["token", "1", "5,5", "00", "a", "b"]), 1);
      assert.equal(await script.run(connection.commands, keys, ["token", "1", "5,5", "00", "a", "b"]), 1);
      assert.equal(await script.run(connection.commands, keys, ["other", "1", "6", "1", "c"]), 3);
      assert.equal(await script.run(connection.commands, keys, ["token", "2", "7", "0", "d"]), 4);
      assert.equal(await server.cli("XLEN", "s"), "4");
      assert.equal(await server.cli("HGET", "s:info", "lines"), "4");
      assert.equal(await server.cli("HGET", "s:info", "bytes"), "8");
    } finally {
      connection.close();
    }
  },
});

Deno.test({
  name:
    "append.lua refuses the log of an ended record, JSON.stringify's or cjson's, and takes a missing or live one",
  ...REDIS_TEST,
  async fn(t) {
    await using server = await startRedisServer();
    const connection = await RedisConnection.connect(server.url);
    try {
      const script = await RedisScript.load(new URL("./redis_scripts/append.lua", import.meta.url), {
        include: [LOG_LINES_SCRIPT],
      });
      const keys = ["s", "s:info", "d"];
      let sequence = 0;
      let lastWritten = 0;
      const append = (line: string) =>
        script.run(connection.commands, keys, ["token", String(++sequence), "1", "0", line]);
      /** The record as cjson writes it (another order of fields, no null ones), as the cluster's scripts do. */
      const saveWithCjson = async (record: Deployment) => {
        const lua = "redis.call('SET', KEYS[1], cjson.encode(cjson.decode(ARGV[1])))";
        await connection.commands.sendCommand(["EVAL", lua, "1", "d", JSON.stringify(record)]);
        return String(await connection.commands.sendCommand(["GET", "d"]));
      };
      // A status's name in a string field is not its status: a quote inside a string is escaped.
      const running = deploymentRecord({
        status: "running",
        command: `echo '"status":"failed"'`,
        reason: `"status":"succeeded"`,
      });

      await t.step("no record (Redis lost its data) and a live one take lines", async () => {
        assert.equal(await append("no record"), 1);
        await connection.commands.sendCommand(["SET", "d", JSON.stringify(running)]);
        assert.equal(await append("running"), 2);
        assert.match(await saveWithCjson(running), /"status":"running"/);
        assert.equal(await append("running, cjson"), 3);
        lastWritten = sequence;
      });
      for (const status of ["succeeded", "failed", "cancelled", "interrupted"] as const) {
        await t.step(`${status}: refused with the record, nothing written`, async () => {
          const ended: Deployment = { ...running, status, finishedAt: "2026-11-24T08:01:00.000Z" };
          const json = JSON.stringify(ended);
          await connection.commands.sendCommand(["SET", "d", json]);
          assert.equal(await append("too late"), json);
          const cjsonJson = await saveWithCjson(ended);
          assert.notEqual(cjsonJson, json);
          assert.equal(await append("too late, cjson"), cjsonJson);
          assert.equal(await server.cli("XLEN", "s"), "3");
          assert.equal(await server.cli("HGET", "s:info", "lines"), "3");
        });
      }
      await t.step("a retry of a call that got through before the end answers as it did", async () => {
        assert.equal(
          await script.run(connection.commands, keys, [
            "token",
            String(lastWritten),
            "1",
            "0",
            "running, cjson",
          ]),
          3,
        );
        assert.equal(await server.cli("XLEN", "s"), "3");
      });
    } finally {
      connection.close();
    }
  },
});

Deno.test({
  name:
    "RedisStore: an instance cut off while another records its deployment interrupted writes none of what it kept",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using relay = openRelay(server);
    await using cutOff = await openInstance(relay, { retryMs: 200 });
    await using survivor = await openInstance(server);
    const record = deploymentRecord({
      status: "running",
      startedAt: "2026-11-24T08:00:01.000Z",
      instance: "a",
    });
    await cutOff.store.save(record);
    const appender = await cutOff.store.openAppender(record.id);
    assert.equal(await appender.write(["before"]), 1);
    relay.cut();
    await waitFor("Redis seen down", () => cutOff.connection.problem !== undefined);
    for (let i = 1; i <= 49; i++) {
      assert.equal(await withDeadline("a write while cut off", appender.write([`kept ${i}`]), 500), 0);
    }
    const interrupted: Deployment = {
      ...record,
      status: "interrupted",
      finishedAt: "2026-11-24T08:00:30.000Z",
      reason: "instance a stopped answering (its lease expired)",
    };
    await survivor.store.save(interrupted);
    relay.restore();
    await waitFor("Redis seen again", () => cutOff.connection.problem === undefined, { timeoutMs: 10_000 });
    // The kept lines were refused, not kept for a retry: the appender has nothing left to write.
    await withDeadline("the kept lines settled", (appender as RedisAppender).whenWritten(), 5000);
    await assert.rejects(appender.write(["after"]), (error) => {
      assert.ok(error instanceof RecordEndedError);
      assert.deepEqual(error.stored, interrupted);
      return true;
    });
    appender.close();
    assert.deepEqual(await readAll(cutOff.store, record.id), ["1:before"]);
    assert.equal(await survivor.store.countLines(record.id), 1);
  },
});

Deno.test({
  name:
    "RedisStore: while Redis is down a write resolves at once and keeps its lines; all are written once it is back",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server, { retryMs: 200 });
    const id = crypto.randomUUID();
    const appender = await instance.store.openAppender(id);
    assert.equal(await appender.write(["line 1", "line 2"]), 1);
    await server.stop();
    await waitFor("Redis seen down", () => instance.connection.problem !== undefined);
    for (let i = 3; i <= 2000; i += 2) {
      assert.equal(
        await withDeadline("a write while down", appender.write([`line ${i}`, `line ${i + 1}`]), 500),
        0,
      );
    }
    appender.close(); // what it keeps is still written
    await server.start();
    await waitFor(
      "every line in Redis",
      async () => (await instance.store.countLines(id).catch(() => 0)) === 2000,
      {
        timeoutMs: 10_000,
      },
    );
    assert.deepEqual(await readAll(instance.store, id), numbered("line ", 1, 2000));
  },
});

Deno.test({
  name:
    "RedisStore: past the buffer's bound output is dropped, with one notice line, and output after it is written",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server, { retryMs: 200, maxBufferBytes: 1000 });
    const id = crypto.randomUUID();
    const appender = await instance.store.openAppender(id);
    await server.stop();
    await waitFor("Redis seen down", () => instance.connection.problem !== undefined);
    // 100 lines of 10 characters: the bound holds 90 of them (11 each with its line feed).
    for (let i = 1; i <= 100; i++) await appender.write([`kept ${String(i).padStart(5, "0")}`]);
    await server.start();
    await waitFor("Redis seen up", () => instance.connection.problem === undefined, { timeoutMs: 10_000 });
    await waitFor("the kept lines and the notice", async () => (await instance.store.countLines(id)) === 91, {
      timeoutMs: 10_000,
    });
    assert.equal(await appender.write(["after"]), 92);
    appender.close();
    const all = await readAll(instance.store, id);
    assert.deepEqual(
      all.slice(0, 90),
      Array.from({ length: 90 }, (_, i) => `${i + 1}:kept ${String(i + 1).padStart(5, "0")}`),
    );
    assert.deepEqual(all.slice(90), [
      "91:[shiplog] Redis was unreachable: 10 lines (110 bytes) of output were dropped",
      "92:after",
    ]);
  },
});

Deno.test({
  name:
    "RedisStore: an appender opened without bufferWhileAway rejects with StoreUnavailableError while Redis is down",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    const id = crypto.randomUUID();
    const appender = await instance.store.openAppender(id, { bufferWhileAway: false });
    assert.equal(await appender.write(["before"]), 1);
    await server.stop();
    await waitFor("Redis seen down", () => instance.connection.problem !== undefined);
    await assert.rejects(
      withDeadline("a write while down", appender.write(["lost"]), 3000),
      StoreUnavailableError,
    );
    await server.start();
    await waitFor("Redis seen up", () => instance.connection.problem === undefined, { timeoutMs: 10_000 });
    assert.equal(await appender.write(["after"]), 2);
    appender.close();
  },
});

Deno.test({
  name:
    "RedisStore: a follower and a writer survive a Redis restart with its data (AOF): no gap, no duplicate",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: true });
    await using writer = await openInstance(server, { retryMs: 100 });
    await using viewer = await openInstance(server, { retryMs: 100 });
    const id = crypto.randomUUID();
    using followed = await follow(viewer.store, id);
    const appender = await writer.store.openAppender(id);
    let written = 0;
    let writing = true;
    const writes = (async () => {
      while (writing) {
        await appender.write(Array.from({ length: 5 }, (_, i) => `line ${written + i + 1}`));
        written += 5;
        await delay(2);
      }
    })();
    await waitFor("lines before the restart", () => followed.events.length >= 200);
    await server.stop();
    await delay(300);
    await server.start();
    const restartedAt = written;
    await waitFor("writes well after the restart", () => written >= restartedAt + 300, { timeoutMs: 10_000 });
    writing = false;
    await writes;
    appender.close();
    await waitFor("every line at the follower", () => followed.events.length >= written, {
      timeoutMs: 10_000,
    });
    assert.deepEqual(followed.events, numbered("line ", 1, written));
    assert.deepEqual(await readAll(viewer.store, id), numbered("line ", 1, written));
  },
});

Deno.test({
  name:
    "RedisStore: Redis restarted without its data: followers reset, an epoch event, numbers start at 1 again",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: false });
    await using instance = await openInstance(server, { retryMs: 100 });
    await using other = await openInstance(server, { retryMs: 100 });
    let epochs = 0;
    instance.store.addEventListener("epoch", () => epochs++);
    let otherEpochs = 0;
    other.store.addEventListener("epoch", () => otherEpochs++);
    const epoch = instance.store.epoch;
    assert.equal(other.store.epoch, epoch, "the instances agree on one epoch");
    const record = deploymentRecord();
    await instance.store.save(record);
    const id = record.id;
    const appender = await instance.store.openAppender(id);
    await appender.write(["old 1", "old 2"]);
    using followed = await follow(other.store, id);
    await server.start({ wipe: true });
    await waitFor("the reset on both instances", () => epochs === 1 && otherEpochs === 1, {
      timeoutMs: 10_000,
    });
    assert.notEqual(instance.store.epoch, epoch);
    assert.equal(instance.store.epoch, other.store.epoch, "the instances agree on the new epoch");
    assert.deepEqual(followed.events, ["reset"]);
    assert.deepEqual(
      await instance.store.list(),
      [],
      "the records are gone: whoever holds them writes them again",
    );
    assert.equal(await appender.write(["new 1"]), 1);
    await waitFor("the new line", () => followed.events.length === 2);
    assert.deepEqual(followed.events, ["reset", "1:new 1"]);
    appender.close();
  },
});

Deno.test({
  name: "RedisStore.close() stops the reader: a follower hears nothing more; the connection stays open",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    await using writer = await openInstance(server);
    const id = crypto.randomUUID();
    using followed = await follow(instance.store, id);
    await instance.store.close();
    const appender = await writer.store.openAppender(id);
    await appender.write(["after close"]);
    appender.close();
    await delay(100);
    assert.deepEqual(followed.events, []);
    assert.equal(await instance.connection.commands.sendCommand(["PING"]), "PONG");
  },
});

Deno.test({
  name: "RedisStore.save() of an end waits for the output kept while Redis was away: it is written first",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server, { retryMs: 60_000 });
    const record = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:00:01.000Z" });
    await instance.store.save(record);
    const appender = await instance.store.openAppender(record.id);
    await server.stop();
    await waitFor("Redis seen down", () => instance.connection.problem !== undefined);
    for (let i = 0; i < 5000; i += 100) {
      await appender.write(Array.from({ length: 100 }, (_, j) => `line ${i + j + 1}`));
    }
    appender.close();
    // The runner saves the end as soon as Redis is back, as the store starts writing what it kept.
    const saved = new Promise<void>((resolve, reject) => {
      instance.connection.addEventListener("up", () => {
        instance.store.save({ ...record, status: "succeeded", finishedAt: "2026-11-24T08:01:00.000Z" })
          .then(resolve, reject);
      }, { once: true });
    });
    await server.start();
    await withDeadline("the save", saved, 10_000);
    assert.equal(await instance.store.countLines(record.id), 5000);
  },
});

Deno.test({
  name: "RedisStore: nothing is read with no follower, and an idle follower costs one read per block timeout",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server, { blockMs: 200 });
    await delay(500);
    assert.equal(await callsOf(server, "xread"), 0, "no follower: no read");
    const followed = await follow(instance.store, crypto.randomUUID());
    await delay(1000);
    const reads = await callsOf(server, "xread");
    assert.ok(reads >= 3 && reads <= 7, `${reads} reads in 1 s with a block timeout of 200 ms`);
    followed.follower.close();
    await delay(500); // the read in flight times out, and is not sent again
    const after = await callsOf(server, "xread");
    await delay(500);
    assert.equal(await callsOf(server, "xread"), after, "no read once the last follower closed");
  },
});

/**
 * A viewer whose connections go through `proxy`, without the watchdog (what is checked is the reader's own
 * bound), and a way to make its blocking connection die without telling: a black hole, then, if `forget`,
 * killed in Redis as well (Redis no longer knows the read, and says nothing to the viewer).
 */
async function openViewerBehind(proxy: TcpProxy, server: RedisServer, options: RedisStoreOptions) {
  const connection = await RedisConnection.connect(`redis://127.0.0.1:${proxy.port}`, {
    prefix: PREFIX,
    commandTimeoutMs: 2000,
    pingIntervalMs: 3_600_000,
  });
  const store = await RedisStore.open(connection, options);
  return {
    store,
    async loseBlockingConnection(forget: boolean): Promise<void> {
      const line = await waitForValue(
        "the blocking read in Redis",
        async () =>
          (await server.cli("CLIENT", "LIST")).split("\n").find((line) => line.includes("cmd=xread")),
      );
      const [, id, port] = /^id=(\d+) addr=127\.0\.0\.1:(\d+)/.exec(line)!;
      assert.ok(proxy.blackHole(Number(port)), "the proxy has the blocking connection");
      if (forget) assert.equal(await server.cli("CLIENT", "KILL", "ID", id), "1");
    },
    async [Symbol.asyncDispose]() {
      await store.close();
      await connection.close();
    },
  };
}

Deno.test({
  name:
    "RedisStore: a blocking connection that died without telling is made again after the block time and a margin; lines go on",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: false });
    await using proxy = startTcpProxy(server.port);
    await using writer = await openInstance(server);
    await using viewer = await openViewerBehind(proxy, server, { blockMs: 300 });
    const id = crypto.randomUUID();
    using followed = await follow(viewer.store, id);
    const appender = await writer.store.openAppender(id);
    await appender.write(["before"]);
    await waitFor("the first line", () => followed.events.length === 1);
    await viewer.loseBlockingConnection(false);
    const lost = performance.now();
    await appender.write(["after"]);
    // The block (300 ms), its margin (300 ms), a reconnection and a read.
    await waitFor("the line after the loss", () => followed.events.length === 2, { timeoutMs: 3000 });
    assert.deepEqual(followed.events, ["1:before", "2:after"]);
    assert.ok(
      performance.now() - lost < 2000,
      `within the bound, not ${Math.round(performance.now() - lost)} ms`,
    );
    appender.close();
  },
});

Deno.test({
  name:
    "RedisStore: a read that Redis no longer knows is given up after a bounded number of CLIENT UNBLOCKs; a new follower is served at once",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: false });
    await using proxy = startTcpProxy(server.port);
    await using writer = await openInstance(server);
    // A block time (and margin) far beyond this test: only the bound on the unblocks can end the read.
    await using viewer = await openViewerBehind(proxy, server, { blockMs: 20_000 });
    const [first, second] = [crypto.randomUUID(), crypto.randomUUID()];
    using followedFirst = await follow(viewer.store, first);
    await viewer.loseBlockingConnection(true);
    const unblocksBefore = await callsOf(server, "client\\|unblock");
    const lost = performance.now();
    // A new follower: the read in flight must be ended to add it, and Redis no longer knows that read.
    using followedSecond = await follow(viewer.store, second);
    const appender = await writer.store.openAppender(second);
    await appender.write(["to the second"]);
    await waitFor("the line of the new follower", () => followedSecond.events.length === 1, {
      timeoutMs: 3000,
    });
    assert.ok(performance.now() - lost < 2500, `served after ${Math.round(performance.now() - lost)} ms`);
    const unblocks = (await callsOf(server, "client\\|unblock")) - unblocksBefore;
    assert.ok(unblocks <= 110, `${unblocks} CLIENT UNBLOCKs, not one every 5 ms for ever`);
    assert.deepEqual(followedFirst.events, []);
    appender.close();
  },
});

Deno.test({
  name:
    "RedisStore: a Redis emptied without a reconnection (FLUSHALL) is noticed at the next look at the epoch",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: false });
    await using instance = await openInstance(server, { epochCheckMs: 100 });
    let epochs = 0;
    instance.store.addEventListener("epoch", () => epochs++);
    const epoch = instance.store.epoch;
    const id = crypto.randomUUID();
    const appender = await instance.store.openAppender(id);
    await appender.write(["old 1"]);
    using followed = await follow(instance.store, id);
    let downs = 0;
    instance.connection.addEventListener("down", () => downs++);
    assert.equal(await server.cli("FLUSHALL"), "OK");
    await waitFor("the epoch event", () => epochs === 1, { timeoutMs: 2000 });
    assert.equal(downs, 0, "no reconnection told it");
    assert.notEqual(instance.store.epoch, epoch);
    assert.equal(await server.cli("GET", `${PREFIX}:epoch`), instance.store.epoch);
    assert.deepEqual(followed.events, ["reset"]);
    appender.close();
  },
});

Deno.test({
  name:
    "RedisStore keeps a line's time and mark in its entry (t, e); an entry with only l reads as of no time",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    await using instance = await openInstance(server);
    const { store } = instance;
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(["out"], { time: 1_700_000_000_001 });
    await appender.write(["err"], { time: 1_700_000_000_002, stderr: true });
    appender.close();
    const key = `${PREFIX}:log:${id}`;
    assert.equal(await server.cli("XRANGE", key, "1-0", "1-0"), "1-0\nl\nout\nt\n1700000000001\ne\n0");
    assert.equal(await server.cli("XRANGE", key, "2-0", "2-0"), "2-0\nl\nerr\nt\n1700000000002\ne\n1");
    // As a shiplog from before times were kept wrote it.
    await server.cli("XADD", key, "3-0", "l", "old");
    await server.cli("HSET", `${key}:info`, "lines", "3");
    const batches = [];
    for await (const batch of store.readLines(id, 0, { times: true })) batches.push(batch);
    assert.deepEqual(batches.map(({ lines, times, stderr }) => ({ lines, times, stderr })), [
      { lines: ["out", "err", "old"], times: [1_700_000_000_001, 1_700_000_000_002, 0], stderr: [2] },
    ]);
  },
});
