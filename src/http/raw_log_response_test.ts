/**
 * `GET /deployments/<id>/log` and its switches (`?timestamps=1`, `?plain=1`, `?download=1`) against a real
 * shiplog (`startTestApp`) whose deploy command writes colours: the bytes as written without them, each
 * line's time, the attachment's name, and the refusals.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  type Listening,
  startTestApp,
  TIMEOUT_MS,
} from "../testing/test_app.ts";
import { waitFor } from "../testing/test_helpers.ts";
import type { LinesPage } from "./lines_response.ts";
import { Targets } from "../runs/targets.ts";
import { TIMES_DIR } from "../logs/file_store.ts";

const COMMAND = String.raw`printf '\033[36m[1/2] build\033[0m\n'; echo 'to stderr' >&2; ` +
  String.raw`printf '\033]0;a title\007\033[2Kdone \033[1;32mok\033[m\n'`;
const TEXT = "\x1b[36m[1/2] build\x1b[0m\n" + "to stderr\n" +
  "\x1b]0;a title\x07\x1b[2Kdone \x1b[1;32mok\x1b[m\n";

async function getLog(app: Listening, id: string, query = ""): Promise<Response> {
  return await fetch(new URL(`deployments/${id}/log${query}`, app.url), {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

async function finishedDeployment(app: Listening) {
  const deployment = await createDeployment(app);
  await waitFor(
    "the end",
    async () => (await getDeployment(app, deployment.id)).status === "succeeded",
    APP_WAIT,
  );
  return deployment;
}

Deno.test("GET /deployments/<id>/log without switches: the bytes as written, colours and all, inline", async () => {
  await using app = await startTestApp({ command: COMMAND });
  const { id } = await finishedDeployment(app);
  const response = await getLog(app, id);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(response.headers.get("content-disposition"), null);
  const text = await response.text();
  // stdout and stderr are two pipes: their lines' order between them is the command's scheduling.
  assert.deepEqual(text.split("\n").sort(), TEXT.split("\n").sort());
  assert.equal(text, await Deno.readTextFile(join(app.dir, `${id}.log`)));
});

Deno.test("GET /deployments/<id>/log?plain=1 strips the escape sequences; ?timestamps=1 puts each line's time first", async (t) => {
  await using app = await startTestApp({ command: COMMAND });
  const { id } = await finishedDeployment(app);
  const lines: LinesPage = await (await fetch(new URL(`api/deployments/${id}/lines`, app.url))).json();
  const raw = await (await getLog(app, id)).text();
  const iso = (i: number) => new Date(lines.times[i]).toISOString();
  const plainLine = (line: string) =>
    ({
      "\x1b[36m[1/2] build\x1b[0m": "[1/2] build",
      "to stderr": "to stderr",
      "\x1b]0;a title\x07\x1b[2Kdone \x1b[1;32mok\x1b[m": "done ok",
    })[line];

  await t.step("plain", async () => {
    const text = await (await getLog(app, id, "?plain=1")).text();
    assert.equal(text, lines.lines.map((line) => plainLine(line) + "\n").join(""));
    assert.ok(!text.includes("\x1b"));
  });
  await t.step("timestamps: ISO 8601 UTC with milliseconds and one space, the text as it is", async () => {
    const text = await (await getLog(app, id, "?timestamps=1")).text();
    assert.equal(text, lines.lines.map((line, i) => `${iso(i)} ${line}\n`).join(""));
    for (const line of text.split("\n").slice(0, -1)) {
      assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [^ ]/);
    }
  });
  await t.step("both, and as a download", async () => {
    const response = await getLog(app, id, "?timestamps=1&plain=1&download=1");
    assert.equal(
      response.headers.get("content-disposition"),
      `attachment; filename="shiplog-default-${id.slice(0, 8)}.log"`,
    );
    assert.equal(
      await response.text(),
      lines.lines.map((line, i) => `${iso(i)} ${plainLine(line)}\n`).join(""),
    );
  });
  await t.step("download alone: the bytes as written, as an attachment", async () => {
    const response = await getLog(app, id, "?download=1");
    assert.match(
      response.headers.get("content-disposition") ?? "",
      /^attachment; filename="shiplog-default-/,
    );
    assert.equal(await response.text(), raw);
  });
  await t.step("0 is off", async () => {
    const response = await getLog(app, id, "?timestamps=0&plain=0&download=0");
    assert.equal(response.headers.get("content-disposition"), null);
    assert.equal(await response.text(), raw);
  });
});

Deno.test("GET /deployments/<id>/log?timestamps=1 marks a line of no known time with -", async () => {
  await using app = await startTestApp({ command: "echo one; echo two" });
  const { id } = await finishedDeployment(app);
  await Deno.remove(join(app.dir, TIMES_DIR, `${id}.times`));
  assert.equal(await (await getLog(app, id, "?timestamps=1")).text(), "- one\n- two\n");
});

Deno.test("GET /deployments/<id>/log names a target's download after it", async () => {
  const target = { name: "web.prod-2", description: null, command: "echo hi", cwd: null, params: new Map() };
  await using app = await startTestApp({ targets: new Targets([target]) });
  const response = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
    body: "target=web.prod-2",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(response.status, 201, await response.clone().text());
  const { id } = await response.json();
  const log = await getLog(app, id, "?download=1");
  assert.equal(
    log.headers.get("content-disposition"),
    `attachment; filename="shiplog-web.prod-2-${id.slice(0, 8)}.log"`,
  );
  await log.body?.cancel();
});

Deno.test("GET /deployments/<id>/log refuses a switch that is neither 1 nor 0 with a 400 naming it", async (t) => {
  await using app = await startTestApp({ command: "echo one" });
  const { id } = await createDeployment(app);
  for (const name of ["timestamps", "plain", "download"]) {
    await t.step(name, async () => {
      const response = await getLog(app, id, `?${name}=yes`);
      assert.equal(response.status, 400);
      assert.equal(await response.text(), `Cannot read ${name} "yes": expected 1 (on) or 0 (off)\n`);
    });
  }
  const unknown = await getLog(app, crypto.randomUUID(), "?plain=1");
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
});
