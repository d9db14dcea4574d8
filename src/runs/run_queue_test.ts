/**
 * Tests of the local queue alone, on real deployments in a file store: which deployment a claim takes when
 * targets are busy, and what a cancel of a queued one leaves in its record and its log.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Deployments } from "./deployments.ts";
import { FileStore } from "../logs/file_store.ts";
import { LocalRunQueue } from "./run_queue.ts";
import { makeTempDir } from "../testing/test_helpers.ts";

/** A local queue on a fresh store; everything removed when disposed. */
async function openQueue() {
  const temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  const deployments = await Deployments.load(store);
  const queue = new LocalRunQueue(deployments);
  return {
    queue,
    deployments,
    /** Creates a deployment of `target` and queues it: its id. */
    async add(target: string): Promise<string> {
      const { id } = await deployments.create(null, { target });
      queue.add(id);
      return id;
    },
    readLog: (id: string) => Deno.readTextFile(join(temp.path, `${id}.log`)),
    async [Symbol.asyncDispose]() {
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

Deno.test("LocalRunQueue.claim() takes one deployment per target, the first queued of a free target", async () => {
  await using fixture = await openQueue();
  const { queue } = fixture;
  const prod1 = await fixture.add("production");
  const prod2 = await fixture.add("production");
  const staging1 = await fixture.add("staging");
  const prod3 = await fixture.add("production");
  const staging2 = await fixture.add("staging");
  assert.equal(queue.size, 5);

  assert.equal(queue.claim(), prod1, "the first queued");
  assert.equal(queue.claim(), staging1, "not held up behind production's second");
  assert.equal(queue.claim(), undefined, "both targets busy");
  assert.equal(queue.size, 3, "the others still wait");

  queue.finished(staging1);
  assert.equal(queue.claim(), staging2, "staging is free again");
  queue.finished(prod1);
  assert.equal(queue.claim(), prod2, "production's next, in order");
  queue.finished(prod2);
  queue.finished(prod2);
  assert.equal(queue.claim(), prod3);
  assert.equal(queue.claim(), undefined);
  assert.equal(queue.size, 0);
});

Deno.test("LocalRunQueue.claim() between free targets takes the one queued first", async () => {
  await using fixture = await openQueue();
  const { queue } = fixture;
  const a1 = await fixture.add("a");
  const b1 = await fixture.add("b");
  const a2 = await fixture.add("a");
  const c1 = await fixture.add("c");
  const b2 = await fixture.add("b");
  assert.equal(queue.claim(), a1);
  queue.finished(a1);
  // b1 was queued before a2, and both targets are free.
  assert.equal(queue.claim(), b1);
  assert.equal(queue.claim(), a2);
  assert.equal(queue.claim(), c1);
  assert.equal(queue.claim(), undefined, "b is busy with its first");
  queue.finished(b1);
  assert.equal(queue.claim(), b2);
});

Deno.test("LocalRunQueue.cancel() of a queued deployment records who and writes the notice into its log", async () => {
  await using fixture = await openQueue();
  const { queue, deployments } = fixture;
  const first = await fixture.add("production");
  const byAlice = await fixture.add("production");
  const byNobody = await fixture.add("production");
  const next = await fixture.add("production");
  assert.equal(queue.claim(), first);

  assert.equal(await queue.cancel(byAlice, { by: "alice" }), true);
  assert.equal(await queue.cancel(byNobody), true);
  assert.equal(await queue.cancel(byNobody), false, "no longer queued");
  assert.equal(await queue.cancel(first), false, "a claimed one is the runner's to stop");

  const alice = deployments.get(byAlice)!;
  assert.equal(alice.status, "cancelled");
  assert.equal(alice.cancelledBy, "alice");
  assert.ok(alice.finishedAt);
  assert.equal(await fixture.readLog(byAlice), "shiplog: cancelled by alice\n");
  assert.equal(deployments.get(byNobody)!.cancelledBy, null);
  assert.equal(await fixture.readLog(byNobody), "shiplog: cancelled\n");

  queue.finished(first);
  assert.equal(queue.claim(), next, "the cancelled ones are skipped");
});

Deno.test("LocalRunQueue.close() gives every queued deployment in the order queued, and takes nothing more", async () => {
  await using fixture = await openQueue();
  const { queue } = fixture;
  const ids = [
    await fixture.add("a"),
    await fixture.add("b"),
    await fixture.add("a"),
    await fixture.add("c"),
  ];
  assert.equal(queue.claim(), ids[0]);
  assert.deepEqual(queue.close(), ids.slice(1));
  assert.equal(queue.size, 0);
  assert.equal(queue.claim(), undefined);
});
