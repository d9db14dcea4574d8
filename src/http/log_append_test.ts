/**
 * `POST /api/deployments/<id>/log` against a real shiplog (`startTestApp`): real HTTP, real files, real deploy
 * commands writing to the same log at the same time. And `LogAppend` on a real Redis, for what only a cluster
 * has: another instance ending the deployment between the route's check and its write.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { HttpError } from "./http_error.ts";
import { LogAppend } from "./log_append.ts";
import { MAX_LINE_BYTES } from "../runs/runner.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { RedisConnection } from "../redis/redis_connection.ts";
import { Deployments } from "../runs/deployments.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  type Listening,
  startTestApp,
  TIMEOUT_MS,
} from "../testing/test_app.ts";
import { makeTempDir, waitFor } from "../testing/test_helpers.ts";

const TOKEN = "append-test-token-0123";

/** POSTs `body` to the deployment's log, `text/plain` unless `headers` say otherwise. */
async function postLog(
  app: Listening,
  id: string,
  body: BodyInit | null,
  headers: Record<string, string> = {},
): Promise<Response> {
  return await fetch(new URL(`api/deployments/${id}/log`, app.url), {
    method: "POST",
    headers: { "content-type": "text/plain", ...headers },
    body,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

/** POSTs `body` and asserts 200; returns the JSON answer. */
async function append(
  app: Listening,
  id: string,
  body: BodyInit,
  headers: Record<string, string> = {},
): Promise<{ firstLine: number; count: number; dropped?: number }> {
  const response = await postLog(app, id, body, headers);
  assert.equal(response.status, 200, await response.clone().text());
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return await response.json();
}

async function readLog(app: { dir: string }, id: string): Promise<string> {
  return await Deno.readTextFile(join(app.dir, `${id}.log`));
}

async function waitForStatus(app: Listening, id: string, status: string): Promise<void> {
  await waitFor(
    `deployment ${id} ${status}`,
    async () => (await getDeployment(app, id)).status === status,
    APP_WAIT,
  );
}

Deno.test("POST /api/deployments/<id>/log appends every line of the body and answers its first line and count", async (t) => {
  await using app = await startTestApp({ command: "echo from the command; sleep 30" });
  const { id } = await createDeployment(app);
  await waitFor(
    "the command's line",
    async () => (await readLog(app, id)) === "from the command\n",
    APP_WAIT,
  );

  await t.step("LF and CRLF endings, and a last line without one", async () => {
    assert.deepEqual(await append(app, id, "one\ntwo\r\nthree"), { firstLine: 2, count: 3 });
  });
  await t.step("an empty body appends nothing and names the next line", async () => {
    assert.deepEqual(await append(app, id, ""), { firstLine: 5, count: 0 });
  });
  await t.step("a body of line endings is empty lines; charset in the type is fine", async () => {
    assert.deepEqual(await append(app, id, "\n\r\n", { "content-type": "text/plain; charset=utf-8" }), {
      firstLine: 5,
      count: 2,
    });
  });
  await t.step("the log holds the lines in order, and the API serves them", async () => {
    const expected = "from the command\none\ntwo\nthree\n\n\n";
    assert.equal(await readLog(app, id), expected);
    const raw = await fetch(new URL(`deployments/${id}/log`, app.url));
    assert.equal(await raw.text(), expected);
  });
});

Deno.test("lines can be appended to a queued deployment before it starts", async () => {
  await using app = await startTestApp({ command: "echo ran; sleep 30", maxRunning: 1 });
  await createDeployment(app);
  const { id } = await createDeployment(app);
  assert.deepEqual(await append(app, id, "waiting for a slot\n"), { firstLine: 1, count: 1 });
  assert.equal((await getDeployment(app, id)).status, "queued");
  assert.equal(await readLog(app, id), "waiting for a slot\n");
});

Deno.test("hostile bytes are split as the runner splits its command's output: CR, NUL, invalid UTF-8, 1 MiB lines", async () => {
  await using temp = await makeTempDir();
  const exactly = "x".repeat(MAX_LINE_BYTES);
  const longer = "y".repeat(MAX_LINE_BYTES) + "tail";
  const body = new Uint8Array([
    ...new TextEncoder().encode("progress 10%\rprogress 20%\n"),
    ...new TextEncoder().encode("nul:\0:\n"),
    0x62,
    0x61,
    0x64,
    0xff,
    0xfe,
    0xc3,
    0x0a, // "bad" then invalid UTF-8 and a lone lead byte
    ...new TextEncoder().encode(`data: forged\nevent: done\n${exactly}\n${longer}\r\n€ last`),
  ]);
  const input = join(temp.path, "input.bin");
  await Deno.writeFile(input, body);

  // The same bytes as a command's output, for the runner's own split.
  await using runnerApp = await startTestApp({ command: `cat '${input}'` });
  const printed = await createDeployment(runnerApp);
  await waitForStatus(runnerApp, printed.id, "succeeded");

  await using app = await startTestApp({ command: "sleep 30", maxBodyBytes: 4 * 1024 * 1024 });
  const { id } = await createDeployment(app);
  const answer = await append(app, id, body);
  const log = await readLog(app, id);
  assert.equal(log, await readLog(runnerApp, printed.id));
  assert.deepEqual(log.split("\n").slice(0, -1), [
    "progress 10%\rprogress 20%",
    "nul:\0:",
    "bad\ufffd\ufffd\ufffd",
    "data: forged",
    "event: done",
    exactly,
    "y".repeat(MAX_LINE_BYTES),
    "tail",
    "€ last",
  ]);
  assert.deepEqual(answer, { firstLine: 1, count: 9 });
});

Deno.test("lines posted while the command prints never interleave with its lines, and their numbers are contiguous", async () => {
  const printed = 3000;
  await using app = await startTestApp({
    command: `i=0; while [ $i -lt ${printed} ]; do i=$((i+1)); echo "runner line $i"; done; sleep 30`,
  });
  const { id } = await createDeployment(app);
  await waitFor("the command printing", async () => (await readLog(app, id)).length > 0, APP_WAIT);
  const posts = Array.from(
    { length: 40 },
    (_, post) =>
      Array.from({ length: 25 }, (_, line) => `api post ${post} line ${line} ${"z".repeat(post * 20)}`),
  );
  const answers = await Promise.all(posts.map((lines) => append(app, id, lines.join("\n") + "\n")));
  await waitFor(
    "every line of the command",
    async () => (await readLog(app, id)).includes(`runner line ${printed}\n`),
    APP_WAIT,
  );
  const log = (await readLog(app, id)).split("\n").slice(0, -1);
  assert.equal(log.length, printed + 40 * 25);
  // The command's lines whole and in order, whatever came between them.
  const runnerLines = log.filter((line) => line.startsWith("runner line "));
  assert.deepEqual(runnerLines, Array.from({ length: printed }, (_, i) => `runner line ${i + 1}`));
  // Each post's lines together, where its answer says (line N is log[N - 1]).
  posts.forEach((lines, post) => {
    assert.equal(answers[post].count, lines.length);
    assert.deepEqual(
      log.slice(answers[post].firstLine - 1, answers[post].firstLine - 1 + lines.length),
      lines,
      `post ${post} at line ${answers[post].firstLine}`,
    );
  });
});

Deno.test("with a token: 401 without it, 200 with Bearer; a cross-site POST is 403 and appends nothing", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "sleep 30" });
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const { id } = await createDeployment(app, bearer);
  const refused = await postLog(app, id, "no token\n");
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="shiplog"');
  await refused.body?.cancel();
  const wrong = await postLog(app, id, "wrong token\n", { authorization: "Bearer not-the-token" });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const crossSite = await postLog(app, id, "from another site\n", {
    ...bearer,
    "sec-fetch-site": "cross-site",
  });
  assert.equal(crossSite.status, 403);
  await crossSite.body?.cancel();
  const otherOrigin = await postLog(app, id, "from another origin\n", {
    ...bearer,
    origin: "https://evil.example",
  });
  assert.equal(otherOrigin.status, 403);
  await otherOrigin.body?.cancel();
  assert.deepEqual(await append(app, id, "with the token\n", bearer), { firstLine: 1, count: 1 });
  // The token is masked like any secret.
  assert.deepEqual(await append(app, id, `token=${TOKEN}\n`, bearer), { firstLine: 2, count: 1 });
  assert.equal(await readLog(app, id), "with the token\ntoken=***\n");
});

Deno.test("once the deployment has ended the log takes no more lines: 409 with the status", async () => {
  await using app = await startTestApp({ command: "echo done here" });
  const { id } = await createDeployment(app);
  await waitForStatus(app, id, "succeeded");
  const response = await postLog(app, id, "too late\n");
  assert.equal(response.status, 409);
  assert.equal(
    await response.text(),
    `Deployment ${id} has already ended (succeeded): its log takes no more lines\n`,
  );
  assert.equal(await readLog(app, id), "done here\n");
});

Deno.test({
  name:
    "on Redis, a deployment ended by another instance after the check is 409 too: the store refuses the write",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer();
    const here = await RedisConnection.connect(server.url, { prefix: "t", commandTimeoutMs: 2000 });
    const elsewhere = await RedisConnection.connect(server.url, { prefix: "t", commandTimeoutMs: 2000 });
    const store = await RedisStore.open(here);
    const other = await RedisStore.open(elsewhere);
    try {
      // Without the cluster's feed, this instance does not hear of the end: as in the race, its record is stale.
      const deployments = await Deployments.load(store);
      const queued = await deployments.create("./deploy.sh");
      const logAppend = new LogAppend(deployments, store);
      assert.deepEqual(await logAppend.append(queued.id, ["before"]), { firstLine: 1, count: 1 });
      await other.save({
        ...queued,
        status: "interrupted",
        finishedAt: new Date().toISOString(),
        reason: "instance a stopped answering (its lease expired)",
      });
      assert.equal(deployments.get(queued.id)?.status, "queued");
      await assert.rejects(logAppend.append(queued.id, ["too late"]), (error) => {
        assert.ok(error instanceof HttpError);
        assert.equal(error.status, 409);
        assert.equal(
          error.message,
          `Deployment ${queued.id} has already ended (interrupted): its log takes no more lines`,
        );
        return true;
      });
      assert.equal(await store.countLines(queued.id), 1);
    } finally {
      await store.close();
      await other.close();
      await here.close();
      await elsewhere.close();
    }
  },
});

Deno.test({
  name: "on Redis, an append of 5,000 lines is one atomic write: its numbers contiguous while another writes",
  ...REDIS_TEST,
  async fn() {
    await using server = await startRedisServer({ appendOnly: false });
    const connection = await RedisConnection.connect(server.url, { prefix: "t" });
    const store = await RedisStore.open(connection);
    try {
      const deployments = await Deployments.load(store);
      const { id } = await deployments.create("./deploy.sh");
      const runner = await store.openAppender(id);
      let writing = true;
      const other = (async () => {
        for (let index = 0; writing; index++) await runner.write([`runner ${index}`]);
      })();
      const body = Array.from({ length: 5000 }, (_, index) => `posted ${index}`);
      const { firstLine, count } = await new LogAppend(deployments, store).append(id, body);
      writing = false;
      await other;
      runner.close();
      assert.equal(count, 5000);
      const lines: string[] = [];
      for await (const batch of store.readLines(id, firstLine - 1)) lines.push(...batch.lines);
      assert.deepEqual(lines.slice(0, 5000), body);
    } finally {
      await store.close();
      await connection.close();
    }
  },
});

Deno.test("an unknown or non-canonical id is 404, a type other than text/plain 415, a body over --max-body-bytes 413", async () => {
  await using app = await startTestApp({ command: "sleep 30", maxBodyBytes: 1024 });
  const { id } = await createDeployment(app);
  const cases: [string, string, BodyInit | null, Record<string, string>, number][] = [
    ["an unknown id", crypto.randomUUID(), "x\n", {}, 404],
    ["an id in capitals", id.toUpperCase(), "x\n", {}, 404],
    ["a path for an id", "..%2F..%2Fetc", "x\n", {}, 404],
    ["JSON", id, '{"line": "x"}', { "content-type": "application/json" }, 415],
    ["a form", id, "line=x", { "content-type": "application/x-www-form-urlencoded" }, 415],
    ["no content type", id, new Blob(["x\n"]), { "content-type": "" }, 415],
    ["a declared length over the cap", id, "x".repeat(1025), {}, 413],
    // Chunked, with no length declared: refused once the cap is passed.
    [
      "an undeclared length over the cap",
      id,
      ReadableStream.from([new Uint8Array(600), new Uint8Array(600)]),
      {},
      413,
    ],
  ];
  for (const [what, target, body, headers, status] of cases) {
    const response = await postLog(app, target, body, headers);
    assert.equal(response.status, status, what);
    const message = await response.text();
    if (status === 415) assert.match(message, /^Unsupported content type \S+; expected text\/plain\n$/, what);
    else assert.match(message, /\S/, what);
  }
  const get = await fetch(new URL(`api/deployments/${id}/log`, app.url));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  await get.body?.cancel();
  assert.equal(await readLog(app, id), "");
  assert.deepEqual(await append(app, id, "x".repeat(1024)), { firstLine: 1, count: 1 });
});

Deno.test("secrets are masked as in the command's output, base64 and URL-encoded forms too", async () => {
  const secret = "hunter2-is-the-password";
  await using app = await startTestApp({ command: "sleep 30", secrets: [secret] });
  const { id } = await createDeployment(app);
  const base64 = new TextEncoder().encode(secret).toBase64();
  await append(
    app,
    id,
    `plain ${secret}\nbase64 ${base64}\nurl ${encodeURIComponent(`a ${secret}`)}\nnothing secret\n`,
  );
  assert.equal(await readLog(app, id), "plain ***\nbase64 ***\nurl a%20***\nnothing secret\n");
});

Deno.test("--max-log-bytes: past the cap one notice is appended and the rest dropped, counted in the answer", async () => {
  // 99 characters and a line feed: 100 bytes a line.
  const line = (n: number) => `${String(n).padStart(3, "0")} ${"m".repeat(95)}`;
  const lines = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => line(from + i)).join("\n");
  await using app = await startTestApp({ command: "echo from the command; sleep 30", maxLogBytes: 1024 });
  const { id } = await createDeployment(app);
  await waitFor("the command's line", async () => (await readLog(app, id)).length > 0, APP_WAIT);
  // 17 bytes of the command's, then 800.
  assert.deepEqual(await append(app, id, lines(1, 8)), { firstLine: 2, count: 8 });
  // Two more fit (1017 bytes); the third would pass 1024.
  assert.deepEqual(await append(app, id, lines(9, 5)), { firstLine: 10, count: 3, dropped: 3 });
  const notice = "[shiplog] log truncated: it reached 1024 bytes; further output is dropped";
  const full = await readLog(app, id);
  assert.equal(full.split("\n").at(-2), notice);
  assert.equal(full.split("\n").length - 1, 1 + 10 + 1);
  // Past the cap: nothing, not a second notice.
  assert.deepEqual(await append(app, id, "one more\n"), { firstLine: 13, count: 0, dropped: 1 });
  assert.equal(await readLog(app, id), full);
});
