import assert from "node:assert/strict";
import { type Checkpoint, CHECKPOINT_BYTES, LineIndex } from "./line_index.ts";

const LF = new Uint8Array([0x0a]);
/** A checkpoint's place, without the bytes kept with it. */
const at = ({ line, offset }: Checkpoint) => ({ line, offset });

Deno.test("LineIndex.before() gives the last checkpoint at or before a line, or the start", () => {
  const index = new LineIndex({ spacingBytes: 100 });
  assert.deepEqual(at(index.before("a", 7, 1000, 5)), { line: 0, offset: 0 });
  for (const [line, offset] of [[10, 100], [25, 230], [40, 400]]) index.note("a", 7, line, offset, LF);
  assert.deepEqual(at(index.before("a", 7, 1000, 9)), { line: 0, offset: 0 });
  assert.deepEqual(at(index.before("a", 7, 1000, 10)), { line: 10, offset: 100 });
  assert.deepEqual(at(index.before("a", 7, 1000, 39)), { line: 25, offset: 230 });
  assert.deepEqual(at(index.before("a", 7, 1000)), { line: 40, offset: 400 }, "no line: the last one");
  assert.deepEqual(at(index.before("b", 7, 1000)), { line: 0, offset: 0 }, "another log");
});

Deno.test("LineIndex.note() keeps checkpoints at least spacingBytes apart and in order", () => {
  const index = new LineIndex({ spacingBytes: 100 });
  index.note("a", 7, 5, 99, LF);
  assert.deepEqual(at(index.before("a", 7, 1000)), { line: 0, offset: 0 }, "too close to the start");
  index.note("a", 7, 10, 100, LF);
  index.note("a", 7, 12, 150, LF);
  index.note("a", 7, 9, 300, LF);
  assert.deepEqual(at(index.before("a", 7, 1000)), { line: 10, offset: 100 }, "too close, then out of order");
});

Deno.test("LineIndex drops what it noted of a log replaced by another file or cut shorter", () => {
  const index = new LineIndex({ spacingBytes: 100 });
  index.note("a", 7, 10, 100, LF);
  assert.deepEqual(at(index.before("a", 8, 1000)), { line: 0, offset: 0 }, "another inode");
  assert.deepEqual(at(index.before("a", 7, 1000)), { line: 0, offset: 0 }, "and it is gone");
  index.note("a", 7, 10, 100, LF);
  assert.deepEqual(at(index.before("a", 7, 99)), { line: 0, offset: 0 }, "shorter than the checkpoint");
  index.note("a", 7, 10, 100, LF);
  index.note("a", 8, 3, 200, LF);
  assert.deepEqual(at(index.before("a", 8, 1000)), { line: 3, offset: 200 }, "noted for the new file");
  index.forget("a");
  assert.deepEqual(at(index.before("a", 8, 1000)), { line: 0, offset: 0 });
});

Deno.test("LineIndex keeps maxLogs logs, forgetting the least recently used", () => {
  const index = new LineIndex({ spacingBytes: 1, maxLogs: 2 });
  index.note("a", 1, 1, 10, LF);
  index.note("b", 1, 1, 10, LF);
  index.before("a", 1, 10);
  index.note("c", 1, 1, 10, LF);
  assert.deepEqual(at(index.before("a", 1, 10)), { line: 1, offset: 10 });
  assert.deepEqual(at(index.before("b", 1, 10)), { line: 0, offset: 0 }, "b was used least recently");
  assert.deepEqual(at(index.before("c", 1, 10)), { line: 1, offset: 10 });
});

Deno.test("LineIndex keeps a copy of the last CHECKPOINT_BYTES bytes before each checkpoint", () => {
  const index = new LineIndex({ spacingBytes: 1 });
  const bytes = new TextEncoder().encode(`${"x".repeat(99)}\n`);
  index.note("a", 1, 1, 100, bytes);
  bytes.fill(0);
  assert.deepEqual(
    index.before("a", 1, 100).before,
    new TextEncoder().encode(`${"x".repeat(CHECKPOINT_BYTES - 1)}\n`),
  );
});
