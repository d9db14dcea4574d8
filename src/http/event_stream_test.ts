/** Tests of the bounded SSE byte stream and the shared heartbeat, read through real stream readers. */

import assert from "node:assert/strict";
import { EventStream, isSlowClientError, OpenStreams } from "./event_stream.ts";
import { delay, waitFor, withDeadline } from "../testing/test_helpers.ts";

const decoder = new TextDecoder();

/** Reads everything a stream still delivers, until it ends. */
async function readAll(stream: EventStream): Promise<string> {
  return await withDeadline("the stream to end", new Response(stream.readable).text());
}

/** Reads a stream continuously in the background, collecting its text. */
function readContinuously(stream: EventStream) {
  const reader = stream.readable.getReader();
  const received = { text: "" };
  const done = (async () => {
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      received.text += decoder.decode(chunk.value);
    }
  })();
  return {
    received,
    async [Symbol.asyncDispose]() {
      stream.close();
      await withDeadline("the reader to finish", done);
    },
  };
}

Deno.test("EventStream.send() beyond maxQueueBytes with nobody reading drops the stream and aborts its signal", async () => {
  const stream = new EventStream({ maxQueueBytes: 1000 });
  assert.equal(stream.send("a".repeat(600)), true);
  assert.equal(stream.send("b".repeat(400)), true);
  assert.equal(stream.send("c"), true, "exactly maxQueueBytes waited before this chunk");
  assert.equal(stream.signal.aborted, false);
  assert.equal(stream.send("d"), false, "more than maxQueueBytes wait");
  assert.equal(stream.closed, true);
  assert.equal(stream.overflowed, true);
  assert.equal(stream.signal.aborted, true);
  assert.equal(stream.send("e"), false, "nothing is sent after the end");
  // What was queued is dropped with the stream (and the server drops the connection): a client that does not
  // read must not keep maxQueueBytes, nor its socket, for ever.
  await assert.rejects(readAll(stream), (error) => isSlowClientError(error));
});

Deno.test("EventStream.queuedBytes counts the bytes waiting, and only those: a chunk read is no longer counted", async () => {
  const stream = new EventStream({ maxQueueBytes: 1000 });
  const reader = stream.readable.getReader();
  assert.equal(stream.queuedBytes, 0);
  stream.send(new Uint8Array(600));
  stream.send(new Uint8Array(300));
  assert.equal(stream.queuedBytes, 900);
  assert.equal((await reader.read()).value?.length, 600);
  assert.equal(stream.queuedBytes, 300, "the oldest chunk was read");
  assert.equal((await reader.read()).value?.length, 300);
  assert.equal(stream.queuedBytes, 0);
  // A read waiting when the chunk comes takes it at once: it never waited in the queue.
  const pending = reader.read();
  stream.send(new Uint8Array(700));
  assert.equal(stream.queuedBytes, 0);
  assert.equal((await pending).value?.length, 700);
  stream.send(new Uint8Array(600));
  stream.send(new Uint8Array(600));
  assert.equal(stream.send(new Uint8Array(1)), false, "1200 bytes wait");
  assert.equal(stream.overflowed, true);
  await assert.rejects(reader.read(), (error) => isSlowClientError(error));
});

Deno.test("EventStream.queuedBytes stays exact over many chunks read in between", async () => {
  const stream = new EventStream({ maxQueueBytes: 1_000_000 });
  const reader = stream.readable.getReader();
  let waiting = 0;
  for (let i = 1; i <= 5000; i++) {
    stream.send(new Uint8Array(i % 7 + 1));
    waiting += i % 7 + 1;
    if (i % 3 === 0) waiting -= (await reader.read()).value!.length;
    if (i % 500 === 0) assert.equal(stream.queuedBytes, waiting, `after ${i} chunks`);
  }
  stream.close();
  while (!(await reader.read()).done);
});

Deno.test("EventStream.queuedBytes stays exact when thousands of chunks wait and are then read", async () => {
  const stream = new EventStream({ maxQueueBytes: 10_000_000 });
  const reader = stream.readable.getReader();
  let waiting = 0;
  for (let i = 1; i <= 5000; i++) {
    stream.send(new Uint8Array(i % 11 + 1));
    waiting += i % 11 + 1;
  }
  assert.equal(stream.queuedBytes, waiting);
  for (let i = 1; i <= 4990; i++) {
    waiting -= (await reader.read()).value!.length;
    if (i % 997 === 0 || i > 4980) assert.equal(stream.queuedBytes, waiting, `after ${i} reads`);
  }
  stream.close();
  while (!(await reader.read()).done);
  assert.equal(stream.queuedBytes, 0);
});

Deno.test("EventStream.onEnd(): a callback that throws does not keep the others from running", () => {
  const stream = new EventStream();
  const calls: string[] = [];
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    stream.onEnd(() => {
      throw new Error("boom");
    });
    stream.onEnd(() => calls.push("second"));
    stream.close();
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual([...calls], ["second"]);
  assert.equal((reported[0] as Error).message, "boom");
});

Deno.test("EventStream.onEnd() calls back once when the stream ends, and at once when it has", async (t) => {
  for (
    const [how, end] of [
      ["close", (stream: EventStream) => stream.close()],
      ["overflow", (stream: EventStream) => stream.overflow()],
      ["cancel by the reader", (stream: EventStream) => void stream.readable.cancel()],
    ] as const
  ) {
    await t.step(how, () => {
      const stream = new EventStream();
      const calls: string[] = [];
      stream.onEnd(() => calls.push("first"));
      stream.onEnd(() => calls.push("second"));
      assert.deepEqual([...calls], []);
      end(stream);
      assert.deepEqual([...calls], ["first", "second"]);
      stream.close();
      assert.deepEqual([...calls], ["first", "second"], "not again");
      stream.onEnd(() => calls.push("late"));
      assert.deepEqual([...calls], ["first", "second", "late"]);
    });
  }
});

Deno.test("EventStream.send() accepts a chunk larger than maxQueueBytes when nothing waits", async () => {
  const stream = new EventStream({ maxQueueBytes: 1000 });
  assert.equal(stream.send(new Uint8Array(5000)), true);
  stream.close();
  assert.equal(stream.overflowed, false, "closed by the server, not for slowness");
  assert.equal((await new Response(stream.readable).arrayBuffer()).byteLength, 5000);
});

Deno.test("EventStream.send() keeps sending to a reader that keeps up, far beyond maxQueueBytes in all", async () => {
  const stream = new EventStream({ maxQueueBytes: 1000 });
  await using reading = readContinuously(stream);
  for (let i = 0; i < 50; i++) {
    assert.equal(stream.send(`${"x".repeat(99)}\n`), true, `chunk ${i}`);
    await waitFor("the reader to take the chunk", () => reading.received.text.length === (i + 1) * 100, {
      intervalMs: 1,
    });
  }
  assert.equal(stream.closed, false);
});

Deno.test("EventStream.ready() waits until the reader has read, and resolves at once on a closed stream", async (t) => {
  const stream = new EventStream();
  const reader = stream.readable.getReader();

  await t.step("room in the queue: ready at once", async () => {
    await withDeadline("ready", stream.ready(), 100);
  });

  await t.step("a full queue: ready only after a read", async () => {
    stream.send("x".repeat(150));
    let ready = false;
    const waiting = stream.ready().then(() => ready = true);
    await delay(50);
    assert.equal(ready, false);
    const { value } = await withDeadline("read", reader.read());
    assert.equal(value?.length, 150);
    await withDeadline("ready after the read", waiting, 1000);
  });

  await t.step("a closed stream: ready at once", async () => {
    stream.send("y".repeat(150));
    let ready = false;
    const waiting = stream.ready().then(() => ready = true);
    await delay(20);
    assert.equal(ready, false);
    stream.close();
    await withDeadline("ready after close", waiting, 1000);
    await withDeadline("ready on the closed stream", stream.ready(), 100);
  });
  reader.releaseLock();
  await stream.readable.cancel();
});

Deno.test("EventStream: a cancel by the reader aborts the signal, wakes ready() and stops sending", async () => {
  const stream = new EventStream();
  stream.send("x".repeat(20));
  const waiting = stream.ready();
  const aborted = new Promise((resolve) => stream.signal.addEventListener("abort", resolve));
  await stream.readable.cancel("gone");
  await withDeadline("the abort", aborted, 1000);
  await withDeadline("ready", waiting, 1000);
  assert.equal(stream.closed, true);
  assert.equal(stream.send("late"), false);
  stream.close(); // closing again is harmless
});

Deno.test("OpenStreams sends a heartbeat to a silent stream and none to a busy one", async () => {
  const streams = new OpenStreams(50);
  const silent = new EventStream();
  const busy = new EventStream();
  streams.add(silent);
  streams.add(busy);
  assert.equal(streams.size, 2);
  await using silentReading = readContinuously(silent);
  await using busyReading = readContinuously(busy);

  const until = performance.now() + 300;
  while (performance.now() < until) {
    busy.send("data: x\n\n");
    await delay(10);
  }
  assert.match(silentReading.received.text, /^(: heartbeat\n\n)+$/);
  const beats = silentReading.received.text.length / ": heartbeat\n\n".length;
  assert.ok(beats >= 3 && beats <= 7, `${beats} heartbeats in 300 ms at a 50 ms interval`);
  assert.doesNotMatch(busyReading.received.text, /heartbeat/);
  assert.match(busyReading.received.text, /^(data: x\n\n)+$/);
});

Deno.test("OpenStreams ends a stream whose client reads nothing while it is waited for, not one that reads slowly", async () => {
  // Ticks of 10 ms: a stream waited for is stalled after 8 ticks (80 ms) without a read.
  const streams = new OpenStreams(40);
  const stalled = new EventStream();
  const slow = new EventStream();
  for (const stream of [stalled, slow]) {
    streams.add(stream);
    for (let i = 0; i < 10; i++) stream.send("x".repeat(1000));
  }
  const waits = [stalled.ready(), slow.ready()];
  // One chunk every 30 ms, while two more are sent every 30 ms (the pace of a burst set by a faster viewer):
  // its queue only grows, but it reads.
  const reader = slow.readable.getReader();
  let reads = 0;
  const reading = (async () => {
    while (!(await reader.read()).done) {
      reads++;
      await delay(30);
    }
  })();
  for (let i = 0; i < 10; i++) {
    slow.send("x".repeat(1000));
    slow.send("x".repeat(1000));
    await delay(30);
  }
  assert.equal(stalled.overflowed, true, "the client that read nothing");
  assert.equal(slow.overflowed, false, `the client that read slowly (${reads} reads)`);
  // Then no more sends: it takes all it was given, and whoever waited for it goes on.
  await withDeadline("both waits", Promise.all(waits), 3000);
  assert.equal(slow.closed, false);
  slow.close();
  await withDeadline("the slow reader to finish", reading);
  await stalled.readable.cancel().catch(() => {});
});

Deno.test("EventStream.ready() hands every waiter the same promise while the client has not read", async () => {
  const stream = new EventStream();
  stream.send("x".repeat(10));
  const first = stream.ready();
  assert.equal(stream.ready(), first);
  assert.equal(stream.waitingForReader, true);
  await new Response(stream.readable).body!.getReader().read();
  await withDeadline("ready", first, 1000);
  assert.equal(stream.waitingForReader, false);
  stream.close();
});

Deno.test("OpenStreams forgets each stream as it ends and clears its timer with the last one", async () => {
  const streams = new OpenStreams(20, ": custom\n\n");
  const first = new EventStream();
  const second = new EventStream();
  streams.add(first);
  streams.add(second);
  first.close();
  assert.equal(streams.size, 1);
  await second.readable.cancel();
  assert.equal(streams.size, 0);
  // The test's timer sanitizer fails if the heartbeat interval is still set here.
  assert.equal(await new Response(first.readable).text(), "");
});

Deno.test("OpenStreams.closeAll() ends every stream after what it has queued", async () => {
  const streams = new OpenStreams(10_000);
  const all = [new EventStream(), new EventStream()];
  for (const stream of all) {
    streams.add(stream);
    stream.send("data: last\n\n");
  }
  streams.closeAll();
  assert.equal(streams.size, 0);
  for (const stream of all) assert.equal(await readAll(stream), "data: last\n\n");
  // One added afterwards (a request still on its way at shutdown) is ended at once.
  const late = new EventStream();
  streams.add(late);
  assert.equal(late.closed, true);
  assert.equal(streams.size, 0);
});

Deno.test("OpenStreams.add() of a stream that already ended keeps no timer", () => {
  const streams = new OpenStreams(20);
  const stream = new EventStream();
  stream.close();
  streams.add(stream);
  assert.equal(streams.size, 0);
});

Deno.test("OpenStreams.endAll() ends every open stream with its last words, and still takes new ones", async () => {
  const streams = new OpenStreams(10_000);
  const all = [new EventStream(), new EventStream()];
  for (const stream of all) {
    streams.add(stream);
    stream.send("data: before\n\n");
  }
  streams.endAll("retry: 100\n\nevent: unavailable\ndata: away\n\n");
  assert.equal(streams.size, 0);
  for (const stream of all) {
    assert.equal(await readAll(stream), "data: before\n\nretry: 100\n\nevent: unavailable\ndata: away\n\n");
  }
  const next = new EventStream();
  streams.add(next);
  assert.equal(next.closed, false);
  assert.equal(streams.size, 1);
  streams.closeAll();
  assert.equal(await readAll(next), "");
});
