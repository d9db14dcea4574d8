import assert from "node:assert/strict";
import { Heap } from "./heap.ts";

Deno.test("Heap pops its items least first, whatever order they were pushed in", () => {
  const heap = new Heap<number>((a, b) => a - b);
  assert.equal(heap.pop(), undefined);
  // A fixed shuffle with repeats: 0..999 twice, in a scattered order.
  const items = Array.from({ length: 2000 }, (_, i) => (i * 7919) % 1000);
  for (const item of items) heap.push(item);
  assert.equal(heap.size, 2000);
  const popped: number[] = [];
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) popped.push(item);
  assert.deepEqual(popped, items.toSorted((a, b) => a - b));
  assert.equal(heap.size, 0);
});

Deno.test("Heap takes pushes between pops", () => {
  const heap = new Heap<string>((a, b) => a.localeCompare(b));
  for (const item of ["d", "b", "f"]) heap.push(item);
  assert.equal(heap.pop(), "b");
  heap.push("a");
  heap.push("e");
  assert.deepEqual([heap.pop(), heap.pop(), heap.pop(), heap.pop(), heap.pop()], [
    "a",
    "d",
    "e",
    "f",
    undefined,
  ]);
});
