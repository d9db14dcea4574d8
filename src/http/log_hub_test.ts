/** Tests of the log fan-out hub with the real registry and file store, on logs appended in a temporary directory. */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "../logs/deployment.ts";
import { Deployments } from "../runs/deployments.ts";
import { FileStore } from "../logs/file_store.ts";
import { type EncodedBatch, LogHub, type LogViewer, type ViewerLifetime } from "./log_hub.ts";
import { encodeLogLines } from "../logs/sse_encoder.ts";
import { delay, makeTempDir, waitFor, withDeadline } from "../testing/test_helpers.ts";

/** A hub on a fresh store with one running deployment; closes everything when disposed. */
async function startHub() {
  const temp = await makeTempDir();
  // A long poll: lines in these tests arrive by notification or by the hub's own catch-up.
  const store = await FileStore.open(temp.path, { pollIntervalMs: 60_000 });
  const deployments = await Deployments.load(store);
  const hub = new LogHub(store, deployments);
  const { id } = await deployments.create("./deploy.sh");
  await deployments.update(id, { status: "running", startedAt: new Date().toISOString() });
  const appender = await store.openAppender(id);
  return {
    hub,
    deployments,
    store,
    id,
    logPath: join(temp.path, `${id}.log`),
    append: (...lines: string[]) => appender.write(lines),
    async [Symbol.asyncDispose]() {
      appender.close();
      hub.close();
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

/** The data of each event in `bytes` (log lines hold no LF, so each is one `data:` line). */
function dataOf(bytes: Uint8Array): string[] {
  const events = new TextDecoder().decode(bytes).split("\n\n").slice(0, -1);
  return events.map((event) => event.split("\n").find((field) => field.startsWith("data: "))!.slice(6));
}

/** A viewer that records what it is told, in order, as `"lines 1-2"`, `"status running"`, `"reset"`, `"end"`. */
function recordingViewer() {
  const events: string[] = [];
  const batches: EncodedBatch[] = [];
  const lines: string[] = [];
  const controller = new AbortController();
  // What the viewer tells the follower, which paces a burst to it: by default it takes every line at once.
  const pacing = { backlog: 0 as number | undefined, drained: Promise.resolve() };
  const viewer: LogViewer = {
    lines(batch) {
      batches.push(batch);
      const data = dataOf(batch.bytes);
      assert.equal(data.length, batch.count, "one event per line");
      lines.push(...data);
      events.push(`lines ${batch.firstLine}-${batch.firstLine + batch.count - 1}`);
    },
    status: (deployment: Deployment) => events.push(`status ${deployment.status}`),
    reset: () => events.push("reset"),
    end: (deployment: Deployment) => events.push(`end ${deployment.status}`),
    get backlog() {
      return pacing.backlog;
    },
    drained: () => pacing.drained,
  };
  // What an event stream is to the hub: open until it ends.
  const lifetime: ViewerLifetime = {
    get closed() {
      return controller.signal.aborted;
    },
    onEnd(callback) {
      if (controller.signal.aborted) return callback();
      controller.signal.addEventListener("abort", callback, { once: true });
    },
  };
  return { viewer, events, batches, lines, lifetime, pacing, leave: () => controller.abort() };
}

Deno.test("LogHub shares one follower between two viewers of a deployment, and the same bytes", async (t) => {
  await using fixture = await startHub();
  const { hub, id } = fixture;
  await fixture.append("before");
  const a = recordingViewer();
  const b = recordingViewer();
  await withDeadline("subscribe a", hub.subscribe(id, a.viewer, a.lifetime));
  await withDeadline("subscribe b", hub.subscribe(id, b.viewer, b.lifetime));

  await t.step("one follower, two viewers", () => {
    assert.equal(hub.followedCount, 1);
    assert.equal(hub.viewerCount, 2);
  });

  await t.step("both get each new line, encoded once", async () => {
    await fixture.append("one", "two");
    await waitFor("both viewers to get lines 2-3", () => a.lines.length === 2 && b.lines.length === 2);
    assert.deepEqual(a.events, ["lines 2-3"], "lines from before the subscription are not live lines");
    assert.deepEqual(b.events, ["lines 2-3"]);
    assert.equal(a.batches[0].bytes, b.batches[0].bytes, "the very same bytes object");
    assert.deepEqual(a.batches[0].bytes, new TextEncoder().encode(encodeLogLines(2, ["one", "two"])));
  });

  await t.step("one viewer leaves: the other still follows", async () => {
    a.leave();
    assert.equal(hub.followedCount, 1);
    assert.equal(hub.viewerCount, 1);
    await fixture.append("three");
    await waitFor("b to get line 4", () => b.lines.length === 3);
    await delay(30);
    assert.deepEqual(a.lines, ["one", "two"]);
  });

  await t.step("the last viewer leaves: the follower is closed", async () => {
    b.leave();
    assert.equal(hub.followedCount, 0);
    assert.equal(hub.viewerCount, 0);
    await fixture.append("four");
    await delay(50);
    assert.deepEqual(b.lines, ["one", "two", "three"]);
  });
});

/** About 3.5 MB of lines, appended in one write: many of the follower's reads. */
const BURST = Array.from({ length: 40_000 }, (_, i) => `line ${i + 1} ${"x".repeat(80)}`);

/** A viewer with more than the pace allows waiting, until `catchUp()` says it has taken everything. */
function behindViewer() {
  const recording = recordingViewer();
  let caughtUp!: () => void;
  recording.pacing.backlog = 2 * 1024 * 1024;
  recording.pacing.drained = new Promise((resolve) => caughtUp = resolve);
  const catchUp = () => {
    recording.pacing.backlog = 0;
    caughtUp();
  };
  return { ...recording, catchUp };
}

Deno.test("LogHub reads a burst no faster than its fastest viewer of live lines takes it", async (t) => {
  await using fixture = await startHub();
  const { hub, id } = fixture;
  const behind = behindViewer();
  const onItsOwn = recordingViewer();
  onItsOwn.pacing.backlog = undefined;
  await withDeadline("subscribe behind", hub.subscribe(id, behind.viewer, behind.lifetime));
  await withDeadline("subscribe on its own", hub.subscribe(id, onItsOwn.viewer, onItsOwn.lifetime));
  const burst = BURST;
  await fixture.append(...burst);

  await t.step("while every viewer of live lines is behind, one read and no more", async () => {
    await waitFor("the first read", () => behind.lines.length > 0);
    await delay(100);
    assert.deepEqual(behind.events, [`lines 1-${behind.lines.length}`]);
    assert.ok(behind.lines.length < burst.length / 4, `${behind.lines.length} lines`);
    assert.deepEqual(onItsOwn.lines, behind.lines, "a viewer reading the file on its own does not count");
  });

  await t.step("once it has caught up, the follower reads on to the end", async () => {
    behind.catchUp();
    await waitFor("every line", () => behind.lines.length === burst.length);
    assert.deepEqual(behind.lines, burst);
    assert.deepEqual(onItsOwn.lines, burst);
  });
  behind.leave();
  onItsOwn.leave();
});

Deno.test("LogHub: a viewer of live lines that joins while the follower waits sets the pace from then on", async () => {
  await using fixture = await startHub();
  const { hub, id } = fixture;
  const behind = behindViewer();
  await withDeadline("subscribe behind", hub.subscribe(id, behind.viewer, behind.lifetime));
  const burst = BURST;
  await fixture.append(...burst);
  await waitFor("the first read", () => behind.lines.length > 0);
  await delay(100);
  const first = behind.lines.length;
  assert.equal(behind.events.length, 1, "the follower waits");

  const joined = recordingViewer();
  await withDeadline(
    "subscribe a viewer that takes everything",
    hub.subscribe(id, joined.viewer, joined.lifetime),
  );
  await waitFor("every line", () => behind.lines.length === burst.length);
  assert.deepEqual(joined.lines, burst.slice(first), "the new viewer gets every line read after it joined");
  behind.catchUp();
  behind.leave();
  joined.leave();
});

Deno.test("LogHub.settled() at shutdown does not wait for the pace of a viewer that reads nothing", async () => {
  await using fixture = await startHub();
  const { hub, id, deployments } = fixture;
  // Never catches up.
  const silent = behindViewer();
  await withDeadline("subscribe", hub.subscribe(id, silent.viewer, silent.lifetime));
  const burst = BURST;
  await fixture.append(...burst);
  await waitFor("the first read", () => silent.lines.length > 0);
  // Shutdown: the deployment is stopped, and its viewers are told once every line was handed out.
  await deployments.update(id, { status: "interrupted", finishedAt: new Date().toISOString() });
  await withDeadline("settled", hub.settled(), 2000);
  assert.equal(silent.lines.length, burst.length);
  assert.equal(silent.events.at(-1), "end interrupted");
  silent.leave();
});

Deno.test("LogHub tells viewers of status changes and, on a final one, hands out the last lines before end()", async () => {
  await using fixture = await startHub();
  const { hub, id, deployments } = fixture;
  const viewer = recordingViewer();
  await withDeadline("subscribe", hub.subscribe(id, viewer.viewer, viewer.lifetime));

  // Written through a hard link in another directory, so no notification comes: only the hub's catch-up at
  // the end can hand these lines out, and they must come before end().
  await using elsewhere = await makeTempDir();
  const link = join(elsewhere.path, "link.log");
  await Deno.link(fixture.logPath, link);
  await Deno.writeTextFile(link, "last 1\nlast 2\n", { append: true });
  await deployments.update(id, { status: "failed", finishedAt: new Date().toISOString(), exitCode: 1 });
  await waitFor("end()", () => viewer.events.at(-1)?.startsWith("end") ?? false);

  assert.deepEqual(viewer.lines, ["last 1", "last 2"]);
  assert.equal(viewer.events.indexOf("status failed") >= 0, true);
  assert.equal(viewer.events.at(-1), "end failed");
  assert.equal(viewer.events.filter((event) => event.startsWith("end")).length, 1);
  assert.ok(
    viewer.events.findLastIndex((event) => event.startsWith("lines")) < viewer.events.indexOf("end failed"),
    viewer.events.join(", "),
  );
  assert.equal(hub.followedCount, 0, "the follower closes once the deployment has ended");
  viewer.leave();
  assert.equal(hub.viewerCount, 0);
});

Deno.test("LogHub: a viewer subscribing after the deployment ended gets end() and no lines", async () => {
  await using fixture = await startHub();
  const { hub, id, deployments } = fixture;
  await fixture.append("old");
  await deployments.update(id, { status: "succeeded", finishedAt: new Date().toISOString(), exitCode: 0 });

  const viewer = recordingViewer();
  await withDeadline("subscribe", hub.subscribe(id, viewer.viewer, viewer.lifetime));
  await waitFor("end()", () => viewer.events.length > 0);
  assert.deepEqual(viewer.events, ["end succeeded"]);
  await waitFor("the follower to close", () => hub.followedCount === 0);
  viewer.leave();
});

Deno.test("LogHub tells viewers when the log is truncated", async () => {
  await using fixture = await startHub();
  const { hub, id } = fixture;
  await fixture.append("one", "two");
  const viewer = recordingViewer();
  await withDeadline("subscribe", hub.subscribe(id, viewer.viewer, viewer.lifetime));
  await Deno.truncate(fixture.logPath);
  await waitFor("reset()", () => viewer.events.includes("reset"));
  assert.deepEqual(viewer.events, ["reset"]);
  viewer.leave();
});

Deno.test("LogHub.subscribe() of a viewer already gone follows nothing", async () => {
  await using fixture = await startHub();
  const viewer = recordingViewer();
  viewer.leave();
  await withDeadline("subscribe", fixture.hub.subscribe(fixture.id, viewer.viewer, viewer.lifetime));
  assert.equal(fixture.hub.viewerCount, 0);
  assert.equal(fixture.hub.followedCount, 0);
});

Deno.test("LogHub.close() stops following every log", async () => {
  await using fixture = await startHub();
  const viewer = recordingViewer();
  await withDeadline("subscribe", fixture.hub.subscribe(fixture.id, viewer.viewer, viewer.lifetime));
  assert.equal(fixture.hub.followedCount, 1);
  fixture.hub.close();
  assert.equal(fixture.hub.followedCount, 0);
  await fixture.deployments.update(fixture.id, { status: "cancelled" });
  await delay(30);
  assert.deepEqual(viewer.events, [], "a closed hub no longer relays changes");
  viewer.leave();
});
