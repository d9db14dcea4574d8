import assert from "node:assert/strict";
import { Queue } from "./queue.ts";

Deno.test("Queue hands out its items first in first out, skipping those deleted before their turn", () => {
  const queue = new Queue<string>();
  for (const item of ["a", "b", "c", "d"]) queue.add(item);
  queue.add("b");
  assert.equal(queue.size, 4, "an item already queued keeps its place");
  assert.equal(queue.delete("b"), true);
  assert.equal(queue.delete("b"), false);
  assert.equal(queue.shift(), "a");
  queue.add("e");
  assert.equal(queue.size, 3);
  assert.deepEqual([queue.shift(), queue.shift(), queue.shift(), queue.shift()], ["c", "d", "e", undefined]);
  assert.equal(queue.size, 0);
});

Deno.test("Queue keeps its order across the compaction of what was taken", () => {
  const queue = new Queue<number>();
  for (let i = 0; i < 5000; i++) queue.add(i);
  const taken: number[] = [];
  for (let i = 0; i < 3000; i++) {
    taken.push(queue.shift()!);
    queue.add(5000 + i);
  }
  assert.deepEqual(taken, Array.from({ length: 3000 }, (_, i) => i));
  assert.equal(queue.delete(4000), true);
  const rest = queue.clear();
  assert.equal(rest.length, 4999);
  assert.deepEqual(rest.slice(0, 3), [3000, 3001, 3002]);
  assert.equal(rest.includes(4000), false);
  assert.equal(queue.size, 0);
  assert.equal(queue.shift(), undefined);
});

Deno.test("Queue.peek() gives the first item without taking it, past those deleted before their turn", () => {
  const queue = new Queue<string>();
  assert.equal(queue.peek(), undefined);
  for (const item of ["a", "b", "c"]) queue.add(item);
  queue.delete("a");
  assert.equal(queue.peek(), "b");
  assert.equal(queue.peek(), "b", "still there");
  assert.equal(queue.size, 2);
  assert.equal(queue.shift(), "b");
  queue.delete("c");
  assert.equal(queue.peek(), undefined);
});
