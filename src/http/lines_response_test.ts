/**
 * `GET /api/deployments/<id>/lines` against a real shiplog (`startTestApp`): real deploy commands writing to
 * stdout and stderr, real HTTP, the file store's sidecar behind it. Pages, their times and stderr marks, and
 * every refusal.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { LinesPage } from "./lines_response.ts";
import { TIMES_DIR } from "../logs/file_store.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  type Listening,
  startTestApp,
  TIMEOUT_MS,
} from "../testing/test_app.ts";
import { waitFor } from "../testing/test_helpers.ts";

async function getLines(app: Listening, id: string, query = "", headers: Record<string, string> = {}) {
  return await fetch(new URL(`api/deployments/${id}/lines${query}`, app.url), {
    headers,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

async function page(app: Listening, id: string, query = ""): Promise<LinesPage> {
  const response = await getLines(app, id, query);
  assert.equal(response.status, 200, await response.clone().text());
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return await response.json();
}

async function finished(app: Listening, id: string): Promise<void> {
  await waitFor("the end", async () => (await getDeployment(app, id)).status === "succeeded", APP_WAIT);
}

Deno.test("GET /api/deployments/<id>/lines answers the lines with their times, stderr marks and the next line's number", async (t) => {
  await using app = await startTestApp({
    command: "echo out 1; echo err 2 >&2; sleep 0.1; echo out 3; echo err 4 >&2; echo err 5 >&2",
  });
  const before = Date.now();
  const { id } = await createDeployment(app);
  await finished(app, id);
  const after = Date.now();

  await t.step("all of it: each stream's lines in its own order, times in order, stderr marked", async () => {
    const all = await page(app, id);
    assert.equal(all.firstLine, 1);
    assert.equal(all.nextLine, 6);
    assert.deepEqual(all.lines.filter((line) => line.startsWith("out")), ["out 1", "out 3"]);
    assert.deepEqual(all.lines.filter((line) => line.startsWith("err")), ["err 2", "err 4", "err 5"]);
    assert.deepEqual(all.stderr, all.lines.flatMap((line, i) => line.startsWith("err") ? [i + 1] : []));
    assert.equal(all.times.length, 5);
    for (const time of all.times) assert.ok(time >= before && time <= after, `a time of ${time}`);
    // "out 3" was written after the sleep, so after "out 1" and "err 2".
    const timeOf = (text: string) => all.times[all.lines.indexOf(text)];
    assert.ok(timeOf("out 3") >= timeOf("out 1") + 50 && timeOf("out 3") >= timeOf("err 2") + 50);
  });
  await t.step("a page after a line, of a limit: the lines' own times and marks", async () => {
    const all = await page(app, id);
    const middle = await page(app, id, "?after=1&limit=2");
    assert.deepEqual(middle, {
      firstLine: 2,
      lines: all.lines.slice(1, 3),
      times: all.times.slice(1, 3),
      stderr: all.stderr.filter((line) => line >= 2 && line <= 3),
      nextLine: 6,
    });
  });
  await t.step("after the last line: none, and the next line's number", async () => {
    assert.deepEqual(await page(app, id, "?after=5"), {
      firstLine: 6,
      lines: [],
      times: [],
      stderr: [],
      nextLine: 6,
    });
  });
  await t.step(
    "past the end (a log replaced since): none, and nextLine below firstLine says so",
    async () => {
      assert.deepEqual(await page(app, id, "?after=40"), {
        firstLine: 41,
        lines: [],
        times: [],
        stderr: [],
        nextLine: 6,
      });
    },
  );
});

Deno.test("GET /api/deployments/<id>/lines pages through a long log, each line once, with the lines appended from outside", async () => {
  await using app = await startTestApp({ command: "seq 1 2500; sleep 30" });
  const { id } = await createDeployment(app);
  await waitFor(
    "the 2,500 lines",
    async () => (await page(app, id, "?after=2499")).lines.length === 1,
    APP_WAIT,
  );
  const posted = Date.now();
  const append = await fetch(new URL(`api/deployments/${id}/log`, app.url), {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "from outside\n",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(append.status, 200, await append.text());
  const lines: string[] = [];
  const times: number[] = [];
  for (let after = 0, pages = 0;; pages++) {
    assert.ok(pages < 10, "too many pages");
    const next = await page(app, id, `?after=${after}&limit=1000`);
    assert.equal(next.firstLine, after + 1);
    assert.ok(next.lines.length <= 1000);
    assert.deepEqual(next.stderr, []);
    lines.push(...next.lines);
    times.push(...next.times);
    after += next.lines.length;
    if (after + 1 >= next.nextLine) break;
  }
  assert.deepEqual(lines, [...Array.from({ length: 2500 }, (_, i) => String(i + 1)), "from outside"]);
  assert.ok(times.every((time) => time > 0), "every line has its time");
  assert.ok(times.at(-1)! >= posted, "the appended line has the time the API took it");
  await fetch(new URL(`api/deployments/${id}/cancel`, app.url), {
    method: "POST",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
    .then((response) => response.body?.cancel());
});

Deno.test("GET /api/deployments/<id>/lines of a log from before times were kept: every time 0", async () => {
  await using app = await startTestApp({ command: "echo one; echo two" });
  const { id } = await createDeployment(app);
  await finished(app, id);
  await Deno.remove(join(app.dir, TIMES_DIR, `${id}.times`));
  const all = await page(app, id);
  assert.deepEqual(all, { firstLine: 1, lines: ["one", "two"], times: [0, 0], stderr: [], nextLine: 3 });
});

Deno.test("GET /api/deployments/<id>/lines refuses a bad after or limit with a 400 naming it, an unknown id with a 404", async (t) => {
  await using app = await startTestApp({ command: "echo one" });
  const { id } = await createDeployment(app);
  for (
    const [query, message] of [
      ["?limit=0", /Cannot read limit "0": expected an integer from 1 to 100000/],
      ["?limit=100001", /Cannot read limit "100001"/],
      ["?limit=ten", /Cannot read limit "ten"/],
      ["?limit=1.5", /Cannot read limit "1.5"/],
      ["?after=-1", /Cannot read after "-1": expected a line number, 0 or more/],
      ["?after=1e3", /Cannot read after "1e3"/],
      ["?after=99999999999999999", /Cannot read after "99999999999999999"/],
    ] as const
  ) {
    await t.step(query, async () => {
      const response = await getLines(app, id, query);
      assert.equal(response.status, 400);
      assert.match(await response.text(), message);
    });
  }
  await t.step("an unknown id", async () => {
    const response = await getLines(app, crypto.randomUUID());
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });
  await t.step("POST: 405 with Allow", async () => {
    const response = await fetch(new URL(`api/deployments/${id}/lines`, app.url), {
      method: "POST",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "GET, HEAD");
    await response.body?.cancel();
  });
});

Deno.test("GET /api/deployments/<id>/lines takes the credentials of the other API reads", async () => {
  await using app = await startTestApp({ token: "the-lines-test-token", command: "echo one" });
  const started = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { accept: "application/json", authorization: "Bearer the-lines-test-token" },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const { id } = await started.json();
  const refused = await getLines(app, id);
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
  const answered = await getLines(app, id, "", { authorization: "Bearer the-lines-test-token" });
  assert.equal(answered.status, 200);
  assert.equal((await answered.json()).firstLine, 1);
});
