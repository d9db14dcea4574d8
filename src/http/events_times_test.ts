/**
 * The `times` events of `GET /events/<id>?times=1`, and that a client that does not ask for them gets the
 * stream as it always was, byte for byte: against a real shiplog (`startTestApp`), real deploy commands writing
 * to stdout and stderr, raw HTTP and the real `eventsource` client.
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import { EventSource } from "npm:eventsource@5.1.5";
import type { Deployment } from "../logs/deployment.ts";
import type { LinesPage } from "./lines_response.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  type Listening,
  startTestApp,
  TIMEOUT_MS,
} from "../testing/test_app.ts";
import { waitFor } from "../testing/test_helpers.ts";

/** One event of a stream's text: its fields as sent (a comment or `retry:` alone is an event with none of them). */
interface WireEvent {
  event?: string;
  id?: string;
  data?: string;
}

async function streamText(
  app: Listening,
  path: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const response = await fetch(new URL(path, app.url), { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(response.status, 200, await response.clone().text());
  return await response.text();
}

/** The events of a stream's text, in order (this server writes one `data:` line per event here). */
function parse(text: string): WireEvent[] {
  return text.split("\n\n").filter((block) => block !== "").map((block) => {
    const event: WireEvent = {};
    for (const line of block.split("\n")) {
      const [field, value] = [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)];
      if (field === "event" || field === "id" || field === "data") event[field] = value;
    }
    return event;
  });
}

/** What a stream without `?times=1` carried before times were kept, for a deployment that has ended. */
function oldStream(deployment: Deployment, lines: string[]): string {
  return ": connected\n\nretry: 2000\n\n" +
    `event: status\ndata: ${JSON.stringify(deployment)}\n\n` +
    lines.map((line, i) => `id: ${i + 1}\ndata: ${line}\n\n`).join("") +
    `event: done\nid: ${lines.length}\ndata: ${
      JSON.stringify({ status: deployment.status, exitCode: 0 })
    }\n\n`;
}

/** Checks that each `times` event covers exactly the line events after it, and every line event is covered. */
function assertTimesCover(events: WireEvent[], page: LinesPage): void {
  let covered: { firstLine: number; times: number[]; stderr: number[] } | undefined;
  let at = 0;
  let lines = 0;
  for (const event of events) {
    if (event.event === "times") {
      assert.equal(event.id, undefined, "a times event has no id");
      assert.ok(
        !covered || at === covered.times.length,
        "a times event only after the lines of the one before",
      );
      covered = JSON.parse(event.data!);
      at = 0;
      continue;
    }
    if (event.event !== undefined || event.id === undefined) continue;
    lines++;
    assert.ok(covered && at < covered.times.length, `line ${event.id} has no times event before it`);
    const number = covered.firstLine + at;
    assert.equal(event.id, String(number));
    assert.equal(covered.times[at], page.times[number - page.firstLine], `line ${number}'s time`);
    assert.equal(covered.stderr.includes(number), page.stderr.includes(number), `line ${number}'s mark`);
    at++;
  }
  assert.ok(!covered || at === covered.times.length, "the last times event covers no line beyond the stream");
  assert.ok(lines > 0);
}

async function lines(app: Listening, id: string): Promise<LinesPage> {
  return await (await fetch(new URL(`api/deployments/${id}/lines`, app.url))).json();
}

Deno.test("GET /events/<id> without ?times=1 is the stream of before, byte for byte, with times kept", async () => {
  await using app = await startTestApp({ command: "echo out 1; echo err 2 >&2; echo ' out 3'" });
  const { id } = await createDeployment(app);
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
  const deployment = await getDeployment(app, id);
  const page = await lines(app, id);
  assert.deepEqual(page.stderr, [page.lines.indexOf("err 2") + 1], "times were kept");
  const expected = oldStream(deployment, page.lines);
  assert.equal(await streamText(app, `events/${id}`), expected);
  assert.equal(await streamText(app, `events/${id}?times=0`), expected);
  // Resuming, as EventSource reconnects: the lines after the one named, and no times event either.
  const resumed = await streamText(app, `events/${id}`, { "last-event-id": "1" });
  assert.ok(!resumed.includes("event: times"));
  assert.deepEqual(
    parse(resumed).filter((event) => event.id && !event.event).map((event) => event.data),
    page.lines.slice(1),
  );
});

Deno.test("a plain EventSource of a live log gets only its lines as messages, with or without ?times=1", async () => {
  await using app = await startTestApp({
    command: "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; echo four >&2",
  });
  const { id } = await createDeployment(app);
  const listen = (query: string) => {
    const messages: string[] = [];
    const others: string[] = [];
    const source = new EventSource(new URL(`events/${id}${query}`, app.url));
    source.onmessage = (event) => messages.push(event.data);
    // What a client listening for more than messages would see: `times` only when asked for.
    source.addEventListener("times", () => others.push("times"));
    source.addEventListener("done", () => {
      others.push("done");
      source.close();
    });
    return { messages, others, source };
  };
  const plain = listen("");
  const timed = listen("?times=1");
  try {
    await waitFor(
      "both streams' ends",
      () => plain.others.includes("done") && timed.others.includes("done"),
      {
        timeoutMs: TIMEOUT_MS,
      },
    );
  } finally {
    plain.source.close();
    timed.source.close();
  }
  const page = await lines(app, id);
  assert.deepEqual(plain.messages, page.lines);
  assert.deepEqual(timed.messages, page.lines, "the messages of a stream with times are its lines too");
  assert.deepEqual(plain.others, ["done"]);
  assert.ok(timed.others.filter((type) => type === "times").length >= 1);
});

Deno.test("GET /events/<id>?times=1 puts a times event before each run of lines, live and replayed, and on resume", async (t) => {
  await using app = await startTestApp({
    command: "echo one; echo two >&2; sleep 0.3; echo three; sleep 0.3; echo four >&2; echo five",
  });
  const { id } = await createDeployment(app);
  // Joined while it runs: some lines replayed, the rest live, from the hub.
  const live = streamText(app, `events/${id}?times=1`);
  const plainLive = streamText(app, `events/${id}`);
  await t.step("live", async () => {
    const text = await live;
    const page = await lines(app, id);
    // The hub shares each live batch among its viewers: the plain one got none of the other's times events.
    const plain = parse(await plainLive);
    assert.ok(plain.every((event) => event.event !== "times"));
    assert.deepEqual(
      plain.filter((event) => event.id && !event.event).map((event) => event.data),
      page.lines,
    );
    assert.equal(page.lines.length, 5);
    assertTimesCover(parse(text), page);
    assert.ok(page.stderr.length === 2);
  });
  await t.step("replayed, after the end", async () => {
    const page = await lines(app, id);
    assertTimesCover(parse(await streamText(app, `events/${id}?times=1`)), page);
  });
  await t.step("resumed after line 3 (?lastEventId=3): the times of lines 4 and 5 only", async () => {
    const page = await lines(app, id);
    const events = parse(await streamText(app, `events/${id}?times=1&lastEventId=3`));
    const times = events.filter((event) => event.event === "times").map((event) => JSON.parse(event.data!));
    assert.deepEqual(times, [{
      firstLine: 4,
      times: page.times.slice(3),
      stderr: page.stderr.filter((line) => line >= 4),
    }]);
    assertTimesCover(events, page);
  });
});

Deno.test("GET /events/<id>?times= refuses a value other than 1 or 0 with a 400 naming it", async () => {
  await using app = await startTestApp({ command: "echo one" });
  const { id } = await createDeployment(app);
  const response = await fetch(new URL(`events/${id}?times=yes`, app.url), {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(response.status, 400);
  assert.equal(await response.text(), `Cannot read times "yes": expected 1 (on) or 0 (off)\n`);
});
