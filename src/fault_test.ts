/**
 * Faults survived, on the real program (`deno run main.ts` as its own process) where it matters: kill -9 and
 * restart, SIGTERM under heavy streaming, a log file changed under its viewers, a log that cannot be written,
 * floods and hostile output, connection churn, and a viewer that never reads. Memory and file descriptors are
 * read from `/proc/<pid>` of the server process; deploy processes are found by `SHIPLOG_DEPLOYMENT_ID` in
 * `/proc/<pid>/environ`. Linux only.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "./logs/deployment.ts";
import { getDeployment, metric } from "./testing/test_app.ts";
import { delay, deploymentRecord, makeTempDir, waitFor, withDeadline } from "./testing/test_helpers.ts";
import {
  assertExitsCleanly,
  spawnShiplog,
  startDeployment,
  terminate,
  waitForStatus,
} from "./testing/test_program.ts";

const encoder = new TextEncoder();
const MB = 1024 * 1024;

async function cancel(url: string, id: string): Promise<Deployment> {
  const response = await fetch(new URL(`api/deployments/${id}/cancel`, url), { method: "POST" });
  assert.equal(response.status, 200);
  return await response.json();
}

async function healthy(url: string): Promise<void> {
  const response = await withDeadline("GET /healthz", fetch(new URL("healthz", url)), 5000);
  assert.equal(await response.text(), "ok\n");
}

/** Resident memory of a process, in bytes (VmRSS of /proc/<pid>/status). */
function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB$/m)![1]) * 1024;
}

/** Open file descriptors of a process. */
function fdCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** The live (not zombie) processes whose environment has `SHIPLOG_DEPLOYMENT_ID=<id>`. */
function processesOf(id: string): number[] {
  const wanted = `SHIPLOG_DEPLOYMENT_ID=${id}`;
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (!Deno.readTextFileSync(`/proc/${entry.name}/environ`).split("\0").includes(wanted)) continue;
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
      if (state !== "Z" && state !== "X") pids.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** The ids of a test's deployments; when disposed, whatever they left running is SIGKILLed, by pid. */
function deploymentIds(): string[] & Disposable {
  const ids: string[] = [];
  return Object.assign(ids, {
    [Symbol.dispose]() {
      for (const id of ids) {
        for (const pid of processesOf(id)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
      }
    },
  });
}

/** Open sockets of a process (its connections and listeners). */
function socketCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].filter((entry) => {
    try {
      return Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
}

/** Tracks the highest RSS of a process, sampled every 50 ms until disposed. */
function peakRss(pid: number): { readonly peak: number } & Disposable {
  let peak = rss(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch { /* exited */ }
  }, 50);
  return {
    get peak() {
      return peak;
    },
    [Symbol.dispose]: () => clearInterval(timer),
  };
}

interface SseEvent {
  type: string;
  id: string | undefined;
  data: string;
}

function parseBlock(block: string): SseEvent | undefined {
  let type = "message";
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("data: ")) data.push(line.slice(6));
    else if (line.startsWith("id: ")) id = line.slice(4);
    else if (line.startsWith("event: ")) type = line.slice(7);
  }
  return data.length === 0 ? undefined : { type, id, data: data.join("\n") };
}

/**
 * Reads an event stream, handing each event to `onEvent` until the stream ends ("ended") or `onEvent` returns
 * true ("stopped", and the body is cancelled). Rejects after `timeoutMs`, or when the stream fails.
 */
async function readEvents(
  response: Response,
  onEvent: (event: SseEvent) => boolean | void,
  timeoutMs = 10_000,
): Promise<"ended" | "stopped"> {
  assert.equal(response.status, 200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, timeoutMs);
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (timedOut) throw new Error(`event stream not over after ${timeoutMs} ms`);
      if (done) return "ended";
      buffer += value;
      let start = 0;
      for (let end; (end = buffer.indexOf("\n\n", start)) >= 0; start = end + 2) {
        const event = parseBlock(buffer.slice(start, end));
        if (event && onEvent(event)) {
          await reader.cancel();
          return "stopped";
        }
      }
      buffer = buffer.slice(start);
    }
  } finally {
    clearTimeout(timer);
  }
}

function events(url: string, id: string, lastEventId?: string): Promise<Response> {
  return fetch(new URL(`events/${id}`, url), {
    headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId },
  });
}

async function countLogLines(path: string): Promise<number> {
  const bytes = await Deno.readFile(path);
  let count = 0;
  for (const byte of bytes) if (byte === 0x0a) count++;
  return count;
}

Deno.test("kill -9 mid-deployment: a restart records interrupted, stops the orphans, and viewers resume", async (t) => {
  await using dir = await makeTempDir();
  const command = 'for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.05; done; sleep 31 & wait';
  using ids = deploymentIds();
  let id = "";
  await t.step("the first shiplog is killed while the deployment runs", async () => {
    await using first = await spawnShiplog(dir.path, ["--command", command]);
    id = await startDeployment(first);
    ids.push(id);
    // A viewer sees lines 1..3, then goes away (as a browser would when the server dies).
    const seen: number[] = [];
    await readEvents(await events(first.url, id), (event) => {
      if (event.type === "message") seen.push(Number(event.id));
      return seen.length === 3;
    });
    assert.deepEqual(seen, [1, 2, 3]);
    await waitFor(
      "all six lines and the sleep",
      async () => await countLogLines(join(dir.path, `${id}.log`)) === 6 && processesOf(id).length >= 2,
    );
    first.process.kill("SIGKILL");
    await first.process.status;
    // sh and its sleep outlive the server: they are what the restart must stop.
    assert.ok(processesOf(id).length >= 2, "the deploy processes outlived kill -9");
  });

  await t.step("the restart stops the orphans and records the deployment interrupted", async () => {
    // With the permissions of `deno task start`: finding the orphans must not need more.
    await using second = await spawnShiplog(dir.path, []);
    await waitFor("the orphans to be gone", () => processesOf(id).length === 0, { timeoutMs: 2000 });
    assert.match(second.stderr(), /stopped 1 process group\(s\) left running/);
    const record = await getDeployment(second, id);
    assert.equal(record.status, "interrupted");
    assert.ok(record.finishedAt);
    const onDisk = JSON.parse(await Deno.readTextFile(join(dir.path, `${id}.json`)));
    assert.equal(onDisk.status, "interrupted");

    // The viewer that had seen 1..3 resumes: 4..6 exactly and the restart's notice, then done.
    const received: SseEvent[] = [];
    const end = await readEvents(await events(second.url, id, "3"), (event) => {
      received.push(event);
    });
    assert.equal(end, "ended");
    const lines = received.filter((event) => event.type === "message");
    assert.deepEqual(lines.map((event) => [event.id, event.data]), [
      ["4", "line 4"],
      ["5", "line 5"],
      ["6", "line 6"],
      ["7", "shiplog: interrupted: shiplog stopped while this deployment was running"],
    ]);
    assert.equal(received[0].type, "status");
    assert.equal(JSON.parse(received[0].data).status, "interrupted");
    assert.equal(received.at(-1)!.type, "done");
    assert.deepEqual(JSON.parse(received.at(-1)!.data), { status: "interrupted", exitCode: null });
    // And having everything, it is told to stop.
    const after = await events(second.url, id, "7");
    assert.equal(after.status, 204);
    await after.body?.cancel();
    await assertExitsCleanly(second);
  });
});

Deno.test("SIGTERM during heavy streaming: every stream ends cleanly, the record is consistent, exit 0 in 5 s", async () => {
  await using dir = await makeTempDir();
  // About 1.5 MB/s of short lines, for ever.
  const command = "while :; do seq -f 'line %g of a fast deployment' 1 500; sleep 0.01; done";
  using ids = deploymentIds();
  await using shiplog = await spawnShiplog(dir.path, [
    "--command",
    command,
    "--max-log-bytes",
    String(200 * MB),
  ]);
  const id = await startDeployment(shiplog);
  ids.push(id);
  await waitForStatus(shiplog, id, "running");
  const VIEWERS = 50;
  const received = new Array<number>(VIEWERS).fill(0);
  const tails = new Array<string>(VIEWERS).fill("");
  const decoder = new TextDecoder();
  const readers = await Promise.all(Array.from({ length: VIEWERS }, async (_, i) => {
    const response = await events(shiplog.url, id);
    assert.equal(response.status, 200);
    // Wrapped, or Promise.all would wait for the whole stream rather than for its headers.
    return {
      ended: (async () => {
        for await (const chunk of response.body!) {
          received[i] += chunk.length;
          tails[i] = (tails[i] + decoder.decode(chunk)).slice(-4096);
        }
      })(),
    };
  }));
  const feeds = await Promise.all(Array.from({ length: 5 }, async () => {
    const response = await fetch(new URL("events", shiplog.url));
    assert.equal(response.status, 200);
    return { ended: response.body!.pipeTo(new WritableStream()) };
  }));
  await waitFor("every viewer to be streaming", () => received.every((bytes) => bytes > 2 * MB), {
    timeoutMs: 15_000,
  });

  const { code, elapsedMs } = await terminate(shiplog);
  assert.equal(code, 0, shiplog.stderr());
  assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
  assert.doesNotMatch(shiplog.stderr(), /shutdown took too long/);
  // Every read ends: no error, no hang; each viewer of the deployment was told it is over.
  await withDeadline(
    "every stream to end",
    Promise.all([...readers, ...feeds].map((reader) => reader.ended)),
    2000,
  );
  for (const tail of tails) {
    assert.match(tail, /event: done\nid: \d+\ndata: \{"status":"interrupted","exitCode":null\}\n\n$/);
  }
  const record = JSON.parse(await Deno.readTextFile(join(dir.path, `${id}.json`)));
  assert.equal(record.status, "interrupted");
  assert.equal(typeof record.finishedAt, "string");
  assert.equal(record.reason, "shiplog was stopped");
  assert.deepEqual(processesOf(id), []);
  const log = await Deno.readTextFile(join(dir.path, `${id}.log`));
  assert.ok(log.endsWith("\n"), "the log ends with a whole line");
  console.log(
    `  50 viewers got ${Math.round(Math.min(...received) / 1000)} kB or more; exit in ${
      Math.round(elapsedMs)
    } ms`,
  );
});

Deno.test("a log truncated, deleted or replaced under its viewers: they get reset, the server stays up", async (t) => {
  await using dir = await makeTempDir();
  using ids = deploymentIds();
  await using shiplog = await spawnShiplog(dir.path, [
    "--command",
    "echo one; echo two; echo three; sleep 32",
  ]);
  const cases: [string, (path: string) => Promise<void>, string[]][] = [
    ["truncated", (path) => Deno.truncate(path, 0), ["fresh 1", "fresh 2"]],
    ["deleted", (path) => Deno.remove(path), ["recreated"]],
    ["replaced", async (path) => {
      await Deno.writeTextFile(`${path}.new`, "replaced 1\nreplaced 2\nreplaced 3\nreplaced 4\n");
      await Deno.rename(`${path}.new`, path);
    }, []],
  ];
  for (const [what, change, newContent] of cases) {
    await t.step(`${what}`, async () => {
      const id = await startDeployment(shiplog);
      ids.push(id);
      const path = join(dir.path, `${id}.log`);
      await waitFor("three lines", async () => await countLogLines(path) === 3);
      // Three viewers, each past the history and following live.
      const viewers = await Promise.all([0, 1, 2].map(async () => {
        const response = await events(shiplog.url, id);
        const got: SseEvent[] = [];
        const seenThree = Promise.withResolvers<void>();
        const ended = readEvents(response, (event) => {
          got.push(event);
          if (event.id === "3") seenThree.resolve();
        });
        await withDeadline("the history", Promise.race([seenThree.promise, ended]));
        return { got, ended };
      }));
      await change(path);
      for (const { got, ended } of viewers) {
        assert.equal(await ended, "ended");
        assert.deepEqual(got.at(-1), {
          type: "reset",
          id: "0",
          data: "the log was truncated, replaced or deleted",
        });
        assert.deepEqual(got.filter((event) => event.type === "message").map((event) => event.id), [
          "1",
          "2",
          "3",
        ]);
      }
      await healthy(shiplog.url);
      if (newContent.length > 0) {
        await Deno.writeTextFile(path, newContent.map((line) => `${line}\n`).join(""), { append: true });
      }
      // The reconnection, as EventSource makes it after `id: 0`, starts from the new line 1.
      const expected = newContent.length > 0
        ? newContent
        : ["replaced 1", "replaced 2", "replaced 3", "replaced 4"];
      const lines: [string | undefined, string][] = [];
      await readEvents(await events(shiplog.url, id, "0"), (event) => {
        if (event.type === "message") lines.push([event.id, event.data]);
        return lines.length === expected.length;
      });
      assert.deepEqual(lines, expected.map((line, i) => [String(i + 1), line]));
      assert.equal((await getDeployment(shiplog, id)).status, "running");
      // One target runs one deployment at a time: the next case's waits for this one's end.
      assert.equal((await cancel(shiplog.url, id)).status, "cancelled");
    });
  }
  await healthy(shiplog.url);
  await assertExitsCleanly(shiplog);
  assert.doesNotMatch(shiplog.stderr(), /failed|error/i);
});

Deno.test("a log that cannot be written ends its deployment failed, and everything else is still served", async () => {
  await using dir = await makeTempDir();
  using ids = deploymentIds();
  // Files of up to 4 KiB: a log longer than that cannot be written to, as on a full disk.
  await using shiplog = await spawnShiplog(dir.path, [
    "--max-running",
    "1",
    "--command",
    'echo "hello from $SHIPLOG_DEPLOYMENT_ID"; sleep 33',
  ], { fileSizeBlocks: 8 });
  // The first deployment holds the only slot, so the second waits queued with its (empty) log created.
  const first = await startDeployment(shiplog);
  ids.push(first);
  await waitForStatus(shiplog, first, "running");
  const full = await startDeployment(shiplog);
  ids.push(full);
  assert.equal((await getDeployment(shiplog, full)).status, "queued");
  // Every write to its log now fails with EFBIG, as one to a full disk fails with ENOSPC.
  const written = "x".repeat(99) + "\n";
  await Deno.writeTextFile(join(dir.path, `${full}.log`), written.repeat(50));
  const viewer = events(shiplog.url, full);

  await cancel(shiplog.url, first);
  const failed = await waitForStatus(shiplog, full, "failed");
  assert.match(failed.reason!, /^Cannot write the log: File too large/);
  assert.ok(failed.finishedAt);
  await waitFor("the failed deployment's command to be stopped", () => processesOf(full).length === 0);

  // Its viewer is told, and the server goes on serving everything else.
  const got: SseEvent[] = [];
  assert.equal(await readEvents(await viewer, (event) => void got.push(event), 5000), "ended");
  assert.equal(got.at(-1)!.type, "done");
  assert.equal(JSON.parse(got.at(-1)!.data).status, "failed");
  const raw = await withDeadline("the raw log", fetch(new URL(`deployments/${full}/log`, shiplog.url)));
  assert.equal(raw.status, 200);
  assert.equal(await withDeadline("the raw log's body", raw.text()), written.repeat(50));
  await healthy(shiplog.url);
  const next = await startDeployment(shiplog);
  ids.push(next);
  const lines: string[] = [];
  await readEvents(await events(shiplog.url, next), (event) => {
    if (event.type === "message") lines.push(event.data);
    return lines.length === 1;
  });
  assert.deepEqual(lines, [`hello from ${next}`]);
  assert.equal((await cancel(shiplog.url, next)).status, "cancelled");
  const firstLog = await (await fetch(new URL(`deployments/${first}/log`, shiplog.url))).text();
  assert.equal(firstLog, `hello from ${first}\nshiplog: cancelled\n`);
  await assertExitsCleanly(shiplog);
});

Deno.test("a record that is a symlink, or over 64 KiB, is ignored at start with a message, and never served", async () => {
  await using dir = await makeTempDir();
  await using elsewhere = await makeTempDir();
  const marker = "MARKER-outside-the-data-directory";
  const finished = { status: "succeeded", startedAt: "2026-11-24T08:00:01.000Z", exitCode: 0 } as const;
  const good = deploymentRecord({ ...finished, finishedAt: "2026-11-24T08:00:02.000Z" });
  await Deno.writeTextFile(join(dir.path, `${good.id}.json`), JSON.stringify(good));
  const linked = deploymentRecord({ ...finished, finishedAt: "2026-11-24T08:00:03.000Z", command: marker });
  const target = join(elsewhere.path, "record.json");
  await Deno.writeTextFile(target, JSON.stringify(linked));
  await Deno.symlink(target, join(dir.path, `${linked.id}.json`));
  // 30 MB that a whole read would take into memory (sparse: no disk taken); never read, not even to parse it.
  const huge = crypto.randomUUID();
  await Deno.writeTextFile(join(dir.path, `${huge}.json`), "");
  await Deno.truncate(join(dir.path, `${huge}.json`), 30 * MB);

  await using shiplog = await spawnShiplog(dir.path);
  const messages = [
    `shiplog: ignoring ${linked.id}.json: it is a symlink, not a regular file\n`,
    `shiplog: ignoring ${huge}.json: ${30 * MB} bytes, over the limit of 65536 bytes (64 KiB) for a record\n`,
  ];
  await waitFor("the messages", () => messages.every((message) => shiplog.stderr().includes(message)));
  for (const message of messages) assert.equal(shiplog.stderr().split(message).length, 2, shiplog.stderr());
  const list = await withDeadline("the list", fetch(new URL("api/deployments", shiplog.url)));
  assert.deepEqual(await list.json(), [good]);
  for (const id of [linked.id, huge]) {
    const one = await withDeadline("a record", fetch(new URL(`api/deployments/${id}`, shiplog.url)));
    assert.equal(one.status, 404);
    assert.ok(!(await one.text()).includes(marker));
  }
  assert.equal(await Deno.readTextFile(target), JSON.stringify(linked));
  await assertExitsCleanly(shiplog);
});

Deno.test("floods, endless lines, invalid UTF-8 and surviving children: memory bounded, cancel stops the group", async (t) => {
  await using dir = await makeTempDir();
  const script = join(dir.path, "deploy.sh");
  using ids = deploymentIds();
  const maxLogBytes = 20 * MB;
  await using shiplog = await spawnShiplog(dir.path, [
    "--max-running",
    "3",
    "--max-log-bytes",
    String(maxLogBytes),
    "--command",
    `sh ${script}`,
  ]);
  using memory = peakRss(shiplog.pid);
  const before = rss(shiplog.pid);
  /** Starts a deployment running `body`, once its script has been read (scripts are swapped by rename). */
  const deploy = async (body: string) => {
    await Deno.writeTextFile(`${script}.new`, `echo started\n${body}\n`);
    await Deno.rename(`${script}.new`, script);
    const id = await startDeployment(shiplog);
    ids.push(id);
    await waitFor("the script to start", async () => {
      const log = await Deno.readFile(join(dir.path, `${id}.log`));
      return log.length >= 8;
    }, { timeoutMs: 10_000 });
    return id;
  };
  /** Reads a deployment's events to the end, keeping only the count of bytes. */
  const drain = async (id: string) => {
    const response = await events(shiplog.url, id);
    let bytes = 0;
    for await (const chunk of response.body!) bytes += chunk.length;
    return bytes;
  };

  const flood = await deploy("yes $(head -c 200 /dev/zero | tr '\\0' x) | head -c 300000000");
  const endless = await deploy("head -c 200000000 /dev/zero | tr '\\0' y");
  const streamed = Promise.all([drain(flood), drain(endless)]);

  await t.step("a flood and an endless line end on their own, with logs capped", async () => {
    for (const id of [flood, endless]) {
      const record = await waitForStatus(shiplog, id, "succeeded", 30_000);
      assert.equal(record.exitCode, 0);
      const size = (await Deno.stat(join(dir.path, `${id}.log`))).size;
      assert.ok(size <= maxLogBytes + 200, `log of ${size} bytes`);
      const log = await Deno.readTextFile(join(dir.path, `${id}.log`));
      assert.match(log.slice(-200), /\[shiplog\] log truncated: it reached 20971520 bytes/);
    }
    const [floodBytes, endlessBytes] = await withDeadline("the viewers' streams", streamed, 10_000);
    // Each viewer got the whole (capped) log.
    assert.ok(floodBytes > (await Deno.stat(join(dir.path, `${flood}.log`))).size);
    assert.ok(endlessBytes > (await Deno.stat(join(dir.path, `${endless}.log`))).size);
    // The endless line is kept in pieces of 1 MiB.
    const endlessLog = await Deno.readTextFile(join(dir.path, `${endless}.log`));
    assert.equal(endlessLog.split("\n")[1].length, MB);
  });

  await t.step("invalid UTF-8 becomes U+FFFD; cancel stops the whole process group", async () => {
    const hostile = await deploy(
      "printf 'bad \\377\\376 bytes \\300\\n'; sleep 34 & (sleep 35 &); yes $(head -c 100 /dev/zero | tr '\\0' z)",
    );
    const lines: string[] = [];
    await readEvents(await events(shiplog.url, hostile), (event) => {
      if (event.type === "message") lines.push(event.data);
      return lines.length === 2;
    });
    assert.deepEqual(lines, ["started", "bad \uFFFD\uFFFD bytes \uFFFD"]);
    await waitFor("its children", () => processesOf(hostile).length >= 4);
    const record = await withDeadline("cancel", cancel(shiplog.url, hostile), 10_000);
    assert.equal(record.status, "cancelled");
    assert.deepEqual(processesOf(hostile), []);
  });

  await healthy(shiplog.url);
  console.log(`  RSS before ${Math.round(before / MB)} MB, peak ${Math.round(memory.peak / MB)} MB`);
  assert.ok(memory.peak < 300 * MB, `peak RSS ${memory.peak} bytes`);
  await assertExitsCleanly(shiplog);
});

Deno.test("5,000 event stream connects and aborts leave file descriptors and memory where they began", async () => {
  await using dir = await makeTempDir();
  using ids = deploymentIds();
  await using shiplog = await spawnShiplog(dir.path, [
    "--command",
    "seq 1 200; sleep 36",
  ]);
  const running = await startDeployment(shiplog);
  ids.push(running);
  await waitFor("the history", async () => await countLogLines(join(dir.path, `${running}.log`)) === 200);
  const urls = [
    new URL(`events/${running}`, shiplog.url),
    new URL(`events/${running}?lastEventId=150`, shiplog.url),
    new URL("events", shiplog.url),
  ];
  let streamsOpened = 0;
  /** Connects `total` times, 50 at a time; each reads the first bytes and aborts. */
  const churn = async (total: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < total) {
        const url = urls[next++ % urls.length];
        streamsOpened++;
        const controller = new AbortController();
        const response = await fetch(url, { signal: controller.signal });
        assert.equal(response.status, 200);
        const reader = response.body!.getReader();
        await reader.read();
        controller.abort();
        await reader.cancel().catch(() => {});
      }
    }));
  };
  const settled = async () => {
    await waitFor(
      "every stream to close",
      async () => await metric(shiplog, "shiplog_event_streams") === 0,
    );
  };
  // A first round grows the heap to its working size; what is measured is what more connections add.
  await churn(2000);
  await settled();
  await delay(200);
  const fdsBefore = fdCount(shiplog.pid);
  const rssBefore = rss(shiplog.pid);
  const started = performance.now();
  await withDeadline("5,000 connects", churn(5000), 40_000);
  const elapsed = performance.now() - started;
  await settled();
  let fdsAfter = 0;
  await waitFor(
    "the file descriptors to be released",
    () => (fdsAfter = fdCount(shiplog.pid)) <= fdsBefore + 3,
    {
      timeoutMs: 5000,
    },
  );
  const rssAfter = rss(shiplog.pid);
  console.log(
    `  5,000 connects in ${Math.round(elapsed)} ms; fds ${fdsBefore} -> ${fdsAfter}; RSS ${
      Math.round(rssBefore / MB)
    } -> ${Math.round(rssAfter / MB)} MB`,
  );
  assert.ok(rssAfter < rssBefore + 50 * MB, `RSS grew from ${rssBefore} to ${rssAfter} bytes`);
  assert.equal(await metric(shiplog, "shiplog_followed_logs"), 0);
  // Every connect opened exactly one stream, the list feed's included.
  assert.equal(await metric(shiplog, "shiplog_event_streams_opened_total"), streamsOpened);
  await healthy(shiplog.url);
  await assertExitsCleanly(shiplog);
});

Deno.test("a viewer that never reads is disconnected with memory bounded; another gets every line", async () => {
  await using dir = await makeTempDir();
  using ids = deploymentIds();
  // A heartbeat of 1 s: a viewer that reads nothing for two intervals is dropped.
  await using shiplog = await spawnShiplog(dir.path, [
    "--heartbeat",
    "1",
    "--command",
    "while :; do seq -f 'line %g padded to look like a real deploy line, more or less' 1 2000; sleep 0.01; done",
  ]);
  using memory = peakRss(shiplog.pid);
  const id = await startDeployment(shiplog);
  ids.push(id);
  // A long history first: a viewer that connects and never reads is stuck in the replay.
  await waitFor("5 MB of log", async () => (await Deno.stat(join(dir.path, `${id}.log`))).size > 5 * MB);
  let expected = 1;
  let gap = "";
  let done: SseEvent | undefined;
  const reading = events(shiplog.url, id).then((response) =>
    readEvents(response, (event) => {
      if (event.type === "message") {
        if (Number(event.id) !== expected && !gap) gap = `expected ${expected}, got ${event.id}`;
        expected = Number(event.id) + 1;
      } else if (event.type === "done") done = event;
    }, 30_000)
  );
  // Settled at once, so that a failure is reported by the assertion below rather than as an uncaught error.
  const readingEnd = reading.then((end) => end, (error: Error) => `failed: ${error.message}`);
  await waitFor("the reading viewer to follow", () => expected > 100_000);
  // The metrics requests below keep one connection of their own open: count it in.
  assert.equal(await metric(shiplog, "shiplog_slow_viewers_disconnected_total"), 0);
  const socketsBefore = socketCount(shiplog.pid);

  // Sends its request and never reads: only the socket buffers and the viewer's queue stand between it and us.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(shiplog.url).port) });
  try {
    await stalled.write(encoder.encode(`GET /events/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    await waitFor(
      "the stalled viewer to be disconnected",
      async () => await metric(shiplog, "shiplog_slow_viewers_disconnected_total") === 1,
      { timeoutMs: 20_000 },
    );
    const linesAtDisconnect = expected;
    assert.equal(await metric(shiplog, "shiplog_log_viewers"), 1);
    assert.equal(await metric(shiplog, "shiplog_event_streams"), 1);
    // Its queue is dropped, not kept for it: what it can still read is what the kernel's socket buffers hold,
    // and then the connection ends. (Deno's server only notices the ended body when the socket takes more
    // bytes, so a client that never reads keeps its socket, and only its socket, until it goes away.)
    let drained = 0;
    const buffer = new Uint8Array(MB);
    await withDeadline(
      "the stalled connection to end",
      (async () => {
        try {
          for (let read; (read = await stalled.read(buffer)) !== null;) drained += read;
        } catch (error) {
          if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
        }
      })(),
    );
    assert.ok(drained < 8 * MB, `a disconnected viewer could still read ${drained} bytes`);
    await waitFor("the stalled connection to be closed", () => socketCount(shiplog.pid) <= socketsBefore, {
      timeoutMs: 3000,
    });
    const socketsAfter = socketCount(shiplog.pid);
    await waitFor("the reading viewer to go on", () => expected > linesAtDisconnect + 10_000);
    assert.equal((await cancel(shiplog.url, id)).status, "cancelled");
    assert.equal(await withDeadline("the reading viewer's end", readingEnd), "ended");
    assert.equal(gap, "");
    assert.equal(done?.data, JSON.stringify({ status: "cancelled", exitCode: null }));
    const total = await countLogLines(join(dir.path, `${id}.log`));
    assert.equal(expected - 1, total, "the reading viewer got every line");
    assert.equal(await metric(shiplog, "shiplog_slow_viewers_disconnected_total"), 1);
    console.log(
      `  ${total} lines; drained ${
        Math.round(drained / 1000)
      } kB; sockets ${socketsBefore} -> ${socketsAfter}; peak RSS ${Math.round(memory.peak / MB)} MB`,
    );
    assert.ok(memory.peak < 300 * MB, `peak RSS ${memory.peak} bytes`);
  } finally {
    stalled.close();
  }
  await assertExitsCleanly(shiplog);
  // Disconnecting a slow viewer is expected: nothing to log.
  assert.equal(shiplog.stderr(), "");
});
