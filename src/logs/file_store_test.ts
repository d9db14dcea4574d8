/**
 * Tests of the file store, its log tail and the shared directory watcher, on real files in a temporary
 * directory, appended to by this process and by real `sh` subprocesses.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Change, DirWatcher } from "./dir_watcher.ts";
import { LOCK_FILE } from "./directory_lock.ts";
import type { Deployment } from "./deployment.ts";
import { FileStore, type FileStoreOptions, MAX_RECORD_BYTES, TIMES_DIR } from "./file_store.ts";
import { HEADER_BYTES, LineTimes, RECORD_BYTES } from "./line_times.ts";
import type { LineBatch, LogFollower, LogFollowHandlers } from "./log_store.ts";
import { delay, deploymentRecord, makeTempDir, waitFor } from "../testing/test_helpers.ts";

const encoder = new TextEncoder();

/** A store in a fresh temporary directory; closes the store and removes the directory when disposed. */
async function openStore(options: FileStoreOptions = {}) {
  const temp = await makeTempDir();
  const store = await FileStore.open(temp.path, options);
  return {
    store,
    dir: temp.path,
    logPath: (id: string) => join(temp.path, `${id}.log`),
    async [Symbol.asyncDispose]() {
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

/** Appends raw bytes (or text) to a file, the way another writer would. */
async function append(path: string, data: string | Uint8Array): Promise<void> {
  using file = await Deno.open(path, { append: true, create: true });
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

async function collect(batches: AsyncIterable<LineBatch>): Promise<LineBatch[]> {
  const all: LineBatch[] = [];
  for await (const batch of batches) all.push(batch);
  return all;
}

/** Follows a log and records what it is told as `"<line number>:<text>"` and `"reset"`. */
async function follow(store: FileStore, id: string) {
  const events: string[] = [];
  const batches: LineBatch[] = [];
  const handlers: LogFollowHandlers = {
    onLines(batch) {
      batches.push(batch);
      batch.lines.forEach((line, i) => events.push(`${batch.firstLine + i}:${line}`));
    },
    onReset: () => events.push("reset"),
  };
  const follower: LogFollower = await store.follow(id, handlers);
  return {
    follower,
    events,
    batches,
    [Symbol.dispose]: () => follower.close(),
  };
}

/**
 * A new, empty log at `logPath(id)` and a hard link to it in another temporary directory, removed when
 * disposed. inotify reports a write to the directory of the path it was made through: a write through the
 * link changes the log without any notification for the store's directory.
 */
async function linkedLog(logPath: (id: string) => string) {
  const elsewhere = await makeTempDir();
  const id = crypto.randomUUID();
  const link = join(elsewhere.path, "link.log");
  await append(logPath(id), "");
  await Deno.link(logPath(id), link);
  return { id, link, [Symbol.asyncDispose]: () => elsewhere[Symbol.asyncDispose]() };
}

/**
 * True while this process has an inotify watch on `dir` (Linux). Deno keeps one inotify instance per process
 * and one kernel watch per watched path, so the watch itself is what shows whether anybody still watches.
 */
function isWatched(dir: string): boolean {
  const inode = `ino:${Deno.statSync(dir).ino!.toString(16)} `;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) !== "anon_inode:inotify") continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
      if (info.split("\n").some((line) => line.startsWith("inotify ") && line.includes(inode))) return true;
    } catch {
      // The descriptor used to list the directory is gone by now.
    }
  }
  return false;
}

const isLinux = Deno.build.os === "linux";
// Long enough that a test passing with it was woken by a notification, not by the safety poll.
const NO_POLL = { pollIntervalMs: 60_000 };

Deno.test("FileStore.save() then list() returns the record, replaced atomically with no temporary file left", async () => {
  await using fixture = await openStore();
  const { store, dir } = fixture;
  const first = deploymentRecord();
  const second = deploymentRecord({ status: "succeeded", exitCode: 0, command: null });
  await store.save(first);
  await store.save(second);
  // Many replacements at once: each is a whole record, and every temporary file is renamed away.
  const updates = Array.from(
    { length: 20 },
    (_, i) => ({ ...first, status: "running" as const, reason: `${i}` }),
  );
  await Promise.all(updates.map((update) => store.save(update)));

  const listed = (await store.list()).sort((a, b) => a.id.localeCompare(b.id));
  const reloaded = listed.find((each) => each.id === first.id)!;
  assert.equal(reloaded.status, "running");
  assert.ok(updates.some((update) => update.reason === reloaded.reason));
  assert.deepEqual(listed.find((each) => each.id === second.id), second);
  assert.equal(listed.length, 2);

  // Only a new (queued) deployment gets an empty log; the second was saved already ended.
  const names = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
  assert.deepEqual(
    names,
    [LOCK_FILE, TIMES_DIR, `${first.id}.json`, `${first.id}.log`, `${second.id}.json`].sort(),
  );
});

Deno.test("FileStore.save() creates an empty log but never truncates one a writer has started", async () => {
  await using fixture = await openStore();
  const record = deploymentRecord();
  await fixture.store.save(record);
  assert.equal(await Deno.readTextFile(fixture.logPath(record.id)), "");
  await append(fixture.logPath(record.id), "kept\n");
  await fixture.store.save({ ...record, status: "running" });
  assert.equal(await Deno.readTextFile(fixture.logPath(record.id)), "kept\n");
});

Deno.test("FileStore.list() ignores junk: bad JSON, non-UUID names, wrong shapes, bad dates, mismatched ids, directories", async () => {
  await using fixture = await openStore();
  const { store, dir } = fixture;
  const good = deploymentRecord();
  await store.save(good);
  const other = deploymentRecord();
  // Hand-edited records whose dates do not parse (they would show as "NaN" and sort nowhere).
  const undated = deploymentRecord({ createdAt: "yesterday" });
  const badlyFinished = deploymentRecord({ status: "succeeded", finishedAt: "2026-13-45T99:00:00Z" });
  const junk: [string, string][] = [
    [`${undated.id}.json`, JSON.stringify(undated)],
    [`${badlyFinished.id}.json`, JSON.stringify(badlyFinished)],
    [`${crypto.randomUUID()}.json`, "{ not json"],
    [`${crypto.randomUUID()}.json`, ""],
    [`${crypto.randomUUID()}.json`, JSON.stringify({ ...deploymentRecord(), status: "exploded" })],
    [`${crypto.randomUUID()}.json`, JSON.stringify(other)], // its id is not its file name
    [`${other.id.toUpperCase()}.json`, JSON.stringify({ ...other, id: other.id.toUpperCase() })],
    ["notes.json", JSON.stringify(deploymentRecord({ id: "notes" }))],
    [`.${good.id}.json.${crypto.randomUUID()}.tmp`, JSON.stringify(good)],
    [`${good.id}.json.bak`, JSON.stringify(good)],
  ];
  for (const [name, text] of junk) await Deno.writeTextFile(join(dir, name), text);
  await Deno.mkdir(join(dir, `${crypto.randomUUID()}.json`));

  assert.deepEqual(await store.list(), [good]);
});

/** A file outside the store's directory holding `text`, for links to point to; removed when disposed. */
async function fileElsewhere(text: string) {
  const elsewhere = await makeTempDir();
  const path = join(elsewhere.path, "target");
  await Deno.writeTextFile(path, text);
  return { path, [Symbol.asyncDispose]: () => elsewhere[Symbol.asyncDispose]() };
}

const MARKER = "MARKER-outside-the-data-directory";

Deno.test("FileStore.list() ignores a record that is a symlink, and one over 64 KiB, but takes one of 64 KiB", async () => {
  await using fixture = await openStore();
  const { store, dir } = fixture;
  const linked = deploymentRecord({ command: MARKER });
  await using target = await fileElsewhere(JSON.stringify(linked));
  await Deno.symlink(target.path, join(dir, `${linked.id}.json`));
  // Valid records but for their size, padded with spaces: one byte over the limit, and exactly at it.
  const padded = (record: Deployment, bytes: number) => {
    const text = JSON.stringify(record);
    return text.slice(0, -1) + " ".repeat(bytes - text.length) + "}";
  };
  const over = deploymentRecord();
  await Deno.writeTextFile(join(dir, `${over.id}.json`), padded(over, MAX_RECORD_BYTES + 1));
  const at = deploymentRecord();
  await Deno.writeTextFile(join(dir, `${at.id}.json`), padded(at, MAX_RECORD_BYTES));
  assert.equal(MAX_RECORD_BYTES, 64 * 1024);

  assert.deepEqual(await store.list(), [at]);
  assert.equal(await Deno.readTextFile(target.path), JSON.stringify(linked));
});

Deno.test("FileStore reads a log that is a symlink as empty: nothing of the file it points to", async () => {
  await using fixture = await openStore(NO_POLL);
  await using target = await fileElsewhere(`${MARKER} 1\n${MARKER} 2\n`);
  const id = crypto.randomUUID();
  await Deno.symlink(target.path, fixture.logPath(id));
  assert.deepEqual(await collect(fixture.store.readLines(id, 0)), []);
  assert.equal(await fixture.store.countLines(id), 0);
  assert.equal(await new Response(await fixture.store.readRaw(id)).text(), "");
  assert.equal(await fixture.store.lastWrittenAt(id), undefined);
  using followed = await follow(fixture.store, id);
  await append(target.path, `${MARKER} 3\n`);
  await followed.follower.catchUp();
  assert.deepEqual(followed.events, []);
});

Deno.test("FileStore.open() deletes the temporary files of saves a crash cut short, and nothing else", async () => {
  await using temp = await makeTempDir();
  const leftover = `.${crypto.randomUUID()}.json.${crypto.randomUUID()}.tmp`;
  const others = [".hidden", `${crypto.randomUUID()}.json.tmp`, `.${crypto.randomUUID()}.json.tmp`];
  for (const name of [leftover, ...others]) await Deno.writeTextFile(join(temp.path, name), "{");
  const store = await FileStore.open(temp.path);
  try {
    const names = [...Deno.readDirSync(temp.path)].map((entry) => entry.name).sort();
    assert.deepEqual(names, [LOCK_FILE, TIMES_DIR, ...others].sort());
  } finally {
    await store.close();
  }
});

Deno.test("FileStore refuses an id that is not a canonical UUID before touching any file", async () => {
  await using fixture = await openStore();
  for (const id of ["../escape", "notes", crypto.randomUUID().toUpperCase()]) {
    await assert.rejects(() => fixture.store.save(deploymentRecord({ id })), TypeError);
    await assert.rejects(() => fixture.store.openAppender(id), TypeError);
    await assert.rejects(() => collect(fixture.store.readLines(id, 0)), TypeError);
  }
  assert.deepEqual([...Deno.readDirSync(fixture.dir)].map((entry) => entry.name).sort(), [
    LOCK_FILE,
    TIMES_DIR,
  ]);
  assert.deepEqual([...Deno.readDirSync(join(fixture.dir, TIMES_DIR))], []);
});

Deno.test("FileStore.openAppender() appends whole lines from concurrent writes without interleaving", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const appender = await fixture.store.openAppender(id);
  try {
    await Promise.all([
      appender.write(["a1", "a2"]),
      appender.write(["b1"]),
      appender.write([]),
      appender.write(["c1", "c2", "c3"]),
    ]);
  } finally {
    appender.close();
  }
  assert.equal(await Deno.readTextFile(fixture.logPath(id)), "a1\na2\nb1\nc1\nc2\nc3\n");
});

Deno.test("FileStore.openAppender() writes on to the path after the log is replaced or deleted", async (t) => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  const appender = await fixture.store.openAppender(id);
  try {
    await appender.write(["before"]);
    await t.step("another file renamed over the log gets the lines that follow", async () => {
      await Deno.writeTextFile(`${path}.new`, "replaced\n");
      await Deno.rename(`${path}.new`, path);
      await appender.write(["after the rename"]);
      assert.equal(await Deno.readTextFile(path), "replaced\nafter the rename\n");
    });
    await t.step("a deleted log is created again", async () => {
      await Deno.remove(path);
      await appender.write(["after the delete"]);
      assert.equal(await Deno.readTextFile(path), "after the delete\n");
    });
    await t.step("the same log, not replaced, is appended to as before", async () => {
      await appender.write(["more"]);
      assert.equal(await Deno.readTextFile(path), "after the delete\nmore\n");
    });
    await t.step("a path that cannot be opened fails the write, and every write after it", async () => {
      await Deno.remove(path);
      await Deno.mkdir(path);
      await assert.rejects(() => appender.write(["lost"]), /it is a directory, not a regular file/);
      await Deno.remove(path);
      // Lines after a gap would read as if none were lost.
      await assert.rejects(() => appender.write(["after the gap"]), /it is a directory, not a regular file/);
    });
  } finally {
    appender.close();
    appender.close();
  }
});

Deno.test("FileStore.openAppender() writes nothing through a symlink, and creates nothing where one points", async (t) => {
  await using fixture = await openStore();
  await using target = await fileElsewhere(`${MARKER}\n`);
  await t.step("a log that is a symlink is refused, naming it", async () => {
    const id = crypto.randomUUID();
    await Deno.symlink(target.path, fixture.logPath(id));
    await assert.rejects(
      fixture.store.openAppender(id),
      new TypeError(`Cannot append to ${fixture.logPath(id)}: it is a symlink, not a regular file`),
    );
  });
  await t.step("a symlink to nothing is refused, and nothing is created where it points", async () => {
    const id = crypto.randomUUID();
    const nowhere = `${target.path}.missing`;
    await Deno.symlink(nowhere, fixture.logPath(id));
    await assert.rejects(fixture.store.openAppender(id), /it is a symlink, not a regular file/);
    await assert.rejects(Deno.lstat(nowhere), Deno.errors.NotFound);
  });
  await t.step(
    "a log replaced by a symlink while appended to fails the write, and every one after",
    async () => {
      const id = crypto.randomUUID();
      const path = fixture.logPath(id);
      const appender = await fixture.store.openAppender(id);
      try {
        await appender.write(["before"]);
        await Deno.symlink(target.path, `${path}.link`);
        await Deno.rename(`${path}.link`, path);
        await assert.rejects(appender.write(["through the link"]), /it is a symlink, not a regular file/);
        await assert.rejects(appender.write(["after"]), /it is a symlink, not a regular file/);
      } finally {
        appender.close();
      }
    },
  );
  assert.equal(await Deno.readTextFile(target.path), `${MARKER}\n`);
});

Deno.test({
  name: "FileStore.openAppender() leaves no line cut short when the disk fills up in the middle of a write",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using temp = await makeTempDir();
    const id = crypto.randomUUID();
    // A file size limit of 2048 bytes (4 blocks of 512) stands in for a full disk: the write that crosses it
    // is cut short, the next one fails (SIGXFSZ ignored, so it is an error, not the end of the process).
    const script = `
      const { FileStore } = await import(${JSON.stringify(new URL("./file_store.ts", import.meta.url).href)});
      const store = await FileStore.open(${JSON.stringify(temp.path)});
      const appender = await store.openAppender(${JSON.stringify(id)});
      let error = "none";
      for (let batch = 0; batch < 100 && error === "none"; batch++) {
        const lines = [0, 1, 2].map((i) => \`line \${batch * 3 + i} \`.padEnd(99, "x"));
        await appender.write(lines).catch((e) => error = e.message);
      }
      const after = await appender.write(["more"]).then(() => "written", (e) => e.message);
      appender.close();
      await store.close();
      console.log(JSON.stringify({ error, after }));
    `;
    const { code, stdout, stderr } = await new Deno.Command("sh", {
      args: ["-c", `trap '' XFSZ; ulimit -f 4; exec "$0" eval "$1"`, Deno.execPath(), script],
    }).output();
    const decoder = new TextDecoder();
    assert.equal(code, 0, decoder.decode(stderr));
    const report = JSON.parse(decoder.decode(stdout));
    assert.match(report.error, /File too large/);
    assert.match(report.after, /File too large/, "nothing is written after a failed write");
    const log = await Deno.readTextFile(join(temp.path, `${id}.log`));
    assert.ok(log.length > 0 && log.length < 2048, `${log.length} bytes`);
    assert.ok(log.endsWith("\n"), `the log ends with a whole line: ${JSON.stringify(log.slice(-40))}`);
    for (const line of log.slice(0, -1).split("\n")) assert.equal(line.length, 99, line);
  },
});

Deno.test("FileStore.readLines() reads complete lines after a cursor and never the partial last line", async (t) => {
  await using fixture = await openStore();
  const { store } = fixture;
  const id = crypto.randomUUID();
  await append(fixture.logPath(id), "one\r\ntwo\n\n  four\npartial");

  await t.step("from the start (afterLine 0)", async () => {
    assert.deepEqual(await collect(store.readLines(id, 0)), [{
      firstLine: 1,
      lines: ["one", "two", "", "  four"],
      end: 17, // the byte after "  four\n": where "partial" starts
    }]);
  });
  await t.step("from the middle", async () => {
    assert.deepEqual(await collect(store.readLines(id, 2)), [{
      firstLine: 3,
      lines: ["", "  four"],
      end: 17,
    }]);
  });
  await t.step("from a byte cursor, without reading what comes before it", async () => {
    // Line 2 ends at byte 9: reading starts there, numbering from line 3.
    assert.deepEqual(await collect(store.readLines(id, 2, { from: 9 })), [{
      firstLine: 3,
      lines: ["", "  four"],
      end: 17,
    }]);
  });
  await t.step("from the last line and past the end: nothing", async () => {
    assert.deepEqual(await collect(store.readLines(id, 4)), []);
    assert.deepEqual(await collect(store.readLines(id, 99)), []);
  });
  await t.step("a missing log reads as empty", async () => {
    assert.deepEqual(await collect(store.readLines(crypto.randomUUID(), 0)), []);
  });
  await t.step("the partial line is read once it is complete", async () => {
    await append(fixture.logPath(id), " now whole\n");
    assert.deepEqual(await collect(store.readLines(id, 4)), [{
      firstLine: 5,
      lines: ["partial now whole"],
      end: 35,
    }]);
  });
});

Deno.test("FileStore.readLines() numbers lines correctly across its read chunks", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  // About 3.3 MB: many reads, with lines cut between them.
  const count = 30_000;
  const lineOf = (n: number) => `line ${String(n).padStart(6, "0")} ${"x".repeat(96)}`;
  await append(fixture.logPath(id), Array.from({ length: count }, (_, i) => lineOf(i + 1) + "\n").join(""));

  for (const after of [0, 1, 9_999, 10_500, 29_999, 30_000]) {
    let expected = after + 1;
    for await (const batch of fixture.store.readLines(id, after)) {
      assert.equal(batch.firstLine, expected, `after ${after}`);
      batch.lines.forEach((line, i) => assert.equal(line, lineOf(batch.firstLine + i)));
      expected += batch.lines.length;
    }
    assert.equal(expected, count + 1, `after ${after}`);
  }
});

Deno.test("FileStore.readLines() after a line starts at a checkpoint noted by an earlier read, not at byte 0", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const lineOf = (n: number) => `line ${String(n).padStart(6, "0")} ${"x".repeat(96)}`;
  await append(fixture.logPath(id), Array.from({ length: 30_000 }, (_, i) => lineOf(i + 1) + "\n").join(""));
  assert.equal(await fixture.store.countLines(id), 30_000);
  // Line breaks written over the first line, in place: a read from byte 0 would now number every line 4 higher.
  using file = await Deno.open(fixture.logPath(id), { write: true });
  await file.write(encoder.encode("\n\n\n\n"));
  const batches = await collect(fixture.store.readLines(id, 29_990));
  assert.deepEqual(
    batches.flatMap((batch) => batch.lines),
    [29_991, 29_992, 29_993, 29_994, 29_995, 29_996, 29_997, 29_998, 29_999, 30_000].map(lineOf),
  );
  assert.equal(batches[0].firstLine, 29_991);
  assert.equal(await fixture.store.countLines(id), 30_000, "counted from the last checkpoint too");
});

Deno.test("FileStore.countLines() at once from many viewers (a restart's reconnections) reads the log about once", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const line = (n: number) => `line ${String(n).padStart(6, "0")} ${"x".repeat(96)}\n`;
  const text = Array.from({ length: 30_000 }, (_, i) => line(i + 1)).join("");
  await append(fixture.logPath(id), text);
  // Bytes this process has read through system calls, from the kernel's own count.
  const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(Deno.readTextFileSync("/proc/self/io"))![1]);
  const before = bytesRead();
  const counts = await Promise.all(Array.from({ length: 20 }, () => fixture.store.countLines(id)));
  const read = bytesRead() - before;
  assert.deepEqual(counts, Array(20).fill(30_000));
  assert.ok(
    read < 2 * text.length,
    `read ${read} bytes for a log of ${text.length}: once, then only its tail`,
  );
  // A count that starts while another runs still sees what was appended meanwhile.
  const first = fixture.store.countLines(id);
  await append(fixture.logPath(id), line(30_001));
  const second = fixture.store.countLines(id);
  assert.ok((await first) >= 30_000);
  assert.equal(await second, 30_001);
});

Deno.test("FileStore.follow() of a long log, opened again, reads only what came after the last follower", async (t) => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  const line = (n: number, filler = "x") => `line ${String(n).padStart(6, "0")} ${filler.repeat(96)}\n`;
  await append(path, Array.from({ length: 30_000 }, (_, i) => line(i + 1)).join(""));
  const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(Deno.readTextFileSync("/proc/self/io"))![1]);
  {
    using first = await follow(fixture.store, id);
    assert.equal(first.follower.nextLine, 30_001);
  }
  await t.step("the next follower counts on from where the last one left", async () => {
    await append(path, line(30_001));
    const before = bytesRead();
    using again = await follow(fixture.store, id);
    const read = bytesRead() - before;
    assert.equal(again.follower.nextLine, 30_002);
    assert.ok(read < 64 * 1024, `read ${read} bytes of a log of 3 MB`);
    await append(path, line(30_002));
    await waitFor("line 30002", () => again.events.length === 1);
    assert.match(again.events[0], /^30002:line 030002 /);
  });
  await t.step("a log rewritten in place since is counted from its first byte", async () => {
    // The same size and inode, half as many lines, other bytes before where the last follower stopped.
    const halves = Array.from(
      { length: 15_001 },
      (_, i) => line(2 * i + 1, "y").replace("\n", " ") + line(0, "y"),
    );
    Deno.writeTextFileSync(path, halves.join(""));
    using again = await follow(fixture.store, id);
    assert.equal(again.follower.nextLine, 15_002);
  });
});

Deno.test("FileStore.readLines() reads from byte 0 a log replaced, cut short or rewritten since its checkpoints", async (t) => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  const write = (text: (n: number) => string, count: number) =>
    Array.from({ length: count }, (_, i) => text(i + 1) + "\n").join("");
  const expectLines = async (text: (n: number) => string, count: number) => {
    assert.equal(await fixture.store.countLines(id), count);
    const batches = await collect(fixture.store.readLines(id, count - 3));
    assert.deepEqual(batches.flatMap((batch) => batch.lines), [count - 2, count - 1, count].map(text));
    assert.equal(batches[0].firstLine, count - 2);
  };
  const first = (n: number) => `first ${n} ${"a".repeat(100)}`;
  await append(path, write(first, 20_000));
  await expectLines(first, 20_000);

  await t.step("replaced by another file", async () => {
    const second = (n: number) => `second ${n} ${"b".repeat(60)}`;
    await Deno.writeTextFile(`${path}.new`, write(second, 30_000));
    await Deno.rename(`${path}.new`, path);
    await expectLines(second, 30_000);
  });

  await t.step("cut short", async () => {
    const third = (n: number) => `third ${n}`;
    await Deno.writeTextFile(path, write(third, 5_000));
    await expectLines(third, 5_000);
  });

  // Logs are append-only; a rewrite in place is caught unless it kept the very bytes before a checkpoint.
  await t.step("rewritten in place, as long as before", async () => {
    const fourth = (n: number) => `fourth ${n} ${"d".repeat(100)}`;
    await Deno.writeTextFile(path, write(fourth, 20_000));
    await expectLines(fourth, 20_000);
    const fifth = (n: number) => `fifth ${n} ${"e".repeat(100 + (n % 7))}`;
    const size = (await Deno.stat(path)).size;
    await Deno.writeTextFile(path, write(fifth, 40_000).slice(0, size - 1) + "\n", { create: false });
    const count = (await Deno.readTextFile(path)).split("\n").length - 1;
    assert.equal((await Deno.stat(path)).size, size);
    assert.equal(await fixture.store.countLines(id), count);
  });

  await t.step("emptied and rewritten in place, longer, with a line end where one was noted", async () => {
    const ino = (await Deno.stat(path)).ino;
    const sixth = (n: number) => `sixth ${String(n).padStart(5, "0")} ${"f".repeat(87)}`;
    await Deno.writeTextFile(path, write(sixth, 4_000));
    await expectLines(sixth, 4_000);
    // Lines of 50 bytes: every offset where a 100-byte line ended is a line end again.
    const seventh = (n: number) => `seventh ${String(n).padStart(5, "0")} ${"g".repeat(35)}`;
    await Deno.writeTextFile(path, write(seventh, 10_000));
    assert.equal((await Deno.stat(path)).ino, ino, "the same file");
    await expectLines(seventh, 10_000);
  });
});

Deno.test("FileStore.readLines() stops when its signal aborts", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  await append(fixture.logPath(id), `${"y".repeat(1000)}\n`.repeat(3000)); // about 3 MB, several reads
  const controller = new AbortController();
  const batches: LineBatch[] = [];
  for await (const batch of fixture.store.readLines(id, 0, { signal: controller.signal })) {
    batches.push(batch);
    controller.abort();
  }
  assert.equal(batches.length, 1);
});

Deno.test("FileStore.countLines() counts complete lines only", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  assert.equal(await fixture.store.countLines(id), 0, "missing log");
  await append(fixture.logPath(id), "");
  assert.equal(await fixture.store.countLines(id), 0, "empty log");
  await append(fixture.logPath(id), "a\nb\r\n\nunfinished");
  assert.equal(await fixture.store.countLines(id), 3);
  await append(fixture.logPath(id), "\n");
  assert.equal(await fixture.store.countLines(id), 4);
});

Deno.test("FileStore.follow() reports lines appended by other writers, numbered after the existing ones", async (t) => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  await append(path, "old 1\nold 2\n");
  using followed = await follow(fixture.store, id);
  assert.equal(followed.follower.nextLine, 3);

  await t.step("an append through Deno.open", async () => {
    await append(path, "three\nfour\n");
    await waitFor("lines 3 and 4", () => followed.events.length === 2);
    assert.deepEqual(followed.events, ["3:three", "4:four"]);
    assert.equal(followed.follower.nextLine, 5);
  });

  await t.step("an append by a sh subprocess", async () => {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", `printf 'five\\nsix\\n' >> "$1"`, "sh", path],
    }).output();
    assert.ok(success);
    await waitFor("lines 5 and 6", () => followed.events.length === 4);
    assert.deepEqual(followed.events.slice(2), ["5:five", "6:six"]);
  });

  await t.step("a line written in several pieces arrives once, complete", async () => {
    for (const piece of ["sev", "en and ", "a half"]) {
      await append(path, piece);
      await delay(30);
    }
    await followed.follower.catchUp();
    assert.equal(followed.events.length, 4, "nothing before the line ends");
    await append(path, "\neight\n");
    await waitFor("lines 7 and 8", () => followed.events.length === 6);
    assert.deepEqual(followed.events.slice(4), ["7:seven and a half", "8:eight"]);
  });

  await t.step("a multi-byte character split across two writes decodes whole", async () => {
    const bytes = encoder.encode("café 😀\n");
    const emoji = bytes.indexOf(0xf0);
    await append(path, bytes.subarray(0, 4)); // "caf" and the first byte of "é"
    await delay(30);
    await append(path, bytes.subarray(4, emoji + 1));
    await delay(30);
    await append(path, bytes.subarray(emoji + 1));
    await waitFor("line 9", () => followed.events.length === 7);
    assert.equal(followed.events[6], "9:café 😀");
  });

  await t.step("CRLF endings are normalised, even with CR and LF in separate writes", async () => {
    await append(path, "crlf\r\nsplit\r");
    await delay(30);
    await append(path, "\nlone\rcr\n");
    await waitFor("lines 10 to 12", () => followed.events.length === 10);
    assert.deepEqual(followed.events.slice(7), ["10:crlf", "11:split", "12:lone\rcr"]);
  });
  assert.ok(!followed.events.includes("reset"));
});

Deno.test("FileStore.follow() hands a large append out in pieces, so viewers can start before it is all read", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  await append(fixture.logPath(id), "");
  using followed = await follow(fixture.store, id);
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i + 1} ${"x".repeat(90)}`);
  await append(fixture.logPath(id), lines.join("\n") + "\n"); // about 2 MB in one write
  await waitFor("every line", () => followed.events.length === lines.length, { timeoutMs: 10_000 });
  assert.deepEqual(followed.events, lines.map((line, i) => `${i + 1}:${line}`));
  const batchBytes = followed.batches.map((batch) => batch.lines.reduce((n, line) => n + line.length + 1, 0));
  assert.ok(followed.batches.length >= 8, `${followed.batches.length} batches`);
  // A pass reads 64 KiB; its batch also holds the end of the line the pass before left unfinished.
  assert.ok(Math.max(...batchBytes) <= 64 * 1024 + 100, `batches of ${batchBytes.join(", ")} bytes`);
});

Deno.test("FileStore.follow() completes a partial line that was in the file before following began", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  await append(fixture.logPath(id), "one\npar");
  using followed = await follow(fixture.store, id);
  await append(fixture.logPath(id), "tial\n");
  await waitFor("line 2", () => followed.events.length === 1);
  assert.deepEqual(followed.events, ["2:partial"]);
});

Deno.test("FileStore.follow() of a log that does not exist yet reports it from line 1 once created", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  using followed = await follow(fixture.store, id);
  assert.equal(followed.follower.nextLine, 1);
  await append(fixture.logPath(id), "first\n");
  await waitFor("line 1", () => followed.events.length === 1);
  assert.deepEqual(followed.events, ["1:first"]);
});

Deno.test("FileStore.follow() reports a reset when the log is truncated, then numbers from 1 again", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  await append(path, "a\nb\nc\n");
  using followed = await follow(fixture.store, id);
  await Deno.truncate(path);
  await waitFor("a reset", () => followed.events.includes("reset"));
  await append(path, "new\n");
  await waitFor("the new line 1", () => followed.events.length === 2);
  assert.deepEqual(followed.events, ["reset", "1:new"]);
});

Deno.test("FileStore.follow() reports no reset when only an unfinished last line is cut off", async (t) => {
  // What a writer does when a full disk cut its write short: the fragment goes, whole lines stay.
  const cases: [string, (path: string, follower: LogFollower) => Promise<void>][] = [
    ["the tail sees the cut, then the next line", async (path, follower) => {
      await Deno.truncate(path, "one\n".length);
      await follower.catchUp();
      await append(path, "two, a longer line\n");
    }],
    ["the tail hears of the cut only after a longer next line", (path) => {
      Deno.truncateSync(path, "one\n".length);
      Deno.writeTextFileSync(path, "two, a longer line\n", { append: true });
      return Promise.resolve();
    }],
  ];
  for (const [name, cutAndWrite] of cases) {
    await t.step(name, async () => {
      await using fixture = await openStore(NO_POLL);
      const id = crypto.randomUUID();
      const path = fixture.logPath(id);
      await append(path, "");
      using followed = await follow(fixture.store, id);
      await append(path, "one\nhalf a li");
      await waitFor("line 1", () => followed.events.length === 1);
      await followed.follower.catchUp();
      await cutAndWrite(path, followed.follower);
      await waitFor("line 2", () => followed.events.length === 2);
      assert.deepEqual(followed.events, ["1:one", "2:two, a longer line"]);
    });
  }
});

Deno.test("FileStore.follow() reports a reset when a writer truncates the log through the file it has open", async () => {
  // ftruncate on an open file is a bare "modify" notification, like an append: only the size tells them apart.
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  await append(path, "a\nb\nc\n");
  using writer = await Deno.open(path, { write: true });
  using followed = await follow(fixture.store, id);
  await writer.truncate(0);
  await waitFor("a reset", () => followed.events.includes("reset"));
  await writer.write(encoder.encode("new\n"));
  await waitFor("the new line 1", () => followed.events.length === 2);
  assert.deepEqual(followed.events, ["reset", "1:new"]);
});

Deno.test("FileStore.follow() reports a reset when the log is rewritten in place, longer than it was", async (t) => {
  // `printf … > log`: the same inode, truncated and written again before the tail hears of it; only the bytes
  // before its offset, changed, can tell it that the lines it handed out are gone.
  const rewritten = Array.from({ length: 6 }, (_, i) => `NEW ${i + 1} ${"y".repeat(20)}`);
  const cases: [string, string][] = [
    ["after whole lines", ""],
    // Every byte read again is then in the unfinished line: it must not pass for a writer taking that back.
    ["with a long unfinished line pending", `old 3, unfinished ${"x".repeat(100)}`],
  ];
  for (const [name, unfinished] of cases) {
    await t.step(name, async () => {
      await using fixture = await openStore(NO_POLL);
      const id = crypto.randomUUID();
      const path = fixture.logPath(id);
      await append(path, "old 1\nold 2\n");
      using followed = await follow(fixture.store, id);
      await append(path, unfinished);
      await followed.follower.catchUp();
      Deno.writeTextFileSync(path, rewritten.map((line) => `${line}\n`).join(""));
      await waitFor("the rewritten lines", () => followed.events.length === 7);
      assert.deepEqual(followed.events, ["reset", ...rewritten.map((line, i) => `${i + 1}:${line}`)]);
      followed.follower.close();
      // What the follower noted of the log for later reads holds: a count says 6.
      assert.equal(await fixture.store.countLines(id), 6);
    });
  }
});

Deno.test("FileStore.follow() reports a reset when the log is deleted or becomes a symlink, and follows the new one", async (t) => {
  await using target = await fileElsewhere(`${MARKER} 1\n${MARKER} 2\n${MARKER} 3\n`);
  const cases: [string, (path: string) => Promise<void>][] = [
    ["deleted", (path) => Deno.remove(path)],
    ["replaced by a symlink, whose target is never read", async (path) => {
      await Deno.symlink(target.path, `${path}.link`);
      await Deno.rename(`${path}.link`, path);
    }],
  ];
  for (const [name, replace] of cases) {
    await t.step(name, async () => {
      await using fixture = await openStore(NO_POLL);
      const id = crypto.randomUUID();
      const path = fixture.logPath(id);
      await append(path, "a\n");
      using followed = await follow(fixture.store, id);
      await append(path, "b\n");
      await waitFor("line 2", () => followed.events.length === 1);
      await replace(path);
      await waitFor("a reset", () => followed.events.includes("reset"));
      await append(target.path, `${MARKER} 4\n`);
      await followed.follower.catchUp();
      await Deno.remove(path).catch(() => {});
      await append(path, "again\n");
      await waitFor("the new line 1", () => followed.events.length === 3);
      assert.deepEqual(followed.events, ["2:b", "reset", "1:again"]);
    });
  }
});

Deno.test("FileStore.follow() reports a reset when another file is renamed over the log, then reads that file", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  await append(path, "old a\nold b\nold c\n");
  using followed = await follow(fixture.store, id);
  // Longer than the old log, so only the changed inode can tell the tail that this is another file.
  const replacement = join(fixture.dir, "replacement.tmp");
  await append(replacement, "new 1\nnew 2\nnew 3\nnew 4\n");
  await Deno.rename(replacement, path);
  await waitFor("the replacement's lines", () => followed.events.length === 5);
  assert.deepEqual(followed.events, ["reset", "1:new 1", "2:new 2", "3:new 3", "4:new 4"]);
  assert.equal(followed.follower.nextLine, 5);
});

Deno.test("DirWatcher's safety poll skips a file the watcher reported since the last poll, and wakes it after", async () => {
  await using temp = await makeTempDir();
  const watcher = new DirWatcher(temp.path, { pollIntervalMs: 300 });
  const wakes: { change: Change; at: number }[] = [];
  await append(join(temp.path, "a.log"), "");
  const stop = watcher.watch("a.log", (change) => wakes.push({ change, at: performance.now() }));
  try {
    // Just after a poll: the file was quiet, so the poll woke it.
    await waitFor("a poll", () => wakes.some((wake) => wake.change === "any"));
    const polled = wakes.findLast((wake) => wake.change === "any")!.at;
    await append(join(temp.path, "a.log"), "x\n");
    await waitFor("the write's wake-up", () => wakes.some((wake) => wake.change === "data"));
    // The next poll (300 ms after the last) has nothing to do for this file: it was just heard of.
    await delay(Math.max(0, polled + 450 - performance.now()));
    assert.equal(wakes.filter((wake) => wake.change === "any" && wake.at > polled).length, 0);
    // The one after it finds the file quiet since, and wakes it again.
    await waitFor("the poll after", () => wakes.some((wake) => wake.change === "any" && wake.at > polled));
  } finally {
    stop();
    await watcher.close();
  }
});

/**
 * A directory watch whose events come from the test, not from the kernel: nothing is reported but what
 * `send` says, when it says it.
 */
function injectedEvents() {
  let controller!: ReadableStreamDefaultController<Deno.FsEvent>;
  const events = new ReadableStream<Deno.FsEvent>({ start: (c) => void (controller = c) });
  return {
    watchFs: () => Object.assign(events, { close: () => controller.close() }),
    send: (event: Deno.FsEvent) => controller.enqueue(event),
  };
}

Deno.test("FileStore.follow() reads every followed log at once after a rescan, not at the next safety poll", async () => {
  const watch = injectedEvents();
  await using fixture = await openStore({ ...NO_POLL, watchFs: watch.watchFs });
  const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
  using first = await follow(fixture.store, a);
  using second = await follow(fixture.store, b);
  await append(fixture.logPath(a), "one\n");
  await append(fixture.logPath(b), "two\n");
  await delay(150);
  assert.deepEqual([first.events, second.events], [[], []], "no event, and the poll is a minute away");
  // What the kernel sends when its queue overflowed: events were dropped, about any file.
  watch.send({ kind: "other", paths: [], flag: "rescan" });
  await waitFor("both lines", () => first.events.length === 1 && second.events.length === 1);
  assert.deepEqual([first.events, second.events], [["1:one"], ["1:two"]]);
});

Deno.test({
  name: "FileStore.follow() delivers an append the directory watcher never saw, through the safety poll",
  ignore: !isLinux,
  async fn() {
    await using fixture = await openStore({ pollIntervalMs: 100 });
    await using log = await linkedLog(fixture.logPath);
    using followed = await follow(fixture.store, log.id);
    await append(log.link, "unannounced\n");
    await waitFor("the line, within a few polls", () => followed.events.length === 1, { timeoutMs: 2000 });
    assert.deepEqual(followed.events, ["1:unannounced"]);
  },
});

Deno.test({
  name:
    "FileStore.follow(): an append with no notification waits for the poll, and catchUp() reads it at once",
  ignore: !isLinux,
  async fn() {
    await using fixture = await openStore(NO_POLL);
    await using log = await linkedLog(fixture.logPath);
    using followed = await follow(fixture.store, log.id);
    await append(log.link, "one\ntwo\n");
    await delay(150);
    assert.deepEqual(followed.events, [], "no notification, and the poll is a minute away");
    await followed.follower.catchUp();
    assert.deepEqual(followed.events, ["1:one", "2:two"]);
    assert.equal(followed.follower.nextLine, 3);
    await followed.follower.catchUp();
    assert.equal(followed.events.length, 2, "a second catchUp() reports nothing twice");
  },
});

Deno.test("FileStore.follow(): concurrent catchUp() calls report each line exactly once", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  using followed = await follow(fixture.store, id);
  for (let i = 1; i <= 20; i++) {
    await append(fixture.logPath(id), `${i}\n`);
    void followed.follower.catchUp();
  }
  await Promise.all([followed.follower.catchUp(), followed.follower.catchUp()]);
  assert.deepEqual(followed.events, Array.from({ length: 20 }, (_, i) => `${i + 1}:${i + 1}`));
});

Deno.test({
  name: "FileStore watches its directory only while a log is followed, and a closed follower hears nothing",
  ignore: !isLinux,
  async fn(t) {
    await using fixture = await openStore(NO_POLL);
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    assert.equal(isWatched(fixture.dir), false, "nobody follows yet");
    const first = await follow(fixture.store, a);
    const second = await follow(fixture.store, a);
    const third = await follow(fixture.store, b);
    assert.equal(isWatched(fixture.dir), true);

    await t.step("a closed follower hears nothing more; the others still do", async () => {
      first.follower.close();
      await append(fixture.logPath(a), "for a\n");
      await append(fixture.logPath(b), "for b\n");
      await waitFor(
        "the other followers' lines",
        () => second.events.length === 1 && third.events.length === 1,
      );
      await delay(50);
      assert.deepEqual(first.events, []);
      assert.deepEqual(second.events, ["1:for a"]);
      assert.deepEqual(third.events, ["1:for b"]);
      assert.equal(isWatched(fixture.dir), true);
    });

    await t.step("closing the last follower removes the watch", async () => {
      second.follower.close();
      third.follower.close();
      await waitFor("the watch to be removed", () => !isWatched(fixture.dir));
      await append(fixture.logPath(a), "unheard\n");
      await delay(50);
      assert.equal(second.events.length, 1);
    });

    await t.step("following again watches again", async () => {
      using again = await follow(fixture.store, b);
      assert.equal(isWatched(fixture.dir), true);
      await append(fixture.logPath(b), "heard\n");
      await waitFor("line 2 of b", () => again.events.length === 1);
      assert.deepEqual(again.events, ["2:heard"]);
    });
  },
});

Deno.test("FileStore.close() stops watching even while followers are open", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const followed = await follow(fixture.store, id);
  await fixture.store.close();
  if (isLinux) assert.equal(isWatched(fixture.dir), false);
  followed.follower.close();
});

Deno.test("FileStore.readRaw() returns the bytes as written, and an empty stream for a missing log", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const bytes = new Uint8Array([0x61, 0x0d, 0x0a, 0xff, 0xc3, 0x62]);
  await append(fixture.logPath(id), bytes);
  assert.deepEqual(new Uint8Array(await new Response(await fixture.store.readRaw(id)).arrayBuffer()), bytes);
  assert.equal(await new Response(await fixture.store.readRaw(crypto.randomUUID())).text(), "");
});

Deno.test("FileStore: write() resolves with the number of its first line, also after another process appended", async () => {
  await using temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  try {
    const id = crypto.randomUUID();
    const first = await store.openAppender(id);
    const second = await store.openAppender(id);
    assert.equal(await first.write(["a", "b"]), 1);
    assert.equal(await second.write(["c"]), 3);
    await Deno.writeTextFile(join(temp.path, `${id}.log`), "by hand 1\nby hand 2\n", { append: true });
    assert.equal(await first.write(["d"]), 6);
    assert.equal(await first.write([]), 7);
    assert.equal(await store.byteLength(id), "a\nb\nc\nby hand 1\nby hand 2\nd\n".length);
    assert.equal(await store.byteLength(crypto.randomUUID()), 0);
    first.close();
    second.close();
  } finally {
    await store.close();
  }
});

/** Each line after `afterLine` with its time and mark, as `"<number>:<text>@<time><!stderr>"`. */
async function readTimed(store: FileStore, id: string, afterLine = 0): Promise<string[]> {
  const seen: string[] = [];
  for await (const batch of store.readLines(id, afterLine, { times: true })) {
    batch.lines.forEach((line, i) => {
      const number = batch.firstLine + i;
      seen.push(`${number}:${line}@${batch.times![i]}${batch.stderr!.includes(number) ? "!" : ""}`);
    });
  }
  return seen;
}

Deno.test("FileStore keeps the times in .times/<id>.times, a record per line, and the log byte for byte as before", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const appender = await fixture.store.openAppender(id);
  await appender.write(["plain ✓", "\x1b[31mred\x1b[0m"], { time: 1_700_000_000_001 });
  await appender.write(["err"], { time: 1_700_000_000_002, stderr: true });
  appender.close();
  assert.equal(await Deno.readTextFile(fixture.logPath(id)), "plain ✓\n\x1b[31mred\x1b[0m\nerr\n");
  const sidecar = await Deno.readFile(join(fixture.dir, TIMES_DIR, `${id}.times`));
  assert.equal(sidecar.length, HEADER_BYTES + 3 * RECORD_BYTES);
  assert.equal(new TextDecoder().decode(sidecar.subarray(0, 8)), "SHIPLOGT");
  const view = new DataView(sidecar.buffer);
  assert.equal(view.getFloat64(16, true), (await Deno.stat(fixture.logPath(id))).ino, "the log's inode");
  assert.equal(view.getFloat64(HEADER_BYTES + 2 * RECORD_BYTES, true), 1_700_000_000_002, "line 3's time");
  assert.equal(sidecar[HEADER_BYTES + 2 * RECORD_BYTES + 12], 1, "line 3's stderr flag");
  assert.deepEqual(await readTimed(fixture.store, id), [
    "1:plain ✓@1700000000001",
    "2:\x1b[31mred\x1b[0m@1700000000001",
    "3:err@1700000000002!",
  ]);
});

Deno.test("FileStore: lines another process appends get the time a follower read them, as stdout, and keep it", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const appender = await fixture.store.openAppender(id);
  await appender.write(["runner 1"], { time: 1_700_000_000_001, stderr: true });
  using followed = await follow(fixture.store, id);
  const before = Date.now();
  const { success } = await new Deno.Command("sh", {
    args: ["-c", `printf 'outside 2\\noutside 3\\n' >> "$1"`, "sh", fixture.logPath(id)],
  }).output();
  assert.ok(success);
  await waitFor("the outside lines", () => followed.events.length === 2);
  const after = Date.now();
  const [batch] = followed.batches;
  assert.deepEqual(batch.stderr, []);
  for (const time of batch.times!) assert.ok(time >= before && time <= after, `seen at ${time}`);
  assert.deepEqual(await readTimed(fixture.store, id), [
    "1:runner 1@1700000000001!",
    `2:outside 2@${batch.times![0]}`,
    `3:outside 3@${batch.times![1]}`,
  ]);
  appender.close();
});

Deno.test("FileStore: a log whose sidecar is lost, or from before times were kept, reads times of 0", async (t) => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  await t.step("no sidecar at all: a log from before", async () => {
    await append(fixture.logPath(id), "old 1\nold 2\n");
    assert.deepEqual(await readTimed(fixture.store, id), ["1:old 1@0", "2:old 2@0"]);
  });
  await t.step("its next lines have their times, the old ones still none", async () => {
    const appender = await fixture.store.openAppender(id);
    await appender.write(["new 3"], { time: 1_700_000_000_003, stderr: true });
    appender.close();
    assert.deepEqual(await readTimed(fixture.store, id), [
      "1:old 1@0",
      "2:old 2@0",
      "3:new 3@1700000000003!",
    ]);
  });
  await t.step("the sidecar deleted: all 0 again, the text the same", async () => {
    await Deno.remove(join(fixture.dir, TIMES_DIR, `${id}.times`));
    assert.deepEqual(await readTimed(fixture.store, id), ["1:old 1@0", "2:old 2@0", "3:new 3@0"]);
  });
});

Deno.test("FileStore: a log replaced, or rewritten in place, reads none of the old lines' times", async (t) => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  const write = async (lines: string[]) => {
    const appender = await fixture.store.openAppender(id);
    await appender.write(lines, { time: 1_700_000_000_001, stderr: true });
    appender.close();
  };
  await t.step("another file renamed over the log (another inode), with the same text", async () => {
    await write(["a", "b"]);
    await Deno.writeTextFile(`${path}.new`, "a\nb\n");
    await Deno.rename(`${path}.new`, path);
    assert.deepEqual(await readTimed(fixture.store, id), ["1:a@0", "2:b@0"]);
  });
  await t.step("truncated in place (the same inode) and written again by another process", async () => {
    await write(["c", "d"]);
    assert.deepEqual(await readTimed(fixture.store, id), [
      "1:a@0",
      "2:b@0",
      "3:c@1700000000001!",
      "4:d@1700000000001!",
    ]);
    await Deno.truncate(path, 0);
    await append(path, "x\ny\nz\nw\n");
    assert.deepEqual(await readTimed(fixture.store, id), ["1:x@0", "2:y@0", "3:z@0", "4:w@0"]);
  });
});

Deno.test("FileStore: records written before a crash kept their lines out of the log are cut off by the next write", async () => {
  await using fixture = await openStore();
  const id = crypto.randomUUID();
  const appender = await fixture.store.openAppender(id);
  await appender.write(["line 1"], { time: 1_700_000_000_001 });
  // What a crash between the sidecar's write and the log's leaves: records of lines 2 and 3, no lines.
  const inode = (await Deno.stat(fixture.logPath(id))).ino;
  const times = LineTimes.open(join(fixture.dir, TIMES_DIR, `${id}.times`), inode, { write: true })!;
  times.write(2, ["ghost 2", "ghost 3"], 1_600_000_000_000, true);
  times.close();
  await appender.write(["line 2"], { time: 1_700_000_000_002 });
  appender.close();
  assert.deepEqual(await readTimed(fixture.store, id), ["1:line 1@1700000000001", "2:line 2@1700000000002"]);
  assert.equal(
    (await Deno.stat(join(fixture.dir, TIMES_DIR, `${id}.times`))).size,
    HEADER_BYTES + 2 * RECORD_BYTES,
  );
});

Deno.test("FileStore: remove() deletes the sidecar, and open() deletes one whose log is gone", async () => {
  await using temp = await makeTempDir();
  const [kept, removed, orphan] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  {
    const store = await FileStore.open(temp.path);
    for (const id of [kept, removed, orphan]) {
      const appender = await store.openAppender(id);
      await appender.write(["a line"]);
      appender.close();
    }
    await store.remove(removed);
    await store.close();
  }
  await Deno.remove(join(temp.path, `${orphan}.log`));
  const names = () => Array.from(Deno.readDirSync(join(temp.path, TIMES_DIR)), (entry) => entry.name);
  assert.deepEqual(names().sort(), [`${kept}.times`, `${orphan}.times`].sort());
  const store = await FileStore.open(temp.path);
  await store.close();
  assert.deepEqual(names(), [`${kept}.times`]);
});

Deno.test("FileStore: a followed log replaced under the runner: the new file's lines keep the runner's times and marks", async () => {
  await using fixture = await openStore(NO_POLL);
  const id = crypto.randomUUID();
  const path = fixture.logPath(id);
  const appender = await fixture.store.openAppender(id);
  await appender.write(["old 1"], { time: 1_700_000_000_001 });
  using followed = await follow(fixture.store, id);
  await appender.write(["old 2"], { time: 1_700_000_000_002 });
  await waitFor("line 2", () => followed.events.length === 1);
  // A rotation: another file renamed over the log. The runner writes on to the path, into the new file.
  await Deno.writeTextFile(`${path}.new`, "");
  await Deno.rename(`${path}.new`, path);
  await appender.write(["new 1", "new 2"], { time: 1_700_000_000_003, stderr: true });
  await waitFor("the new file's lines", () => followed.events.at(-1) === "2:new 2");
  const last = followed.batches.at(-1)!;
  assert.deepEqual(last.times!.slice(-2), [1_700_000_000_003, 1_700_000_000_003]);
  assert.deepEqual(last.stderr, [1, 2].filter((line) => line >= last.firstLine));
  assert.deepEqual(await readTimed(fixture.store, id), ["1:new 1@1700000000003!", "2:new 2@1700000000003!"]);
  appender.close();
});

Deno.test("FileStore keeps no times, and every log as ever, while .times is not a real directory", async (t) => {
  for (
    const [what, make] of [
      ["a symlink to one", (path: string, elsewhere: string) => Deno.symlink(elsewhere, path)],
      ["a file", (path: string) => Deno.writeTextFile(path, "")],
    ] as const
  ) {
    await t.step(what, async () => {
      await using temp = await makeTempDir();
      await using elsewhere = await makeTempDir();
      await make(join(temp.path, TIMES_DIR), elsewhere.path);
      const store = await FileStore.open(temp.path);
      try {
        const id = crypto.randomUUID();
        const appender = await store.openAppender(id);
        await appender.write(["a line"], { time: 1_700_000_000_001, stderr: true });
        appender.close();
        assert.deepEqual(await readTimed(store, id), ["1:a line@0"]);
        assert.equal(await Deno.readTextFile(join(temp.path, `${id}.log`)), "a line\n");
        assert.deepEqual(Array.from(Deno.readDirSync(elsewhere.path)), [], "nothing written where it points");
      } finally {
        await store.close();
      }
    });
  }
});
