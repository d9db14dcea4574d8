/**
 * Tests of the sidecar of line times on real files: where each record is, what reads as unknown (a hole, a
 * record of another line, a sidecar of another log file), and how a write makes a stale one this log's again.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { HEADER_BYTES, lineHash, LineTimes, RECORD_BYTES } from "./line_times.ts";
import { makeTempDir } from "../testing/test_helpers.ts";

const INODE = 4242;

Deno.test("LineTimes: records written at any line are read back there, with their stderr marks", async () => {
  await using temp = await makeTempDir();
  const path = join(temp.path, "x.times");
  const times = LineTimes.open(path, INODE, { write: true })!;
  times.write(1, ["a", "b"], 1_000, false);
  times.write(3, ["c"], 2_000, true);
  assert.deepEqual(times.read(1, ["a", "b", "c"]), {
    times: [1_000, 1_000, 2_000],
    stderr: [3],
    missing: [],
  });
  assert.deepEqual(times.read(2, ["b", "c"]), { times: [1_000, 2_000], stderr: [3], missing: [] });
  times.close();
  assert.equal((await Deno.stat(path)).size, HEADER_BYTES + 3 * RECORD_BYTES);
  const reader = LineTimes.open(path, INODE)!;
  assert.deepEqual(reader.read(3, ["c"]), { times: [2_000], stderr: [3], missing: [] });
  reader.close();
});

Deno.test("LineTimes: a hole, a line past the end, and a record of another text read as unknown", async () => {
  await using temp = await makeTempDir();
  const times = LineTimes.open(join(temp.path, "x.times"), INODE, { write: true })!;
  times.write(3, ["c"], 3_000, true);
  assert.deepEqual(times.read(1, ["a", "b", "c", "d"]), {
    times: [0, 0, 3_000, 0],
    stderr: [3],
    missing: [0, 1, 3],
  });
  assert.deepEqual(times.read(3, ["not c"]), { times: [0], stderr: [], missing: [0] });
  times.close();
});

Deno.test("LineTimes: a sidecar of another log file reads as none, and the first write starts it over", async () => {
  await using temp = await makeTempDir();
  const path = join(temp.path, "x.times");
  const old = LineTimes.open(path, INODE, { write: true })!;
  old.write(1, ["a", "b", "c"], 1_000, true);
  old.close();
  const other = LineTimes.open(path, INODE + 1, { write: true })!;
  assert.deepEqual(other.read(1, ["a"]), { times: [0], stderr: [], missing: [0] });
  other.write(2, ["b"], 2_000, false);
  assert.deepEqual(other.read(1, ["a", "b", "c"]), { times: [0, 2_000, 0], stderr: [], missing: [0, 2] });
  other.close();
  assert.equal((await Deno.stat(path)).size, HEADER_BYTES + 2 * RECORD_BYTES, "the old records are gone");
  // Nor does a file that is not a sidecar at all count.
  await Deno.writeTextFile(path, "x".repeat(200));
  const junk = LineTimes.open(path, INODE + 1)!;
  assert.deepEqual(junk.read(1, ["a"]).times, [0]);
  junk.close();
});

Deno.test("LineTimes: `last` cuts off the records after a write, `only` writes some lines and leaves the rest", async () => {
  await using temp = await makeTempDir();
  const path = join(temp.path, "x.times");
  const times = LineTimes.open(path, INODE, { write: true })!;
  times.write(1, ["a", "b", "c", "d"], 1_000, false);
  times.write(2, ["B"], 2_000, true, { last: true });
  assert.equal((await Deno.stat(path)).size, HEADER_BYTES + 2 * RECORD_BYTES);
  times.write(1, ["a", "B", "x"], 3_000, false, { only: [2] });
  assert.deepEqual(times.read(1, ["a", "B", "x"]), {
    times: [1_000, 2_000, 3_000],
    stderr: [2],
    missing: [],
  });
  // Runs with gaps between them: each run written, the gaps left as they were.
  times.write(1, ["p", "B", "q", "r", "s"], 4_000, false, { only: [0, 2, 3] });
  assert.deepEqual(times.read(1, ["p", "B", "q", "r", "s"]), {
    times: [4_000, 2_000, 4_000, 4_000, 0],
    stderr: [2],
    missing: [4],
  });
  times.close();
});

Deno.test("LineTimes.open() of nothing to read, or of a symlink, is undefined: nothing followed or created", async () => {
  await using temp = await makeTempDir();
  assert.equal(LineTimes.open(join(temp.path, "none.times"), INODE), undefined);
  await Deno.writeTextFile(join(temp.path, "target"), "");
  await Deno.symlink(join(temp.path, "target"), join(temp.path, "link.times"));
  assert.equal(LineTimes.open(join(temp.path, "link.times"), INODE, { write: true }), undefined);
  assert.equal(await Deno.readTextFile(join(temp.path, "target")), "");
});

Deno.test("lineHash() hashes a line as a reader of the file gets it back: a CRLF's CR and a lone surrogate", () => {
  assert.equal(lineHash("text\r"), lineHash("text"), "the CR of a CRLF ending is not the line's");
  assert.notEqual(lineHash("te\rxt"), lineHash("text"));
  assert.equal(lineHash("a\ud800b"), lineHash("a\ufffdb"), "written as U+FFFD, read back as U+FFFD");
  assert.notEqual(lineHash("a"), lineHash("b"));
  assert.equal(lineHash(""), 0x811c9dc5);
});
