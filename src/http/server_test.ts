/**
 * Integration tests: a real shiplog (`startApp`) on a free port, real HTTP, the real `eventsource` client,
 * real files and real deploy commands.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { setImmediate } from "node:timers";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import { EventSource } from "npm:eventsource@5.1.5";
import { type Deployment, isFinal } from "../logs/deployment.ts";
import { Targets } from "../runs/targets.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  metricsText,
  startTestApp,
  type TestApp,
  TIMEOUT_MS,
} from "../testing/test_app.ts";
import { delay, deploymentRecord, makeTempDir, waitFor, waitForValue } from "../testing/test_helpers.ts";
import { parseUsersFile } from "./users_file.ts";

interface Received {
  type: string;
  id: string;
  data: string;
}

/** Follows an event stream with the real EventSource client until `done` (or `until`), with a deadline. */
async function follow(
  url: string | URL,
  options: { lastEventId?: string; until?: (events: Received[]) => boolean; timeoutMs?: number } = {},
): Promise<Received[]> {
  const events: Received[] = [];
  const source = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...init.headers,
          ...(options.lastEventId ? { "last-event-id": options.lastEventId } : {}),
        },
      }),
  });
  const until = options.until ?? ((all) => all.at(-1)?.type === "done");
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no end after ${options.timeoutMs ?? 10_000} ms; got ${JSON.stringify(events)}`)),
        options.timeoutMs ?? 10_000,
      );
      const record = (event: MessageEvent) => {
        events.push({ type: event.type, id: event.lastEventId, data: event.data });
        if (until(events)) {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const type of ["message", "status", "done", "reset", "deployments", "deployment", "removed"]) {
        source.addEventListener(type, record);
      }
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) {
          clearTimeout(timer);
          reject(new Error(`stream failed; got ${JSON.stringify(events)}`));
        }
      };
    });
  } finally {
    source.close();
  }
  return events;
}

/** Waits until `count` viewers follow deployment logs. */
async function waitForViewers(app: TestApp, count: number): Promise<void> {
  await waitFor(
    `${count} viewers`,
    async () => (await metricsText(app)).includes(`shiplog_log_viewers ${count}\n`),
    APP_WAIT,
  );
}

const lines = (events: Received[]) => events.filter((e) => e.type === "message").map((e) => e.data);
const ids = (events: Received[]) => events.filter((e) => e.type === "message").map((e) => Number(e.id));

async function append(app: TestApp, id: string, bytes: Uint8Array | string) {
  const file = await Deno.open(join(app.dir, `${id}.log`), { append: true });
  await file.write(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
  file.close();
}

Deno.test("a viewer gets the history first, then live lines, then done", async () => {
  await using app = await startTestApp({
    command: "echo one; echo two; sleep 0.6; echo three; sleep 0.3; echo four; exit 3",
  });
  const { id } = await createDeployment(app);
  await waitFor(
    "two lines written",
    async () => (await Deno.readTextFile(join(app.dir, `${id}.log`))).includes("two"),
    APP_WAIT,
  );
  const events = await follow(new URL(`events/${id}`, app.url));
  assert.deepEqual(lines(events), ["one", "two", "three", "four"]);
  assert.deepEqual(ids(events), [1, 2, 3, 4]);
  assert.equal(events[0].type, "status");
  assert.deepEqual(JSON.parse(events.at(-1)!.data), { status: "failed", exitCode: 3 });
  assert.equal((await getDeployment(app, id)).status, "failed");
});

Deno.test("lines appended by another process arrive whole: partial writes, a split character, CRLF", async () => {
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  const received = follow(new URL(`events/${id}`, app.url), { until: (e) => lines(e).length === 4 });
  await waitForViewers(app, 1);
  const euro = new TextEncoder().encode("price: 5€\n");
  await append(app, id, "hal");
  await delay(50);
  await append(app, id, "f a line\n");
  await append(app, id, euro.subarray(0, 9)); // ends inside the three bytes of €
  await delay(50);
  await append(app, id, euro.subarray(9));
  await append(app, id, "windows\r\n  two spaces\n");
  const events = await received;
  assert.deepEqual(lines(events), ["half a line", "price: 5€", "windows", "  two spaces"]);
  assert.deepEqual(ids(events), [1, 2, 3, 4]);
});

Deno.test("no log content can forge, split or end an event", async () => {
  const tricky = [
    "event: done",
    'data: {"status":"succeeded"}',
    "",
    "   leading spaces",
    "\tand a tab",
    "id: 999",
    ": a comment",
    "<script>alert(1)</script>",
  ];
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  await append(app, id, tricky.join("\n") + "\n");
  await append(app, id, "a lone\rcarriage return\n");
  await append(app, id, new Uint8Array([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a]));
  const big = "x".repeat(1024 * 1024);
  await append(app, id, big + "\n");
  const events = await follow(new URL(`events/${id}`, app.url), { until: (e) => lines(e).length === 11 });
  assert.deepEqual(lines(events), [...tricky, "a lone\ncarriage return", "bad\uFFFD\uFFFD", big]);
  assert.deepEqual(ids(events), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(events.filter((e) => e.type === "done").length, 0);
});

Deno.test("Last-Event-ID and ?lastEventId= resume strictly after that line", async (t) => {
  await using app = await startTestApp({ command: "for i in 1 2 3 4 5 6; do echo line $i; done" });
  const { id } = await createDeployment(app);
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  await t.step("header", async () => {
    const events = await follow(new URL(`events/${id}`, app.url), { lastEventId: "2" });
    assert.deepEqual(lines(events), ["line 3", "line 4", "line 5", "line 6"]);
    assert.deepEqual(ids(events), [3, 4, 5, 6]);
  });
  await t.step("query parameter", async () => {
    const events = await follow(new URL(`events/${id}?lastEventId=5`, app.url));
    assert.deepEqual(lines(events), ["line 6"]);
  });
  await t.step("an id that is not a whole number replays from the first line", async () => {
    for (const bad of ["abc", "-1", "1.5", "1e3", " ", "00000000000000000000001"]) {
      const events = await follow(new URL(`events/${id}?lastEventId=${encodeURIComponent(bad)}`, app.url));
      assert.deepEqual(ids(events), [1, 2, 3, 4, 5, 6], bad);
      assert.equal(events.filter((e) => e.type === "reset").length, 0, bad);
    }
  });
  await t.step(
    "an id past the end (the log was replaced meanwhile) gets reset, then the first line on",
    async () => {
      const events = await follow(new URL(`events/${id}`, app.url), { lastEventId: "99" });
      assert.deepEqual(events.filter((e) => e.type !== "status").map((e) => e.type).slice(0, 2), [
        "reset",
        "message",
      ]);
      assert.deepEqual(ids(events), [1, 2, 3, 4, 5, 6]);
    },
  );
  await t.step("a reconnection after done gets 204, and EventSource stops", async () => {
    const response = await fetch(new URL(`events/${id}`, app.url), { headers: { "last-event-id": "6" } });
    assert.equal(response.status, 204);
    const source = new EventSource(new URL(`events/${id}?lastEventId=6`, app.url));
    try {
      await waitFor("EventSource closed", () => source.readyState === EventSource.CLOSED, {
        ...APP_WAIT,
        timeoutMs: 3000,
      });
    } finally {
      source.close();
    }
  });
});

/**
 * Follows a finished deployment's stream to `done`, whose id must be the log's line count, and reconnects with
 * that id: 204, nothing more will come. Returns the status `done` carried.
 */
async function reconnectAfterDone(app: TestApp, id: string, lineCount: number): Promise<string> {
  const events = await follow(new URL(`events/${id}`, app.url));
  assert.equal(ids(events).length, lineCount);
  const done = events.at(-1)!;
  assert.equal(done.id, String(lineCount), "done carries the last line's number");
  const again = await fetch(new URL(`events/${id}`, app.url), {
    headers: { "last-event-id": done.id },
    signal: AbortSignal.timeout(5000),
  });
  await again.body?.cancel();
  assert.equal(again.status, 204);
  return JSON.parse(done.data).status;
}

Deno.test("a reconnection after done gets 204 whatever the deployment ended as", async (t) => {
  await t.step("failed (exit 1)", async () => {
    await using app = await startTestApp({ command: "echo one; echo two; exit 1" });
    const { id } = await createDeployment(app);
    await waitFor("the end", async () => isFinal((await getDeployment(app, id)).status), APP_WAIT);
    assert.equal(await reconnectAfterDone(app, id, 2), "failed");
  });
  await t.step("cancelled", async () => {
    await using app = await startTestApp({ command: "echo one; echo two; echo three; sleep 30" });
    const { id } = await createDeployment(app);
    await waitFor("three lines", async () => {
      return (await Deno.readTextFile(join(app.dir, `${id}.log`))).endsWith("three\n");
    }, APP_WAIT);
    const cancel = await fetch(new URL(`api/deployments/${id}/cancel`, app.url), { method: "POST" });
    assert.equal(cancel.status, 200, await cancel.text());
    // Its three lines and the notice of the cancel.
    assert.equal(await reconnectAfterDone(app, id, 4), "cancelled");
  });
  await t.step("interrupted (shiplog stopped under it), after a restart", async () => {
    await using temp = await makeTempDir();
    let id: string;
    {
      await using first = await startTestApp({ command: "echo one; sleep 30", dir: temp.path });
      id = (await createDeployment(first)).id;
      await waitFor("one line", async () => {
        return (await Deno.readTextFile(join(temp.path, `${id}.log`))).endsWith("one\n");
      }, APP_WAIT);
    }
    await using second = await startTestApp({ dir: temp.path });
    // Its line and the notice of the shutdown.
    assert.equal(await reconnectAfterDone(second, id, 2), "interrupted");
  });
});

Deno.test("EventSource of a finished deployment with an empty log gets done once and stops, with no replay loop", async () => {
  await using app = await startTestApp({ command: "true" });
  const { id } = await createDeployment(app);
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  const source = new EventSource(new URL(`events/${id}`, app.url));
  let opened = 0;
  let done = 0;
  source.addEventListener("open", () => opened++);
  source.addEventListener("done", () => done++);
  try {
    // It reconnects once, after the stream's retry of 2 s, with the id `done` carried: 204, and it stops.
    await waitFor("EventSource closed", () => source.readyState === EventSource.CLOSED, {
      ...APP_WAIT,
      timeoutMs: 5000,
    });
  } finally {
    source.close();
  }
  assert.deepEqual({ opened, done }, { opened: 1, done: 1 });
});

Deno.test("a viewer that resumes mid-deployment gets no gap and no duplicate", async () => {
  await using app = await startTestApp({
    command: "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo line $i; sleep 0.02; done",
  });
  const { id } = await createDeployment(app);
  const first = await follow(new URL(`events/${id}`, app.url), { until: (e) => lines(e).length >= 5 });
  const last = ids(first).at(-1)!;
  const rest = await follow(new URL(`events/${id}`, app.url), { lastEventId: String(last) });
  const all = [...ids(first), ...ids(rest)];
  assert.deepEqual(all, Array.from({ length: 30 }, (_, i) => i + 1));
});

Deno.test("a viewer that joins a log over 64 KiB while another writer appends to it gets every line once, in order", async () => {
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  // About 1 MB: the replay reads it in pieces, and the hub's follower skips it in passes, a turn of the event
  // loop each.
  const history = Array.from({ length: 20_000 }, (_, i) => `history ${i + 1} ${"x".repeat(40)}`);
  await append(app, id, history.join("\n") + "\n");
  // Another writer appends a line in every turn of the event loop: so also while the follower opens and while
  // the replay reads, where a viewer that joined the hub only after starting (or ending) its replay loses lines.
  using file = await Deno.open(join(app.dir, `${id}.log`), { append: true });
  const encoder = new TextEncoder();
  let written = 0;
  let writing = true;
  const wrote = Promise.withResolvers<void>();
  const appendOne = () => {
    if (!writing) {
      file.writeSync(encoder.encode("last\n"));
      return wrote.resolve();
    }
    file.writeSync(encoder.encode(`live ${++written}\n`));
    setImmediate(appendOne);
  };
  appendOne();
  let events: Received[];
  try {
    events = await follow(new URL(`events/${id}`, app.url), {
      until: (all) => {
        // The history has been replayed: the writer ends with one more line, the last one awaited.
        if (all.length > history.length) writing = false;
        return all.at(-1)?.data === "last";
      },
      timeoutMs: 30_000,
    });
  } finally {
    writing = false;
    await wrote.promise;
  }
  const expected = [...history, ...Array.from({ length: written }, (_, i) => `live ${i + 1}`), "last"];
  const got = ids(events);
  const wrong = got.findIndex((lineId, i) => lineId !== i + 1);
  assert.equal(
    wrong,
    -1,
    `event ${wrong + 1} of ${got.length} has id ${got[wrong]} (${written} lines appended live)`,
  );
  assert.equal(got.length, expected.length);
  assert.ok(lines(events).every((line, i) => line === expected[i]), "every line's text in its place");
});

Deno.test("an event stream has the right headers, is never compressed, and opens with a comment", async () => {
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  const response = await fetch(new URL(`events/${id}`, app.url), {
    headers: { "accept-encoding": "gzip, br" },
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-cache, no-transform");
  assert.equal(response.headers.get("x-accel-buffering"), "no");
  assert.equal(response.headers.get("content-encoding"), null);
  const reader = response.body!.getReader();
  const { value } = await reader.read();
  assert.ok(new TextDecoder().decode(value).startsWith(": connected\n\n"));
  await reader.cancel();
});

Deno.test("an idle stream gets heartbeat comments", async () => {
  await using app = await startTestApp({ command: "sleep 30", heartbeatSeconds: 1 });
  const { id } = await createDeployment(app);
  const response = await fetch(new URL(`events/${id}`, app.url));
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const started = Date.now();
  try {
    while (!text.includes(": heartbeat\n\n")) {
      assert.ok(Date.now() - started < 5000, `no heartbeat in ${text}`);
      text += (await reader.read()).value;
    }
  } finally {
    await reader.cancel();
  }
  assert.ok(Date.now() - started >= 900, "the heartbeat came before the stream was idle");
});

Deno.test("cancel stops a running deployment, its viewers get done, and a second cancel is 409", async () => {
  await using app = await startTestApp({ command: "echo started; sleep 30; echo never" });
  const { id } = await createDeployment(app);
  const received = follow(new URL(`events/${id}`, app.url));
  // Its first line written: the notice must come after it.
  const log = async () => await (await fetch(new URL(`deployments/${id}/log`, app.url))).text();
  await waitFor("the first line", async () => await log() === "started\n", APP_WAIT);
  const response = await fetch(new URL(`api/deployments/${id}/cancel`, app.url), { method: "POST" });
  assert.equal(response.status, 200);
  const record = await response.json();
  assert.equal(record.status, "cancelled");
  assert.equal(record.cancelledBy, null, "nobody named: no users");
  const events = await received;
  assert.deepEqual(JSON.parse(events.at(-1)!.data), { status: "cancelled", exitCode: null });
  assert.deepEqual(lines(events), ["started", "shiplog: cancelled"], "the notice, after the output");
  const again = await fetch(new URL(`api/deployments/${id}/cancel`, app.url), { method: "POST" });
  assert.equal(again.status, 409);
  assert.match(await again.text(), /already ended \(cancelled\)/);
});

Deno.test("a line appended to the file after the deployment ended is in the raw log and the history a new viewer gets", async () => {
  await using app = await startTestApp({ command: "echo one" });
  const { id } = await createDeployment(app);
  await waitFor("ended", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  await Deno.writeTextFile(join(app.dir, `${id}.log`), "two\n", { append: true });
  const raw = await fetch(new URL(`deployments/${id}/log`, app.url));
  assert.equal(await raw.text(), "one\ntwo\n");
  const events = await follow(new URL(`events/${id}`, app.url));
  assert.deepEqual(lines(events), ["one", "two"]);
  assert.deepEqual([events.at(-1)!.type, events.at(-1)!.id], ["done", "2"]);
});

Deno.test("cancel records the signed-in user as cancelledBy and names them in the log; the unnamed token names nobody", async () => {
  const token = "the-unnamed-team-token";
  await using app = await startTestApp({
    token,
    users: parseUsersFile("alice:alices-own-token\nbob:bobs-own-token\n", "users"),
    command: "echo started; sleep 30",
  });
  const as = (user: string) => ({ authorization: `Bearer ${user}` });
  const post = async (path: string, headers: Record<string, string>) => {
    const response = await fetch(new URL(path, app.url), {
      method: "POST",
      headers: { accept: "application/json", ...headers },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
    return await response.json() as Deployment;
  };
  const logOf = async (id: string) => await Deno.readTextFile(join(app.dir, `${id}.log`));
  const running = await post("start", as("alices-own-token"));
  const queued = await post("start", as("alices-own-token"));
  await waitFor("its first line", async () => (await logOf(running.id)).startsWith("started\n"), APP_WAIT);

  // The queued one first: once the running one has ended, it would run.
  const unnamed = await post(`api/deployments/${queued.id}/cancel`, as(token));
  assert.deepEqual([unnamed.status, unnamed.cancelledBy], ["cancelled", null]);
  assert.equal(await logOf(queued.id), "shiplog: cancelled\n", "queued: the notice alone");
  const byBob = await post(`api/deployments/${running.id}/cancel`, as("bobs-own-token"));
  assert.deepEqual([byBob.status, byBob.startedBy, byBob.cancelledBy], ["cancelled", "alice", "bob"]);
  assert.equal(await logOf(running.id), "started\nshiplog: cancelled by bob\n");
});

Deno.test("deployments beyond --max-running wait queued, first in first out", async () => {
  await using app = await startTestApp({ command: "sleep 0.3", maxRunning: 1 });
  const first = await createDeployment(app);
  const second = await createDeployment(app);
  assert.equal((await getDeployment(app, second.id)).status, "queued");
  await waitFor(
    "both ended",
    async () => (await getDeployment(app, second.id)).status === "succeeded",
    APP_WAIT,
  );
  const [a, b] = [await getDeployment(app, first.id), await getDeployment(app, second.id)];
  assert.ok(a.finishedAt! <= b.startedAt!, "the second started before the first ended");
});

Deno.test("POST /start answers a form with 303 and JSON with 201; the built-in deployment succeeds", async () => {
  await using app = await startTestApp();
  const form = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "",
    redirect: "manual",
  });
  assert.equal(form.status, 303);
  const location = form.headers.get("location")!;
  await form.body?.cancel();
  assert.match(location, /^\/deployment\/[0-9a-f-]{36}$/);
  const page = await fetch(new URL(location, app.url));
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  const id = location.split("/").at(-1)!;
  const events = await follow(new URL(`events/${id}`, app.url), { timeoutMs: 15_000 });
  assert.ok(
    lines(events).some((line) => line.includes("[8/8]")),
    "the simulated deployment reports progress",
  );
  assert.deepEqual(JSON.parse(events.at(-1)!.data), { status: "succeeded", exitCode: 0 });
});

Deno.test("the raw log, the JSON API, health and metrics", async () => {
  await using app = await startTestApp({ command: "printf 'a\\nb\\n'" });
  const { id } = await createDeployment(app);
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  const raw = await fetch(new URL(`deployments/${id}/log`, app.url));
  assert.equal(raw.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await raw.text(), "a\nb\n");
  const list: Deployment[] = await (await fetch(new URL("api/deployments", app.url))).json();
  assert.deepEqual(list.map((d) => d.id), [id]);
  assert.equal(list[0].exitCode, 0);
  assert.equal(await (await fetch(new URL("healthz", app.url))).text(), "ok\n");
  const metrics = await metricsText(app);
  assert.match(metrics, /^shiplog_deployments\{status="succeeded"\} 1$/m);
  assert.match(metrics, /^shiplog_deployments_started_total 1$/m);
});

Deno.test("unknown and non-canonical ids are 404, wrong methods 405 with Allow", async () => {
  await using app = await startTestApp({ command: "true" });
  const { id } = await createDeployment(app);
  const unknown = crypto.randomUUID();
  for (
    const path of [
      `events/${unknown}`,
      `deployment/${unknown}`,
      `api/deployments/${unknown}`,
      `deployments/${unknown}/log`,
      `events/${id.toUpperCase()}`,
      `events/{${id}}`,
      `api/deployments/${id}.json`,
      `events/..%2F${id}`,
      `deployments/%2e%2e/log`,
      `deployments/..%5C..%5Cetc/log`,
      `events/${id}%00`,
      `events/${"a".repeat(5000)}`,
      "static/..%2Fdeno.json",
      "nope",
    ]
  ) {
    const response = await fetch(new URL(path, app.url));
    assert.equal(response.status, 404, path);
    assert.match(await response.text(), /^(Not found|No such deployment)\n$/, path);
  }
  for (
    const [method, path, allow] of [
      ["POST", "", "GET, HEAD"],
      ["PUT", "start", "GET, HEAD, POST"],
      ["DELETE", `events/${id}`, "GET, HEAD"],
      ["GET", `api/deployments/${id}/cancel`, "POST"],
      ["PUT", "api/deployments", "GET, HEAD"],
    ]
  ) {
    const response = await fetch(new URL(path, app.url), { method });
    assert.equal(response.status, 405, `${method} /${path}`);
    assert.equal(response.headers.get("allow"), allow);
    await response.body?.cancel();
  }
});

Deno.test("POST /start with the same key twice makes one deployment; the home page's form carries a fresh key", async () => {
  await using app = await startTestApp({ command: "true" });
  const homeResponse = await fetch(app.url);
  // Not kept for Back: the page shown again must carry a new key.
  assert.equal(homeResponse.headers.get("cache-control"), "no-store");
  const home = await homeResponse.text();
  const key = /<input type="hidden" name="key" value="([0-9a-f-]{36})">/.exec(home)?.[1];
  assert.ok(key, "the form's key");
  const press = () =>
    fetch(new URL("start", app.url), {
      method: "POST",
      body: new URLSearchParams({ key }),
      redirect: "manual",
    });
  // Both at once, as a double click sends them: the second must find the first's deployment.
  const [first, second] = await Promise.all([press(), press()]);
  assert.deepEqual([first.status, second.status], [303, 303]);
  assert.equal(second.headers.get("location"), first.headers.get("location"));
  await Promise.all([first.body?.cancel(), second.body?.cancel()]);
  const api = (headers: Record<string, string>) =>
    fetch(new URL("start", app.url), { method: "POST", headers: { accept: "application/json", ...headers } })
      .then((response) => response.json());
  const viaHeader = await api({ "idempotency-key": "api-key-0001" });
  assert.equal((await api({ "idempotency-key": "api-key-0001" })).id, viaHeader.id);
  const list: Deployment[] = await (await fetch(new URL("api/deployments", app.url))).json();
  assert.equal(list.length, 2);
  assert.notEqual(key, /name="key" value="([^"]+)"/.exec(await (await fetch(app.url)).text())?.[1]);
  const malformed = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { "idempotency-key": "has space" },
  });
  assert.equal(malformed.status, 400);
  await malformed.body?.cancel();
});

Deno.test("past --max-queued, Start is 503 with the reason, a page for the form, and creates nothing", async () => {
  await using app = await startTestApp({ command: "sleep 30", maxRunning: 1, maxQueued: 2 });
  const running = await createDeployment(app);
  await waitFor(
    "the first to run",
    async () => (await getDeployment(app, running.id)).status === "running",
    APP_WAIT,
  );
  for (let i = 0; i < 2; i++) await createDeployment(app);
  const message =
    "Cannot start a deployment: 2 are queued already (--max-queued 2); try again once some have started";

  const api = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { accept: "application/json" },
  });
  assert.equal(api.status, 503);
  assert.deepEqual(await api.json(), { error: message });
  // The home page's form, sent by a browser: the message as a page with the way home.
  const form = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    body: new URLSearchParams({ key: crypto.randomUUID() }),
    redirect: "manual",
  });
  assert.equal(form.status, 503);
  assert.equal(form.headers.get("content-type"), "text/html; charset=utf-8");
  const page = await form.text();
  assert.match(page, /<h1>503 Service Unavailable<\/h1>/);
  assert.ok(page.includes(`<p>${message}</p>`), page);
  assert.match(page, /<a href="\/">/);

  const list: Deployment[] = await (await fetch(new URL("api/deployments", app.url))).json();
  assert.equal(list.length, 3, "nothing created");
  assert.match(await metricsText(app), /^shiplog_deployments_started_total 3$/m);
});

Deno.test("a browser that asks for an unknown page gets an HTML page with the message and a link home", async () => {
  await using app = await startTestApp({ command: "true" });
  const unknown = crypto.randomUUID();
  const browser = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
  const page = await fetch(new URL(`deployment/${unknown}`, app.url), { headers: browser });
  assert.equal(page.status, 404);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await page.text();
  assert.match(html, /<title>404 Not Found · shiplog<\/title>/);
  assert.match(html, /<p>No such deployment<\/p>/);
  assert.match(html, /<a href="\/">/);
  // A wrong method keeps its Allow header; a client that does not ask for HTML gets the line of text.
  const wrong = await fetch(new URL("api/deployments", app.url), { method: "POST", headers: browser });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET, HEAD");
  assert.match(await wrong.text(), /<p>Method POST is not allowed here; allowed: GET, HEAD<\/p>/);
  const head = await fetch(new URL(`deployment/${unknown}`, app.url), { method: "HEAD", headers: browser });
  assert.deepEqual([head.status, head.headers.get("content-type")], [404, "text/html; charset=utf-8"]);
  await head.body?.cancel();
  const api = await fetch(new URL(`api/deployments/${unknown}`, app.url));
  assert.equal(api.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await api.text(), "No such deployment\n");
});

Deno.test("200 viewers of one deployment each get every line once, in order", async () => {
  await using app = await startTestApp({
    command: "sleep 0.5; i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; sleep 0.01; done",
  });
  const { id } = await createDeployment(app);
  const all = await Promise.all(
    Array.from({ length: 200 }, () => follow(new URL(`events/${id}`, app.url), { timeoutMs: 20_000 })),
  );
  const expected = Array.from({ length: 50 }, (_, i) => `line ${i + 1}`);
  for (const events of all) assert.deepEqual(lines(events), expected);
});

Deno.test("viewers of 130 deployments at once are served by one directory watcher", async () => {
  // More than the 128 inotify instances a user may have: a watcher per viewer would fail here. One target runs
  // one deployment at a time: the viewers of those still queued wait for their logs to be written, meanwhile.
  await using app = await startTestApp({
    command: "sleep 0.05; echo first; sleep 0.05; echo second",
    maxRunning: 130,
  });
  const deployments = await Promise.all(Array.from({ length: 130 }, () => createDeployment(app)));
  const all = await Promise.all(
    deployments.map(({ id }) => follow(new URL(`events/${id}`, app.url), { timeoutMs: 60_000 })),
  );
  for (const events of all) assert.deepEqual(lines(events), ["first", "second"]);
});

Deno.test("a viewer that stops reading is disconnected; the others are not held back", async () => {
  // A heartbeat of 1 s: a viewer that reads nothing for two intervals is dropped.
  await using app = await startTestApp({ command: "sleep 30", heartbeatSeconds: 1 }, {
    maxQueueBytes: 2 * 1024 * 1024,
  });
  const { id } = await createDeployment(app);
  // A client that sends its request and never reads: only the kernel's socket buffers stand between it and us.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(app.url).port) });
  await stalled.write(new TextEncoder().encode(`GET /events/${id} HTTP/1.1\r\nHost: localhost\r\n\r\n`));
  try {
    const line = "y".repeat(10_000);
    const fast = follow(new URL(`events/${id}`, app.url), {
      until: (e) => lines(e).length === 2400,
      timeoutMs: 30_000,
    });
    await waitForViewers(app, 2);
    for (let i = 0; i < 240; i++) {
      // 24 MB in all: more than the kernel's socket buffers hold, at a pace a reading client keeps up with.
      await append(app, id, `${line}\n`.repeat(10));
      await delay(10);
    }
    const events = await fast;
    assert.deepEqual(ids(events), Array.from({ length: 2400 }, (_, i) => i + 1));
    const metrics = await waitForValue("the slow viewer dropped", async () => {
      const text = await metricsText(app);
      return /^shiplog_log_viewers 0$/m.test(text) ? text : undefined;
    }, APP_WAIT);
    // Exactly one: the reading viewer was never dropped for being slow.
    assert.match(metrics, /^shiplog_slow_viewers_disconnected_total 1$/m);
  } finally {
    stalled.close();
  }
});

/** Reads an event stream's body until `count` log lines have come, and returns their ids in order. */
async function readIds(body: ReadableStream<Uint8Array>, count: number): Promise<number[]> {
  const ids: number[] = [];
  let text = "";
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    while (ids.length < count) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended after ${ids.length} lines`);
      text += decoder.decode(value, { stream: true });
      const events = text.split("\n\n");
      text = events.pop()!;
      for (const event of events) {
        const id = /^id: (\d+)$/m.exec(event);
        if (id && /^data: /m.test(event)) ids.push(Number(id[1]));
      }
    }
  } finally {
    await reader.cancel();
  }
  return ids;
}

Deno.test("a viewer far behind the others in a burst reads on from the log, with no reconnection and no line lost", async () => {
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  const fast = follow(new URL(`events/${id}`, app.url), {
    until: (e) => lines(e).length === 2000,
    timeoutMs: 30_000,
  });
  const slow = await fetch(new URL(`events/${id}`, app.url));
  await waitForViewers(app, 2);
  // 20 MB at once, while the slow viewer reads nothing: the log is read as fast as the other one takes it, so
  // the slow one falls more than its queue may hold (8 MiB) behind.
  await append(app, id, `${"b".repeat(10_000)}\n`.repeat(2000));
  const everyLine = Array.from({ length: 2000 }, (_, i) => i + 1);
  assert.deepEqual(ids(await fast), everyLine);
  assert.deepEqual(await readIds(slow.body!, 2000), everyLine);
  const metrics = await metricsText(app);
  assert.match(metrics, /^shiplog_viewers_behind_total 1$/m, "only the slow viewer reads from the file");
  assert.match(metrics, /^shiplog_event_streams_opened_total 2$/m, "a viewer had to reconnect");
  assert.match(metrics, /^shiplog_slow_viewers_disconnected_total 0$/m);
});

Deno.test("a viewer that read further than the live lines gets only the rest of the next batch", async () => {
  // No safety poll during the test: the follower reads only when notified.
  await using app = await startTestApp({ command: "sleep 30" }, { pollIntervalMs: 60_000 });
  const { id } = await createDeployment(app);
  const first = follow(new URL(`events/${id}`, app.url), { until: (e) => lines(e).length === 4 });
  await waitForViewers(app, 1);
  // Appended through a hard link in another directory: no notification, so the follower does not read them.
  await using elsewhere = await makeTempDir();
  const link = join(elsewhere.path, "link.log");
  await Deno.link(join(app.dir, `${id}.log`), link);
  await Deno.writeTextFile(link, "one\ntwo\nthree\n", { append: true });
  // A second viewer replays the file, these three lines included, and goes live.
  const second = follow(new URL(`events/${id}`, app.url), { until: (e) => lines(e).length === 4 });
  await waitFor(
    "its replay",
    async () => (await metricsText(app)).includes("shiplog_log_lines_sent_total 3"),
    APP_WAIT,
  );
  // Now the follower reads all four lines as one batch: the second viewer must get only the fourth.
  await append(app, id, "four\n");
  for (const events of [await first, await second]) {
    assert.deepEqual(lines(events), ["one", "two", "three", "four"]);
    assert.deepEqual(ids(events), [1, 2, 3, 4]);
  }
});

Deno.test("a viewer that stops reading during its replay is disconnected and releases the log", async () => {
  await using app = await startTestApp({ command: "true", heartbeatSeconds: 1, maxViewersPerClient: 1 });
  const { id } = await createDeployment(app);
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  // 24 MB of history: more than the socket buffers hold, so the replay has to wait for the client.
  await append(app, id, `${"z".repeat(10_000)}\n`.repeat(2400));
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(app.url).port) });
  try {
    await stalled.write(new TextEncoder().encode(`GET /events/${id} HTTP/1.1\r\nHost: localhost\r\n\r\n`));
    await waitFor("the stalled replay dropped", async () => {
      const text = await metricsText(app);
      return /^shiplog_slow_viewers_disconnected_total 1$/m.test(text) &&
        /^shiplog_event_streams 0$/m.test(text);
    }, APP_WAIT);
    // Its socket stays open while the client does, full of what it did not read: it keeps its place under
    // the per-address cap until it goes, so a client cannot pile up stalled connections past the cap.
    const refused = await fetch(new URL(`events/${id}`, app.url));
    assert.equal(refused.status, 429);
    await refused.body?.cancel();
  } finally {
    stalled.close();
  }
  await waitFor("its place freed once it went", async () => {
    const response = await fetch(new URL(`events/${id}`, app.url));
    await response.body?.cancel();
    return response.status === 200;
  }, APP_WAIT);
});

Deno.test("a log replaced by a FIFO reads as empty and blocks nothing", async () => {
  await using app = await startTestApp({ command: "sleep 30" });
  const { id } = await createDeployment(app);
  await waitFor("running", async () => (await getDeployment(app, id)).status === "running", APP_WAIT);
  const log = join(app.dir, `${id}.log`);
  await Deno.remove(log);
  const made = await new Deno.Command("mkfifo", { args: [log] }).output();
  assert.ok(made.success, `mkfifo failed: ${new TextDecoder().decode(made.stderr)}`);
  const raw = await fetch(new URL(`deployments/${id}/log`, app.url), { signal: AbortSignal.timeout(5000) });
  assert.equal(await raw.text(), "");
  const stream = await fetch(new URL(`events/${id}`, app.url), { signal: AbortSignal.timeout(5000) });
  assert.equal(stream.status, 200);
  await stream.body?.cancel();
  await delay(1200); // a safety poll of the (now FIFO) log has passed
  const health = await fetch(new URL("healthz", app.url), { signal: AbortSignal.timeout(5000) });
  assert.equal(await health.text(), "ok\n");
});

Deno.test("a log that cannot be read (a symlink loop) reads as empty: no 500, and the viewer gets done", async (t) => {
  await using app = await startTestApp({ command: "echo hello; sleep 0.3" });
  const { id } = await createDeployment(app);
  const log = join(app.dir, `${id}.log`);
  // Put in place by a rename, at once: between a remove and a symlink, the runner's next write makes the log anew.
  const loop = async () => {
    await Deno.symlink(log, `${log}.loop`);
    await Deno.rename(`${log}.loop`, log);
  };
  await t.step("while it runs, the stream opens", async () => {
    await waitFor("running", async () => (await getDeployment(app, id)).status === "running", APP_WAIT);
    await loop();
    const stream = await fetch(new URL(`events/${id}`, app.url), { signal: AbortSignal.timeout(5000) });
    assert.equal(stream.status, 200);
    await stream.body?.cancel();
  });
  await t.step("once it ended: an empty log, done, and 204 on the reconnection", async () => {
    await waitFor("the end", async () => isFinal((await getDeployment(app, id)).status), APP_WAIT);
    if (!(await Deno.lstat(log)).isSymlink) await loop(); // the runner's last write may have replaced it
    const raw = await fetch(new URL(`deployments/${id}/log`, app.url), { signal: AbortSignal.timeout(5000) });
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), "");
    const events = await follow(new URL(`events/${id}`, app.url));
    assert.deepEqual(events.map((e) => e.type), ["status", "done"]);
    assert.equal(events[1].id, "0");
    const again = await fetch(new URL(`events/${id}`, app.url), { headers: { "last-event-id": "0" } });
    assert.equal(again.status, 204);
  });
});

Deno.test("the home feed sends the list, then every change", async () => {
  await using app = await startTestApp({ command: "sleep 0.2" });
  const earlier = await createDeployment(app);
  const received = follow(new URL("events", app.url), {
    until: (events) =>
      events.some((e) =>
        e.type === "deployment" && JSON.parse(e.data).status === "succeeded" &&
        JSON.parse(e.data).id !== earlier.id
      ),
  });
  await waitFor(
    "the feed",
    async () => (await metricsText(app)).includes("shiplog_event_streams 1"),
    APP_WAIT,
  );
  const later = await createDeployment(app);
  const events = await received;
  assert.equal(events[0].type, "deployments");
  assert.ok(JSON.parse(events[0].data).some((d: Deployment) => d.id === earlier.id));
  const statuses = events.filter((e) => e.type === "deployment").map((e) => JSON.parse(e.data)).filter((d) =>
    d.id === later.id
  ).map((d) => d.status);
  assert.deepEqual(statuses, ["queued", "running", "succeeded"]);
});

Deno.test("the home feed says which deployment --keep deleted", async () => {
  await using app = await startTestApp({ command: "true", keep: 1 });
  const first = await createDeployment(app);
  await waitFor(
    "the first to end",
    async () => (await getDeployment(app, first.id)).status === "succeeded",
    APP_WAIT,
  );
  const received = follow(new URL("events", app.url), {
    until: (events) => events.some((e) => e.type === "removed"),
  });
  await waitFor(
    "the feed",
    async () => (await metricsText(app)).includes("shiplog_event_streams 1"),
    APP_WAIT,
  );
  await createDeployment(app);
  const events = await received;
  assert.deepEqual(events.filter((e) => e.type === "removed").map((e) => e.data), [first.id]);
  const listed = await (await fetch(new URL("api/deployments", app.url))).json();
  assert.ok(!listed.some((d: Deployment) => d.id === first.id));
});

Deno.test("a start that fails (its port taken) lets go of the directory: the next start opens it at once", async () => {
  await using temp = await makeTempDir();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(startTestApp({ dir: temp.path, port: taken.addr.port }), Deno.errors.AddrInUse);
  } finally {
    taken.close();
  }
  const started = performance.now();
  await using app = await startTestApp({ dir: temp.path });
  assert.equal(await fetch(new URL("healthz", app.url)).then((r) => r.text()), "ok\n");
  assert.ok(performance.now() - started < 1000, "it did not wait for a lock this process still held");
});

/** Writes `records` (and an empty log each) into `dir`, as an earlier shiplog would have left them. */
async function writeRecords(dir: string, records: Deployment[]): Promise<void> {
  for (const record of records) {
    await Deno.writeTextFile(join(dir, `${record.id}.json`), JSON.stringify(record));
    await Deno.writeTextFile(join(dir, `${record.id}.log`), "");
  }
}

/** `POST /api/deployments/<id>/rerun` with `init`'s headers and body, not following a redirect. */
function rerun(app: TestApp, id: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(`api/deployments/${id}/rerun`, app.url), {
    method: "POST",
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
    ...init,
  });
}

const FINISHED = {
  status: "succeeded",
  startedAt: "2026-11-24T08:00:01.000Z",
  finishedAt: "2026-11-24T08:00:09.000Z",
  exitCode: 0,
} as const;

Deno.test("rerun makes a new deployment of the same target and params, 201 for JSON and 303 for a form", async (t) => {
  await using dir = await makeTempDir();
  const old = deploymentRecord({
    ...FINISHED,
    params: { version: "v1.4.2", region: "eu" },
    startedBy: "alice",
  });
  await writeRecords(dir.path, [old]);
  // The one target, with the parameters the old deployment has: a re-run meets the target's rules of now.
  const free = { description: null, default: null, required: false, choices: null, pattern: null };
  const targets = new Targets([{
    name: "default",
    description: null,
    command: "echo again",
    cwd: null,
    params: new Map([["version", free], ["region", free]]),
  }]);
  await using app = await startTestApp({ dir: dir.path, command: "echo again", targets });

  await t.step(
    "JSON: 201 with the new record, rerunOf the old one, run with the target's command",
    async () => {
      const response = await rerun(app, old.id, { headers: { accept: "application/json" } });
      assert.equal(response.status, 201);
      const record: Deployment = await response.json();
      assert.notEqual(record.id, old.id);
      assert.deepEqual(
        { target: record.target, params: record.params, rerunOf: record.rerunOf, command: record.command },
        {
          target: "default",
          params: { version: "v1.4.2", region: "eu" },
          rerunOf: old.id,
          command: "echo again",
        },
      );
      // Nobody named sent it (no users): not the old deployment's author.
      assert.equal(record.startedBy, null);
      await waitFor(
        "the re-run to succeed",
        async () => (await getDeployment(app, record.id)).status === "succeeded",
        APP_WAIT,
      );
      assert.equal(await (await fetch(new URL(`deployments/${record.id}/log`, app.url))).text(), "again\n");
    },
  );

  await t.step("a form: 303 to the new page; the same key again gets the same deployment", async () => {
    const key = crypto.randomUUID();
    const press = () =>
      rerun(app, old.id, {
        headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
        body: new URLSearchParams({ key }),
      });
    const [first, second] = await Promise.all([press(), press()]);
    assert.deepEqual([first.status, second.status], [303, 303]);
    const location = first.headers.get("location") ?? "";
    assert.match(location, /^\/deployment\/[0-9a-f-]{36}$/);
    assert.equal(second.headers.get("location"), location);
    await Promise.all([first.body?.cancel(), second.body?.cancel()]);
    const record = await getDeployment(app, location.split("/").at(-1)!);
    assert.equal(record.rerunOf, old.id);
    // The Idempotency-Key header does the same for an API client.
    const api = () =>
      rerun(app, old.id, { headers: { accept: "application/json", "idempotency-key": "rerun-key-1" } })
        .then((response) => response.json());
    assert.equal((await api()).id, (await api()).id);
    const list: Deployment[] = await (await fetch(new URL("api/deployments", app.url))).json();
    assert.equal(list.filter(({ rerunOf }) => rerunOf === old.id).length, 3, "one per key, and the JSON one");
    assert.match(await metricsText(app), /^shiplog_deployments_started_total 3$/m);
  });

  await t.step("a re-run of a re-run points at the one it repeats", async () => {
    const [again] = (await (await fetch(new URL("api/deployments", app.url))).json() as Deployment[])
      .filter(({ rerunOf }) => rerunOf === old.id);
    await waitFor("it to end", async () => isFinal((await getDeployment(app, again.id)).status), APP_WAIT);
    const response = await rerun(app, again.id, { headers: { accept: "application/json" } });
    assert.equal(response.status, 201);
    assert.equal((await response.json()).rerunOf, again.id);
  });
});

Deno.test("rerun refuses what it cannot run again: 404, 409 under way or target gone, 400, 405, 415, 503", async (t) => {
  await using dir = await makeTempDir();
  const gone = deploymentRecord({ ...FINISHED, target: "staging", params: { version: "v1" } });
  const finished = deploymentRecord(FINISHED);
  await writeRecords(dir.path, [gone, finished]);
  await using app = await startTestApp({ dir: dir.path, command: "sleep 30", maxRunning: 1, maxQueued: 1 });
  const count = async () => (await (await fetch(new URL("api/deployments", app.url))).json()).length;
  /** The answer is `status` with `message`: as `{"error"}` to a client that accepts JSON, else a line. */
  const refused = async (response: Response, status: number, message: string) => {
    assert.equal(response.status, status);
    if (response.headers.get("content-type") === "application/json") {
      assert.deepEqual(await response.json(), { error: message });
    } else {
      assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
      assert.equal(await response.text(), `${message}\n`);
    }
  };

  await t.step("404 for an unknown id and for anything but a canonical one", async () => {
    await refused(await rerun(app, crypto.randomUUID()), 404, "No such deployment");
    await refused(await rerun(app, finished.id.toUpperCase()), 404, "No such deployment");
  });

  await t.step("409 when its target is no longer configured, and the page says so by Run again", async () => {
    const json = await rerun(app, gone.id, { headers: { accept: "application/json" } });
    assert.equal(json.headers.get("content-type"), "application/json", "asked for JSON, it gets JSON");
    await refused(
      json,
      409,
      `Cannot run deployment ${gone.id} again: its target "staging" is no longer configured`,
    );
    // A browser's form gets the message as a page with the way home.
    const page = await rerun(app, gone.id, {
      headers: { accept: "text/html" },
      body: new URLSearchParams({ key: crypto.randomUUID() }),
    });
    assert.equal(page.status, 409);
    assert.match(
      await page.text(),
      /<p>Cannot run deployment [0-9a-f-]{36} again: its target &#34;staging&#34;/,
    );
    const html = await (await fetch(new URL(`deployment/${gone.id}`, app.url))).text();
    assert.match(
      html,
      /<button type="submit" class="button primary" disabled aria-describedby="run-again-refused">/,
    );
    assert.match(html, /Cannot run it again: its target &#34;staging&#34; is no longer configured/);
    const ok = await (await fetch(new URL(`deployment/${finished.id}`, app.url))).text();
    // Its Run again button is enabled (the search buttons start disabled, till there is a match).
    assert.match(ok, /<button type="submit" class="button primary">Run again<\/button>/);
  });

  await t.step("409 while it is running or queued: it is run again once it has ended", async () => {
    const running = await createDeployment(app);
    await waitFor(
      "it to run",
      async () => (await getDeployment(app, running.id)).status === "running",
      APP_WAIT,
    );
    await refused(
      await rerun(app, running.id),
      409,
      `Deployment ${running.id} has not ended yet (running); run it again once it has`,
    );
    const queued = await createDeployment(app);
    await refused(
      await rerun(app, queued.id),
      409,
      `Deployment ${queued.id} has not ended yet (queued); run it again once it has`,
    );
  });

  await t.step("503 past --max-queued, creating nothing", async () => {
    const before = await count();
    await refused(
      await rerun(app, finished.id, { headers: { accept: "application/json" } }),
      503,
      "Cannot start a deployment: 1 are queued already (--max-queued 1); try again once some have started",
    );
    assert.equal(await count(), before);
  });

  await t.step("400 for a malformed key, 415 for a body type it does not take, 405 for GET", async () => {
    await refused(
      await rerun(app, finished.id, { headers: { "idempotency-key": "has space" } }),
      400,
      "Cannot use the start key: expected 1 to 255 visible ASCII characters",
    );
    await refused(
      await rerun(app, finished.id, { headers: { "content-type": "image/png" }, body: "x" }),
      415,
      "Unsupported content type image/png; expected one of application/x-www-form-urlencoded, " +
        "multipart/form-data, application/json",
    );
    const get = await fetch(new URL(`api/deployments/${finished.id}/rerun`, app.url));
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    await get.body?.cancel();
  });
});
