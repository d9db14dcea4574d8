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
      let cursor: { line: number; end: number } | undefined;
      for await (const batch of store.readLines(id, 0)) {
        const last = batch.firstLine + batch.lines.length - 1;
        if (last >= 200) {
          cursor = { line: last, end: batch.end };
          break;
        }
      }
      assert.ok(cursor);
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
