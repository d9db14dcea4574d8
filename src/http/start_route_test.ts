/**
 * Tests of `POST /start` and `GET /start?target=` on a real server with targets from a real config file: JSON
 * and form Starts, their 400 answers (JSON for an API client, the form again for a browser), and that a refused
 * Start creates nothing.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "../logs/deployment.ts";
import { readTargetConfig } from "../runs/target_config.ts";
import { deploymentRecord, makeTempDir, waitFor } from "../testing/test_helpers.ts";
import { APP_WAIT, getDeployment, startTestApp, TIMEOUT_MS } from "../testing/test_app.ts";
import { parseUsersFile } from "./users_file.ts";

const BROWSER = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
const JSON_CLIENT = { accept: "application/json", "content-type": "application/json" };

/** A shiplog whose config has `staging` (three parameters) and `production` (a required version). */
async function startApp() {
  const temp = await makeTempDir();
  const config = join(temp.path, "shiplog.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      targets: {
        staging: {
          description: "Staging cluster",
          command: "true",
          params: {
            version: { default: "main", pattern: "^[A-Za-z0-9._/-]{1,100}$" },
            region: { choices: ["eu", "us"], default: "eu" },
            note: {},
          },
        },
        production: { command: "true", params: { version: { required: true } } },
      },
    }),
  );
  const app = await startTestApp({ targets: await readTargetConfig(config) });
  return {
    url: app.url,
    post: (body: BodyInit, headers: Record<string, string>) =>
      fetch(new URL("start", app.url), {
        method: "POST",
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      }),
    list: async (): Promise<Deployment[]> => await (await fetch(new URL("api/deployments", app.url))).json(),
    async [Symbol.asyncDispose]() {
      await app[Symbol.asyncDispose]();
      await temp[Symbol.asyncDispose]();
    },
  };
}

Deno.test("POST /start as JSON starts the target named with its parameters, defaults filled in", async () => {
  await using app = await startApp();
  const response = await app.post(
    JSON.stringify({ target: "staging", params: { version: "v1.4.2" } }),
    JSON_CLIENT,
  );
  assert.equal(response.status, 201);
  const deployment: Deployment = await response.json();
  assert.equal(deployment.target, "staging");
  assert.deepEqual(deployment.params, { version: "v1.4.2", region: "eu" });
  assert.equal(deployment.command, "true");
  assert.equal(deployment.startedBy, null, "nobody named: no users are configured");
});

Deno.test("POST /start as a form (no JavaScript) starts the target and redirects to its page", async () => {
  await using app = await startApp();
  const form = new URLSearchParams({
    key: crypto.randomUUID(),
    target: "staging",
    "param.version": "release/2",
    "param.region": "us",
    "param.note": "",
  });
  const response = await app.post(form, BROWSER);
  assert.equal(response.status, 303);
  await response.body?.cancel();
  const [deployment] = await app.list();
  assert.equal(response.headers.get("location"), `/deployment/${deployment.id}`);
  assert.deepEqual([deployment.target, deployment.params], ["staging", {
    version: "release/2",
    region: "us",
  }]);
  const multipart = new FormData();
  multipart.set("target", "production");
  multipart.set("param.version", "v2");
  const second = await app.post(multipart, { accept: "application/json" });
  assert.equal(second.status, 201);
  assert.deepEqual((await second.json()).params, { version: "v2" });
});

Deno.test("POST /start refuses a bad Start with 400 JSON naming each problem, and creates nothing", async () => {
  await using app = await startApp();
  const cases: [string, BodyInit, Record<string, string>, { param: string | null; message: string }[]][] = [
    ["no target", "{}", JSON_CLIENT, [{
      param: null,
      message: "Name a target; expected one of: staging, production",
    }]],
    ["no body at all", "", JSON_CLIENT, [{
      param: null,
      message: "Name a target; expected one of: staging, production",
    }]],
    ["an unknown target", '{"target": "qa"}', JSON_CLIENT, [{
      param: null,
      message: 'Unknown target "qa"; expected one of: staging, production',
    }]],
    ["a missing required one", '{"target": "production"}', JSON_CLIENT, [{
      param: "version",
      message: "Parameter version is required; expected a value of up to 1000 characters",
    }]],
    ["two problems", '{"target": "staging", "params": {"region": "asia", "version": "a b"}}', JSON_CLIENT, [
      {
        param: "version",
        message: 'Parameter version cannot be "a b"; expected a value matching ^[A-Za-z0-9._/-]{1,100}$',
      },
      { param: "region", message: 'Parameter region cannot be "asia"; expected one of: eu, us' },
    ]],
    ["a control character", JSON.stringify({ target: "staging", params: { note: "a\nb" } }), JSON_CLIENT, [{
      param: "note",
      message: "Parameter note holds a control character (U+000A); expected text without control characters",
    }]],
    [
      "a value too long",
      JSON.stringify({ target: "production", params: { version: "v".repeat(1001) } }),
      JSON_CLIENT,
      [{
        param: "version",
        message: "Parameter version is 1001 characters long; expected at most 1000",
      }],
    ],
    ["broken JSON", '{"target": ', JSON_CLIENT, [{
      param: null,
      message: "Cannot parse the body as JSON: Unexpected end of JSON input",
    }]],
    ["a JSON list", "[]", JSON_CLIENT, [{
      param: null,
      message: 'Cannot use the body: expected an object like {"target": "...", "params": {}}',
    }]],
    ["an unknown field", '{"target": "staging", "parameters": {}}', JSON_CLIENT, [{
      param: null,
      message: 'Unknown field "parameters" in the body; expected target and params',
    }]],
    ["a form field given twice", "target=production&param.version=a&param.version=b", {
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    }, [{ param: "version", message: "Parameter version cannot be a list; expected a string" }]],
    ["an unknown form parameter", "target=production&param.version=1&param.force=yes", {
      "content-type": "application/x-www-form-urlencoded",
    }, [{ param: "force", message: 'Unknown parameter "force" for production; expected one of: version' }]],
  ];
  for (const [what, body, headers, errors] of cases) {
    const response = await app.post(body, headers);
    assert.equal(response.status, 400, what);
    assert.equal(response.headers.get("content-type"), "application/json", what);
    assert.deepEqual(await response.json(), { error: errors[0].message, errors }, what);
  }
  assert.deepEqual(await app.list(), [], "no refused Start created a deployment");
});

Deno.test("a browser's refused Start gets the form again: 400, the values sent, each message by its field", async () => {
  await using app = await startApp();
  const form = new URLSearchParams({
    key: crypto.randomUUID(),
    target: "staging",
    "param.version": "bad value",
    "param.region": "us",
    "param.force": "yes",
  });
  const response = await app.post(form, BROWSER);
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await response.text();
  assert.match(html, /<h1>Deploy to staging<\/h1>/);
  assert.match(html, /<input id="param-version" name="param.version" value="bad value" aria-invalid="true"/);
  assert.match(
    html,
    /<span class="error" id="param-version-error">Parameter version cannot be &#34;bad value&#34;; expected a value matching \^\[A-Za-z0-9\._\/-\]\{1,100\}\$<\/span>/,
  );
  assert.match(html, /<option selected>us<\/option>/, "the choice sent stays chosen");
  // A parameter the target does not have has no field: its message is above the form.
  assert.match(
    html,
    /<p class="error" role="alert">Unknown parameter &#34;force&#34; for staging; expected one of: version, region, note<\/p>/,
  );
  // A page's script that posts JSON gets the reasons as JSON, whatever its Accept says.
  const fromScript = await app.post('{"target": "production"}', {
    ...BROWSER,
    "content-type": "application/json",
  });
  assert.equal(fromScript.status, 400);
  assert.equal((await fromScript.json()).errors[0].param, "version");
  const unknown = await app.post(new URLSearchParams({ target: "qa" }), BROWSER);
  assert.equal(unknown.status, 400);
  assert.match(
    await unknown.text(),
    /<p>Unknown target &#34;qa&#34;; expected one of: staging, production<\/p>/,
  );
  assert.deepEqual(await app.list(), []);
});

Deno.test("GET /start?target= answers the target's form, 404 for an unknown one, 400 for none among several", async () => {
  await using app = await startApp();
  const page = await fetch(new URL("start?target=production", app.url));
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<h1>Deploy to production<\/h1>/);
  assert.match(html, /<input type="hidden" name="target" value="production">/);
  assert.match(html, /<input id="param-version" name="param.version" value="" required>/);
  const unknown = await fetch(new URL("start?target=qa", app.url));
  assert.equal(unknown.status, 404);
  assert.equal(await unknown.text(), 'Unknown target "qa"; expected one of: staging, production\n');
  const none = await fetch(new URL("start", app.url));
  assert.equal(none.status, 400);
  assert.equal(await none.text(), "Name a target; expected one of: staging, production\n");
});

Deno.test("with one target, a Start may name none, and GET /start is its form", async () => {
  await using app = await startTestApp({ command: "true" });
  const page = await fetch(new URL("start", app.url));
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<input type="hidden" name="target" value="default">/);
  const response = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: JSON_CLIENT,
    body: JSON.stringify({ params: {} }),
  });
  assert.equal(response.status, 201);
  const deployment: Deployment = await response.json();
  assert.deepEqual([deployment.target, deployment.params, deployment.command], ["default", {}, "true"]);
});

Deno.test("a Start by a user is recorded as theirs, and the command gets their name as SHIPLOG_STARTED_BY", async () => {
  await using app = await startTestApp({
    command: 'echo "by=$SHIPLOG_STARTED_BY target=$SHIPLOG_TARGET"',
    users: parseUsersFile("alice:alices-own-token\n", "users.txt"),
  });
  const response = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { ...JSON_CLIENT, authorization: "Bearer alices-own-token" },
    body: "{}",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(response.status, 201);
  const { id, startedBy }: Deployment = await response.json();
  assert.equal(startedBy, "alice");
  await waitFor("the deployment to end", async () => {
    const record = await getDeployment(app, id, { authorization: "Bearer alices-own-token" });
    return record.status === "succeeded";
  }, APP_WAIT);
  assert.equal(await Deno.readTextFile(join(app.dir, `${id}.log`)), "by=alice target=default\n");
});

Deno.test("Run again meets the target's rules as the config has them now: 409 for a value taken out, new defaults", async () => {
  await using temp = await makeTempDir();
  const config = join(temp.path, "shiplog.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      targets: {
        staging: {
          command: "true",
          params: { region: { choices: ["eu", "us"] }, size: { default: "small" } },
        },
      },
    }),
  );
  const dir = join(temp.path, "deployments");
  await Deno.mkdir(dir);
  const finished = { status: "succeeded" as const, startedAt: "2026-11-24T08:00:01.000Z", exitCode: 0 };
  const removed = deploymentRecord({
    ...finished,
    target: "staging",
    params: { region: "asia" },
    finishedAt: "2026-11-24T08:00:02.000Z",
  });
  const kept = deploymentRecord({
    ...finished,
    target: "staging",
    params: { region: "us" },
    finishedAt: "2026-11-24T08:00:02.000Z",
  });
  for (const record of [removed, kept]) {
    await Deno.writeTextFile(join(dir, `${record.id}.json`), JSON.stringify(record));
    await Deno.writeTextFile(join(dir, `${record.id}.log`), "");
  }
  await using app = await startTestApp({ dir, targets: await readTargetConfig(config) });
  const rerun = (id: string) =>
    fetch(new URL(`api/deployments/${id}/rerun`, app.url), {
      method: "POST",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  const refused = await rerun(removed.id);
  assert.equal(refused.status, 409);
  assert.deepEqual(await refused.json(), {
    error:
      `Cannot run deployment ${removed.id} again: Parameter region cannot be "asia"; expected one of: eu, us`,
  });
  const again = await rerun(kept.id);
  assert.equal(again.status, 201);
  const record: Deployment = await again.json();
  assert.deepEqual([record.rerunOf, record.params], [kept.id, { region: "us", size: "small" }]);

  // The pages say so before the press: Run again disabled with the reason, and a link to the Start form with
  // the old values, to change them.
  const page = async (id: string) =>
    await (await fetch(new URL(`deployment/${id}`, app.url), { signal: AbortSignal.timeout(TIMEOUT_MS) }))
      .text();
  const refusedPage = await page(removed.id);
  assert.match(
    refusedPage,
    /<button type="submit" class="button primary" disabled aria-describedby="run-again-refused">/,
  );
  assert.match(
    refusedPage,
    /Cannot run it again: Parameter region cannot be &#34;asia&#34;; expected one of: eu, us/,
  );
  const change = /<a id="run-again-change" href="([^"]+)">Change values…<\/a>/.exec(refusedPage)?.[1];
  assert.equal(change, "/start?target=staging&#38;param.region=asia");
  // The kept one's link fills its form with what it ran.
  const keptPage = await page(kept.id);
  const keptChange = /<a id="run-again-change" href="([^"]+)">/.exec(keptPage)?.[1];
  const form = await (await fetch(new URL(keptChange!.replaceAll("&#38;", "&"), app.url))).text();
  assert.match(form, /<option selected>us<\/option>/);
  assert.match(form, /name="param.size" value="small"/);
  // Its Run again button is enabled (the search buttons start disabled, till there is a match).
  assert.match(keptPage, /<button type="submit" class="button primary">Run again<\/button>/);
});
