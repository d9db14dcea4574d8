/**
 * The contract of a {@linkcode LogStore}, written once against the interface and run against every store: the
 * file store on a temporary directory, and the Redis store on a real `redis-server` of its own. A store is done
 * when it passes these. What only one store can have (a file rewritten in place, a Redis restart) is tested
 * beside that store.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileStore } from "./file_store.ts";
import type { LineBatch, LogFollower, LogFollowHandlers, LogStore } from "./log_store.ts";
import { RedisStore } from "./redis_store.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { deploymentRecord, makeTempDir, waitFor, withDeadline } from "../testing/test_helpers.ts";

/** A store opened for one test, and what the test may do to it behind its back. */
interface OpenedStore extends AsyncDisposable {
  store: LogStore;
  /** Makes the store lose the lines of log `id`, as it can: a file truncated; Redis restarted without its data. */
  loseLog(id: string): Promise<void>;
}

interface StoreKind {
  name: string;
  ignore?: boolean;
  open(): Promise<OpenedStore>;
}

/** Small pages, so that the tests read across several of them. */
const PAGE_LINES = 50;

const STORES: StoreKind[] = [
  {
    name: "FileStore",
    async open() {
      const temp = await makeTempDir();
      const store = await FileStore.open(temp.path);
      return {
        store,
        loseLog: (id) => Deno.truncate(join(temp.path, `${id}.log`), 0),
        async [Symbol.asyncDispose]() {
          await store.close();
          await temp[Symbol.asyncDispose]();
        },
      };
    },
  },
  {
    name: "RedisStore",
    ...REDIS_TEST,
    async open() {
      const server = await startRedisServer({ appendOnly: false });
      const connection = await RedisConnection.connect(server.url, { prefix: "contract" });
      const store = await RedisStore.open(connection, { pageLines: PAGE_LINES, blockMs: 2000 });
      return {
        store,
        loseLog: () => server.start({ wipe: true }),
        async [Symbol.asyncDispose]() {
          await store.close();
          connection.close();
          await server[Symbol.asyncDispose]();
        },
      };
    },
  },
];

/** Every line of a log after `afterLine`, as `"<number>:<text>"`, dropping lines a batch repeats. */
async function readAll(store: LogStore, id: string, afterLine = 0, from?: number): Promise<string[]> {
  const seen: string[] = [];
  let last = afterLine;
  for await (const batch of store.readLines(id, afterLine, { from })) {
    batch.lines.forEach((line, i) => {
      const number = batch.firstLine + i;
      if (number > last) seen.push(`${number}:${line}`);
      last = Math.max(last, number);
    });
  }
  return seen;
}

/** Follows a log and records what it is told as `"<number>:<text>"` and `"reset"`. */
async function follow(store: LogStore, id: string, extra: Partial<LogFollowHandlers> = {}) {
  const events: string[] = [];
  const batches: LineBatch[] = [];
  const follower: LogFollower = await store.follow(id, {
    onLines(batch) {
      batches.push(batch);
      batch.lines.forEach((line, i) => events.push(`${batch.firstLine + i}:${line}`));
    },
    onReset: () => events.push("reset"),
    ...extra,
  });
  return { follower, events, batches, [Symbol.dispose]: () => follower.close() };
}

/** `"<n>:<prefix><n>"` for n in [from, to]. */
function numbered(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:${prefix}${from + i}`);
}

/** The lines `<prefix><n>` for n in [from, to]. */
function lines(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
}

function contract(
  name: string,
  test: (opened: OpenedStore, t: Deno.TestContext) => Promise<void>,
): void {
  for (const kind of STORES) {
    Deno.test({
      name: `${kind.name}: ${name}`,
      ignore: kind.ignore,
      async fn(t) {
        await using opened = await kind.open();
        await test(opened, t);
      },
    });
  }
}

contract(
  "write() resolves with its first line's number, counting on across appenders and calls",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const first = await store.openAppender(id);
    assert.equal(await first.write(["a", "b", "c"]), 1);
    assert.equal(await first.write(["d"]), 4);
    assert.equal(await first.write([]), 5, "no lines: the number the next one will have");
    first.close();
    const second = await store.openAppender(id);
    assert.equal(await second.write(["e", "f"]), 5);
    second.close();
    assert.equal(await store.countLines(id), 6);
    assert.deepEqual(await readAll(store, id), ["1:a", "2:b", "3:c", "4:d", "5:e", "6:f"]);
  },
);

contract(
  "readLines() reads after a line, with and without a cursor, across pages, in order",
  async ({ store }, t) => {
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    // Lines of every length, some long enough that a file is read in several pieces, some empty, one with "\r".
    const texts = Array.from(
      { length: 400 },
      (_, i) => i % 37 === 0 ? "" : `line ${i + 1} ` + "x".repeat(i * 7),
    );
    texts[10] = "carriage\rreturn and ünïcode ✓ 𝄞";
    for (let i = 0; i < texts.length; i += 60) {
      await appender.write(texts.slice(i, i + 60));
    }
    appender.close();
    const expected = texts.map((text, i) => `${i + 1}:${text}`);

    await t.step("from the start", async () => {
      assert.deepEqual(await readAll(store, id), expected);
    });
    await t.step("after a line, without a cursor", async () => {
      assert.deepEqual(await readAll(store, id, 123), expected.slice(123));
    });
    await t.step("after a line, from the cursor (end) of the batch that holds it", async () => {
      const cursor = await cursorOfBatchHolding(store, id, 200);
      assert.deepEqual(await readAll(store, id, cursor.line, cursor.end), expected.slice(cursor.line));
    });
    await t.step("after the last line, and past it: nothing", async () => {
      assert.deepEqual(await readAll(store, id, 400), []);
      assert.deepEqual(await readAll(store, id, 1000), []);
    });
    await t.step("every batch holds consecutive lines, numbered from its firstLine", async () => {
      let next = 1;
      for await (const batch of store.readLines(id, 0)) {
        assert.ok(batch.firstLine <= next, `batch at ${batch.firstLine}, expected ${next} or before`);
        next = batch.firstLine + batch.lines.length;
      }
      assert.equal(next, 401);
    });
    await t.step("an aborted read stops", async () => {
      const controller = new AbortController();
      let batches = 0;
      for await (const _ of store.readLines(id, 0, { signal: controller.signal })) {
        batches++;
        controller.abort();
      }
      assert.equal(batches, 1);
    });
  },
);

contract(
  "a missing log reads as empty: no lines, no bytes, no time, an empty raw stream",
  async ({ store }) => {
    const id = crypto.randomUUID();
    assert.deepEqual(await readAll(store, id), []);
    assert.equal(await store.countLines(id), 0);
    assert.equal(await store.byteLength(id), 0);
    assert.equal(await store.lastWrittenAt(id), undefined);
    assert.equal(await new Response(await store.readRaw(id)).text(), "");
  },
);

contract("byteLength(), lastWrittenAt() and readRaw() of a written log", async ({ store }) => {
  const id = crypto.randomUUID();
  const appender = await store.openAppender(id);
  const before = Date.now();
  await appender.write(["héllo", "", "wörld ✓"]);
  await appender.write(lines("more ", 1, 2000));
  appender.close();
  const text = "héllo\n\nwörld ✓\n" + lines("more ", 1, 2000).join("\n") + "\n";
  assert.equal(await store.byteLength(id), new TextEncoder().encode(text).length);
  const writtenAt = await store.lastWrittenAt(id);
  assert.ok(writtenAt instanceof Date);
  // A file's time has the file system's precision, Redis's its clock's: a second either way.
  assert.ok(Math.abs(writtenAt.getTime() - before) < 1000, `written at ${writtenAt.toISOString()}`);
  assert.equal(await new Response(await store.readRaw(id)).text(), text);
});

contract(
  "records: save() then list(), replaced by the next save, remove() takes record and log",
  async ({ store }) => {
    const queued = deploymentRecord();
    const other = deploymentRecord({ createdAt: "2026-11-24T09:00:00.000Z", command: null });
    await store.save(queued);
    await store.save(other);
    const byId = (records: { id: string }[]) => [...records].sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(byId(await store.list()), byId([queued, other]));

    const running = { ...queued, status: "running" as const, startedAt: "2026-11-24T08:00:01.000Z" };
    await store.save(running);
    // Before the end: a shared store's log of an ended deployment takes nothing more (a Redis test says so).
    const appender = await store.openAppender(queued.id);
    await appender.write(["a line"]);
    appender.close();
    const ended = {
      ...running,
      status: "succeeded" as const,
      finishedAt: "2026-11-24T08:01:00.000Z",
      exitCode: 0,
    };
    await store.save(ended);
    await store.save(ended); // the same again is no change
    assert.deepEqual(byId(await store.list()), byId([ended, other]));

    await store.remove(queued.id);
    assert.deepEqual(await store.list(), [other]);
    assert.equal(await store.countLines(queued.id), 0);
    assert.deepEqual(await readAll(store, queued.id), []);
    await store.remove(queued.id); // removing again is no error
  },
);

contract(
  "two appenders at once, many batches: numbers contiguous, a batch never interleaved",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const [a, b] = [await store.openAppender(id), await store.openAppender(id)];
    const firsts = new Map<string, number>();
    const writes: Promise<void>[] = [];
    for (let batch = 0; batch < 40; batch++) {
      for (const [name, appender] of [["a", a], ["b", b]] as const) {
        const size = 1 + (batch * 7) % 13;
        const batchLines = Array.from({ length: size }, (_, i) => `${name}${batch}.${i}/${size}`);
        writes.push(appender.write(batchLines).then((first) => void firsts.set(`${name}${batch}`, first)));
      }
    }
    await Promise.all(writes);
    a.close();
    b.close();
    const all = (await readAll(store, id)).map((entry) => entry.slice(entry.indexOf(":") + 1));
    assert.equal(all.length, 2 * [...Array(40).keys()].reduce((sum, batch) => sum + 1 + (batch * 7) % 13, 0));
    // Each batch's lines are together, in order, starting at the number its write() resolved with.
    for (const [batch, first] of firsts) {
      const size = Number(all[first - 1].split("/")[1]);
      assert.deepEqual(
        all.slice(first - 1, first - 1 + size),
        Array.from({ length: size }, (_, i) => `${batch}.${i}/${size}`),
        `batch ${batch}`,
      );
    }
    // Each appender's batches are in the order it wrote them.
    for (const name of ["a", "b"]) {
      const order = [...firsts].filter(([batch]) => batch.startsWith(name)).map(([, first]) => first);
      assert.deepEqual(order, [...order].sort((x, y) => x - y), `${name} in order`);
    }
  },
);

contract(
  "follow() reports lines appended after it, numbered on from those before; nextLine",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(lines("old ", 1, 3));
    using followed = await follow(store, id);
    assert.equal(followed.follower.nextLine, 4);
    await appender.write(["new 4", "new 5"]);
    await appender.write(["new 6"]);
    await waitFor("the live lines", () => followed.events.length === 3);
    assert.deepEqual(followed.events, numbered("new ", 4, 6));
    assert.equal(followed.follower.nextLine, 7);
    appender.close();
  },
);

contract("follow() of a log that does not exist yet reports it from line 1", async ({ store }) => {
  const id = crypto.randomUUID();
  using followed = await follow(store, id);
  assert.equal(followed.follower.nextLine, 1);
  const appender = await store.openAppender(id);
  await appender.write(["first", "second"]);
  appender.close();
  await waitFor("the lines", () => followed.events.length === 2);
  assert.deepEqual(followed.events, ["1:first", "2:second"]);
});

contract(
  "follow() then readLines() up to nextLine: no gap and no duplicate while lines keep coming",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(lines("line ", 1, 500));
    // A writer that goes on while the viewer joins.
    let written = 500;
    const writing = (async () => {
      for (; written < 1500; written += 10) await appender.write(lines("line ", written + 1, written + 10));
    })();
    // The viewer: follow first (live lines queue up), then the history up to where the follower started.
    const live: string[] = [];
    using followed = await follow(store, id, {
      onLines: (batch) => batch.lines.forEach((line, i) => live.push(`${batch.firstLine + i}:${line}`)),
    });
    const start = followed.follower.nextLine;
    assert.ok(start > 500, `the follower starts at ${start}, after the lines written before it`);
    const history = (await readAll(store, id)).filter((entry) => Number(entry.split(":")[0]) < start);
    await writing;
    await waitFor("every live line", () => live.length >= 1501 - start, { timeoutMs: 10_000 });
    assert.deepEqual([...history, ...live], numbered("line ", 1, 1500));
    appender.close();
  },
);

contract(
  "catchUp() resolves once every line appended before it was handed to onLines, each once",
  async ({ store }) => {
    const id = crypto.randomUUID();
    using followed = await follow(store, id);
    const appender = await store.openAppender(id);
    for (let i = 0; i < 5; i++) await appender.write(lines("line ", i * 300 + 1, i * 300 + 300));
    await withDeadline("catchUp()", Promise.all([followed.follower.catchUp(), followed.follower.catchUp()]));
    assert.deepEqual(followed.events, numbered("line ", 1, 1500));
    assert.equal(followed.follower.nextLine, 1501);
    appender.close();
  },
);

contract(
  "a follower whose pace() waits is read no further until it resolves; other logs keep flowing",
  async ({ store }) => {
    const [slowId, otherId] = [crypto.randomUUID(), crypto.randomUUID()];
    let release: (() => void) | undefined;
    let paced = 0;
    using slow = await follow(store, slowId, {
      pace() {
        paced++;
        const { promise, resolve } = Promise.withResolvers<void>();
        release = resolve;
        return promise;
      },
    });
    using other = await follow(store, otherId);
    const slowAppender = await store.openAppender(slowId);
    const otherAppender = await store.openAppender(otherId);
    // A burst bigger than one read of either store (a file is read 64 KiB at a time).
    await slowAppender.write(lines("x".repeat(100) + " ", 1, 3000));
    await waitFor("the first piece of the burst", () => slow.events.length > 0 && release !== undefined);
    await otherAppender.write(["meanwhile"]);
    await waitFor("the other log's line", () => other.events.length === 1);
    const held = slow.events.length;
    assert.ok(held < 3000, `all ${held} lines came though pace() had not resolved`);
    // Nothing more while it waits.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(slow.events.length, held);
    // Released every time from now on: the rest comes.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const releaseAll = () => {
      release?.();
      if (slow.events.length < 3000) timer = setTimeout(releaseAll, 5);
    };
    releaseAll();
    try {
      await waitFor("the whole burst", () => slow.events.length === 3000, { timeoutMs: 10_000 });
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(slow.events, numbered("x".repeat(100) + " ", 1, 3000));
    assert.ok(paced >= 2);
    slowAppender.close();
    otherAppender.close();
  },
);

contract(
  "a log that loses its lines tells its follower onReset, and numbers from 1 again",
  async (opened) => {
    const { store } = opened;
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(lines("before ", 1, 5));
    using followed = await follow(store, id);
    await appender.write(["before 6"]);
    await waitFor("line 6", () => followed.events.length === 1);
    await opened.loseLog(id);
    await waitFor("the reset", () => followed.events.includes("reset"), { timeoutMs: 10_000 });
    // The appender keeps working; the log starts over.
    const again = await store.openAppender(id);
    await waitFor("a write that gets through", async () => (await again.write(["after"])) > 0, {
      timeoutMs: 10_000,
    });
    await waitFor("the line after the reset", () => followed.events.at(-1)?.endsWith(":after") === true);
    const afterReset = followed.events.slice(followed.events.indexOf("reset") + 1);
    assert.equal(afterReset[0], "1:after", `after the reset: ${afterReset.join(", ")}`);
    assert.deepEqual(followed.events.slice(0, 2), ["6:before 6", "reset"]);
    appender.close();
    again.close();
  },
);

contract("a closed follower hears nothing more; another of the same log still does", async ({ store }) => {
  const id = crypto.randomUUID();
  const closed = await follow(store, id);
  using open = await follow(store, id);
  closed.follower.close();
  const appender = await store.openAppender(id);
  await appender.write(["after close"]);
  await waitFor("the open follower's line", () => open.events.length === 1);
  await open.follower.catchUp();
  assert.deepEqual(closed.events, []);
  appender.close();
});

/** Every line after `afterLine` with what the store knows of it, as `"<number>:<text>@<time><!stderr>"`. */
async function readTimed(store: LogStore, id: string, afterLine = 0, from?: number): Promise<string[]> {
  const seen: string[] = [];
  let last = afterLine;
  for await (const batch of store.readLines(id, afterLine, { from, times: true })) {
    assert.equal(batch.times?.length, batch.lines.length, "a time for every line");
    batch.lines.forEach((line, i) => {
      const number = batch.firstLine + i;
      if (number > last) seen.push(timed(number, line, batch.times![i], batch.stderr!.includes(number)));
      last = Math.max(last, number);
    });
    for (const line of batch.stderr!) {
      assert.ok(line >= batch.firstLine && line < batch.firstLine + batch.lines.length, `stderr ${line}`);
    }
  }
  return seen;
}

function timed(number: number, text: string, time: number, stderr: boolean): string {
  return `${number}:${text}@${time}${stderr ? "!" : ""}`;
}

contract(
  "write() keeps each line's time and stderr mark; readLines({ times }) and follow() give them back",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(["out 1", "out 2"], { time: 1_700_000_000_001 });
    using followed = await follow(store, id);
    await appender.write(["err 3", "err 4"], { time: 1_700_000_000_002, stderr: true });
    await appender.write(["out 5"], { time: 1_700_000_000_003, stderr: false });
    const expected = [
      timed(1, "out 1", 1_700_000_000_001, false),
      timed(2, "out 2", 1_700_000_000_001, false),
      timed(3, "err 3", 1_700_000_000_002, true),
      timed(4, "err 4", 1_700_000_000_002, true),
      timed(5, "out 5", 1_700_000_000_003, false),
    ];
    assert.deepEqual(await readTimed(store, id), expected);
    assert.deepEqual(await readTimed(store, id, 3), expected.slice(3));
    await waitFor("the live lines", () => followed.events.length === 3);
    const live = followed.batches.flatMap((batch) =>
      batch.lines.map((line, i) =>
        timed(batch.firstLine + i, line, batch.times![i], batch.stderr!.includes(batch.firstLine + i))
      )
    );
    assert.deepEqual(live, expected.slice(2), "a follower's batches carry the times too");
    // The text is as it always was: nothing of the times in it.
    assert.equal(await new Response(await store.readRaw(id)).text(), "out 1\nout 2\nerr 3\nerr 4\nout 5\n");
    appender.close();
  },
);

contract("a write without a time gets the time it was made, as from stdout", async ({ store }) => {
  const id = crypto.randomUUID();
  const appender = await store.openAppender(id);
  const before = Date.now();
  await appender.write(["no time given"]);
  const after = Date.now();
  appender.close();
  for await (const batch of store.readLines(id, 0, { times: true })) {
    assert.ok(batch.times![0] >= before && batch.times![0] <= after, `time ${batch.times![0]}`);
    assert.deepEqual(batch.stderr, []);
  }
});

contract(
  "times across pages and appenders, after a line, from a cursor: each line's own",
  async ({ store }) => {
    const id = crypto.randomUUID();
    const [out, err] = [await store.openAppender(id), await store.openAppender(id)];
    const expected: string[] = [];
    for (let i = 0; i < 400; i += 20) {
      const stderr = i % 60 === 20;
      const time = 1_700_000_000_000 + i;
      const first = await (stderr ? err : out).write(lines(`line ${"x".repeat(i)} `, i + 1, i + 20), {
        time,
        stderr,
      });
      assert.equal(first, i + 1);
      for (let n = i + 1; n <= i + 20; n++) {
        expected.push(timed(n, `line ${"x".repeat(i)} ${n}`, time, stderr));
      }
    }
    out.close();
    err.close();
    assert.deepEqual(await readTimed(store, id), expected);
    assert.deepEqual(await readTimed(store, id, 257), expected.slice(257));
    const cursor = await cursorOfBatchHolding(store, id, 200);
    assert.deepEqual(await readTimed(store, id, cursor.line, cursor.end), expected.slice(cursor.line));
  },
);

contract(
  "a log that loses its lines: those written after it have their own times and marks, not the old ones'",
  async (opened) => {
    const { store } = opened;
    const id = crypto.randomUUID();
    const appender = await store.openAppender(id);
    await appender.write(["old 1", "old 2", "old 3"], { time: 1_700_000_000_001, stderr: true });
    appender.close();
    await opened.loseLog(id);
    // Refused, not kept, while the store is away: only the write that gets through is in the log.
    const again = await store.openAppender(id, { bufferWhileAway: false });
    await waitFor(
      "a write that gets through",
      async () => (await again.write(["new 1"], { time: 1_700_000_000_009 }).catch(() => 0)) > 0,
      { timeoutMs: 10_000 },
    );
    again.close();
    assert.deepEqual(await readTimed(store, id), [timed(1, "new 1", 1_700_000_000_009, false)]);
  },
);

contract(
  "remove() takes the times with the log: a log made again under the id has none of them",
  async ({ store }) => {
    const record = deploymentRecord();
    await store.save(record);
    const appender = await store.openAppender(record.id);
    await appender.write(["line 1", "line 2"], { time: 1_700_000_000_001, stderr: true });
    appender.close();
    await store.remove(record.id);
    assert.deepEqual(await readTimed(store, record.id), []);
    const again = await store.openAppender(record.id);
    await again.write(["line 1"], { time: 1_700_000_000_002 });
    again.close();
    assert.deepEqual(await readTimed(store, record.id), [timed(1, "line 1", 1_700_000_000_002, false)]);
  },
);

/** The cursor (last line, end) of the first batch a read from the start gives that reaches line `line`. */
async function cursorOfBatchHolding(
  store: LogStore,
  id: string,
  line: number,
): Promise<{ line: number; end: number }> {
  for await (const batch of store.readLines(id, 0)) {
    const last = batch.firstLine + batch.lines.length - 1;
    if (last >= line) return { line: last, end: batch.end };
  }
  throw new Error(`no batch reaches line ${line}`);
}
