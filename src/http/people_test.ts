/**
 * People, end to end on a real server: users signing in with their own tokens, what they start recorded under
 * their name, the top bar of every page saying who is signed in, signing out, a user taken out of the file,
 * sessions on a cluster's Redis, and a single-sign-on proxy's header believed from a trusted peer only. The test
 * server is reached from 127.0.0.1: `--trusted-proxy 127.0.0.1/32` makes that peer a trusted proxy, and
 * `--trusted-proxy 10.0.0.0/8` leaves it untrusted.
 */

import assert from "node:assert/strict";
import type { Deployment } from "../logs/deployment.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { startTestApp, TIMEOUT_MS } from "../testing/test_app.ts";
import { makeTempDir } from "../testing/test_helpers.ts";
import { spawnShiplog } from "../testing/test_program.ts";
import { parseUsersFile } from "./users_file.ts";

const TOKEN = "the-unnamed-team-token";
const USERS_FILE = "# the team\nalice:alices-own-token\nbob:bobs-own-token\n";
const USERS = parseUsersFile(USERS_FILE, "users");
const HTML = { accept: "text/html" };

function request(app: { url: string }, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(path, app.url), {
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
    ...init,
  });
}

/** `POST /start` as JSON with `headers`; asserts 201 and returns the record. */
async function start(app: { url: string }, headers: Record<string, string>): Promise<Deployment> {
  const response = await request(app, "start", {
    method: "POST",
    headers: { accept: "application/json", ...headers },
  });
  assert.equal(response.status, 201, await response.clone().text());
  return await response.json();
}

/** Signs in with `token` on the form; returns the `Cookie` value of the new session. */
async function signIn(app: { url: string }, token: string): Promise<string> {
  const response = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token, next: "/" }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 303);
  return response.headers.get("set-cookie")!.split(";")[0];
}

/** The status and HTML of a browser's GET of `path`. */
async function page(app: { url: string }, path: string, headers: Record<string, string> = {}) {
  const response = await request(app, path, { headers: { ...HTML, ...headers } });
  return { status: response.status, html: await response.text() };
}

/** What the top bar says of who is signed in, or `undefined` when it says nothing. */
function signedInBar(html: string): string | undefined {
  return /<header class="topbar">[\s\S]*?(<div class="signed-in">[\s\S]*?<\/div>)[\s\S]*?<\/header>/.exec(
    html,
  )?.[1];
}

const SIGN_OUT_FORM = '<form method="post" action="/sign-out" class="sign-out">' +
  '<button type="submit" class="button" id="sign-out">Sign out</button></form>';

Deno.test("each user signs in with their own token, starts under their name, and every page's top bar says who", async (t) => {
  await using app = await startTestApp({ token: TOKEN, users: USERS, command: "true" });
  let id = "";
  await t.step("a bearer token names its user in startedBy; the unnamed token names nobody", async () => {
    assert.equal((await start(app, { authorization: "Bearer alices-own-token" })).startedBy, "alice");
    assert.equal((await start(app, { authorization: `Bearer ${TOKEN}` })).startedBy, null);
    id = (await start(app, { authorization: "Bearer bobs-own-token" })).id;
    const wrong = await request(app, "api/deployments", {
      headers: { authorization: "Bearer alices-own-token!" },
    });
    assert.equal(wrong.status, 401);
    assert.equal(await wrong.text(), "Wrong token\n");
  });

  await t.step(
    "signed in as bob: home, deployment and error pages name him, with a sign-out form",
    async () => {
      const cookie = await signIn(app, "bobs-own-token");
      const bar =
        `<div class="signed-in"><span class="user"><span class="label">Signed in as </span><strong id="user-name">bob</strong></span>` +
        `${SIGN_OUT_FORM}</div>`;
      for (
        const [path, status] of [["/", 200], [`/deployment/${id}`, 200], [
          `/deployment/${crypto.randomUUID()}`,
          404,
        ]]
      ) {
        const shown = await page(app, path as string, { cookie });
        assert.equal(shown.status, status, path as string);
        assert.equal(signedInBar(shown.html), bar, path as string);
      }
      const started = await request(app, "start", {
        method: "POST",
        headers: { cookie, accept: "application/json" },
      });
      assert.equal((await started.json()).startedBy, "bob");
    },
  );

  await t.step("signed in with the unnamed token: the bar says so, with the sign-out form", async () => {
    const cookie = await signIn(app, TOKEN);
    assert.equal(
      signedInBar((await page(app, "/", { cookie })).html),
      `<div class="signed-in"><span class="user"><span class="label">Signed in with the access token</span></span>${SIGN_OUT_FORM}</div>`,
    );
  });

  await t.step("signing out ends the session: the cookie is cleared and refused from then on", async () => {
    const cookie = await signIn(app, "alices-own-token");
    const other = await signIn(app, "alices-own-token");
    assert.equal((await page(app, "/", { cookie })).status, 200);
    const out = await request(app, "sign-out", {
      method: "POST",
      headers: {
        cookie,
        "content-type": "application/x-www-form-urlencoded",
        "sec-fetch-site": "same-origin",
      },
    });
    await out.body?.cancel();
    assert.equal(out.status, 303);
    assert.equal(out.headers.get("location"), "/");
    assert.match(out.headers.get("set-cookie") ?? "", /^shiplog_session=; Path=\/; Max-Age=0;/);
    const after = await page(app, "/", { cookie });
    assert.equal(after.status, 401);
    assert.match(after.html, /<input id="token" name="token" type="password"/, "the sign-in form");
    assert.equal((await page(app, "/", { cookie: other })).status, 200, "her other session is hers still");
  });
});

Deno.test("with access open, no page's top bar has anyone signed in or a sign-out form", async () => {
  await using app = await startTestApp({ command: "true" });
  const { id } = await start(app, {});
  for (const path of ["/", `/deployment/${id}`, `/deployment/${crypto.randomUUID()}`]) {
    const { html } = await page(app, path);
    assert.equal(signedInBar(html), undefined, path);
    assert.ok(!html.includes("/sign-out"), path);
    assert.ok(!html.includes("<!--signed-in-->"), `${path}: the marker is replaced`);
  }
});

Deno.test("restarted without a user in the file, their sessions end; the others' hold", async () => {
  await using dir = await makeTempDir();
  const config = { token: TOKEN, command: "true", dir: dir.path };
  let alice: string;
  let bob: string;
  {
    await using app = await startTestApp({ ...config, users: USERS });
    alice = await signIn(app, "alices-own-token");
    bob = await signIn(app, "bobs-own-token");
  }
  await using app = await startTestApp({ ...config, users: parseUsersFile("bob:bobs-own-token", "users") });
  assert.equal((await page(app, "/", { cookie: alice })).status, 401);
  const shown = await page(app, "/", { cookie: bob });
  assert.equal(shown.status, 200);
  assert.match(signedInBar(shown.html) ?? "", /Signed in as <\/span><strong id="user-name">bob<\/strong>/);
  const gone = await request(app, "api/deployments", {
    headers: { authorization: "Bearer alices-own-token" },
  });
  await gone.body?.cancel();
  assert.equal(gone.status, 401);
});

Deno.test("--auth-header from a trusted proxy (127.0.0.1/32) names the user, with no sign-out form", async (t) => {
  await using app = await startTestApp({
    command: "true",
    trustedProxies: ["127.0.0.1/32"],
    authHeader: "X-Forwarded-User",
  });
  await t.step("the header is who starts, and who the pages name", async () => {
    const headers = { "x-forwarded-user": "carol@example.com" };
    assert.equal((await start(app, headers)).startedBy, "carol@example.com");
    const shown = await page(app, "/", headers);
    assert.equal(shown.status, 200);
    assert.equal(
      signedInBar(shown.html),
      '<div class="signed-in"><span class="user"><span class="label">Signed in as </span><strong id="user-name">carol@example.com</strong>' +
        "</span></div>",
      "signing out is the proxy's",
    );
  });
  await t.step(
    "without the header: 401, and a page that says where to sign in, not a token form",
    async () => {
      const shown = await page(app, "/");
      assert.equal(shown.status, 401);
      assert.ok(!shown.html.includes('name="token"'), "no token form");
      assert.match(
        shown.html,
        /Sign in through the single-sign-on proxy: shiplog takes who you are from its X-Forwarded-User header/,
      );
      const signInPage = await request(app, "sign-in?next=/deployment/x", { headers: HTML });
      await signInPage.body?.cancel();
      assert.equal(signInPage.status, 303, "no token form at /sign-in either");
      assert.equal(signInPage.headers.get("location"), "/deployment/x");
      const api = await request(app, "api/deployments");
      assert.equal(api.status, 401);
      assert.equal(
        await api.text(),
        "Sign in through the single-sign-on proxy: shiplog takes who you are from its X-Forwarded-User header\n",
      );
    },
  );
  await t.step("a header naming nobody fit to be a user is a 400 naming the header", async () => {
    const response = await request(app, "api/deployments", {
      headers: { "x-forwarded-user": "<b>carol</b>" },
    });
    assert.equal(response.status, 400);
    assert.equal(
      await response.text(),
      'Cannot take the user from X-Forwarded-User: Cannot use user name "<b>carol</b>": expected 1 to 100 ' +
        "letters, digits, or . _ @ + -, starting with a letter or digit\n",
    );
  });
});

Deno.test("--auth-header from a peer outside --trusted-proxy (10.0.0.0/8) is ignored: unauthenticated", async () => {
  await using app = await startTestApp({
    command: "true",
    token: TOKEN,
    users: USERS,
    trustedProxies: ["10.0.0.0/8"],
    authHeader: "X-Forwarded-User",
  });
  // Not even with an X-Forwarded-For that names a trusted address: only the TCP peer counts.
  const spoofed = { "x-forwarded-user": "alice", "x-forwarded-for": "10.0.0.1" };
  const refused = await page(app, "/", spoofed);
  assert.equal(refused.status, 401);
  assert.match(refused.html, /name="token"/, "the sign-in form: the tokens still let people in");
  const post = await request(app, "start", {
    method: "POST",
    headers: { accept: "application/json", ...spoofed },
  });
  await post.body?.cancel();
  assert.equal(post.status, 401);
  // With a token beside it, the token says who it is, not the header.
  const record = await start(app, { ...spoofed, authorization: "Bearer bobs-own-token" });
  assert.equal(record.startedBy, "bob");
  const list = await request(app, "api/deployments", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual((await list.json() as Deployment[]).map(({ startedBy }) => startedBy), ["bob"]);
});

Deno.test({
  name:
    "on a cluster's Redis a user's session is theirs on every instance, and a sign-out on one holds on all",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    const cluster = {
      redis: redis.url,
      redisPrefix: `people${crypto.randomUUID().slice(0, 8)}`,
      users: USERS,
    };
    await using a = await startTestApp({ ...cluster, instance: "a", command: "true" });
    await using b = await startTestApp({ ...cluster, instance: "b", command: "true" });
    const cookie = await signIn(a, "alices-own-token");
    const onB = await page(b, "/", { cookie });
    assert.equal(onB.status, 200);
    assert.match(signedInBar(onB.html) ?? "", /Signed in as <\/span><strong id="user-name">alice<\/strong>/);
    const started = await request(b, "start", {
      method: "POST",
      headers: { cookie, accept: "application/json" },
    });
    assert.equal((await started.json()).startedBy, "alice");
    const out = await request(b, "sign-out", {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    });
    await out.body?.cancel();
    assert.equal(out.status, 303);
    assert.equal((await page(a, "/", { cookie })).status, 401);
    assert.equal((await page(b, "/", { cookie })).status, 401);
  },
});

Deno.test("main.ts reads --users-file: its users sign in, their tokens are masked in logs", async () => {
  await using dir = await makeTempDir();
  const usersFile = `${dir.path}/users`;
  await Deno.writeTextFile(usersFile, USERS_FILE);
  // The variable, as a service would be configured; the command prints a user's token, which must not show.
  await using shiplog = await spawnShiplog(`${dir.path}/data`, ["--command", "echo alices-own-token"], {
    env: { SHIPLOG_USERS_FILE: usersFile },
  });
  assert.equal((await page(shiplog, "/")).status, 401);
  const record = await start(shiplog, { authorization: "Bearer bobs-own-token" });
  assert.equal(record.startedBy, "bob");
  let log = "";
  for (let tries = 0; tries < 200 && !log.includes("***"); tries++) {
    const response = await request(shiplog, `deployments/${record.id}/log`, {
      headers: { authorization: "Bearer bobs-own-token" },
    });
    log = await response.text();
    if (!log.includes("***")) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.equal(log, "***\n");
});

Deno.test("main.ts exits 2 on a bad users file, naming the file and the line, before the directory is touched", async () => {
  await using temp = await makeTempDir();
  const run = async (contents: string, args: string[] = []) => {
    const file = `${temp.path}/users`;
    await Deno.writeTextFile(file, contents);
    const dir = `${temp.path}/data`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "main.ts", "--port", "0", "--dir", dir, "--users-file", file, ...args],
      cwd: new URL("../..", import.meta.url),
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    const touched = await Deno.stat(dir).then(() => true, () => false);
    return { code: output.code, stderr: new TextDecoder().decode(output.stderr), file, touched };
  };
  const bad = await run("# team\nalice:alices-own-token\nbob\n");
  assert.deepEqual(bad, {
    code: 2,
    stderr:
      `shiplog: Cannot use users file ${bad.file}: line 3: expected name:token or name:sha256:<hex of the ` +
      "token's SHA-256>\n",
    file: bad.file,
    touched: false,
  });
  const twice = await run("alice:alices-own-token", ["--token", "alices-own-token"]);
  assert.equal(twice.code, 2);
  assert.equal(
    twice.stderr,
    `shiplog: Cannot use users file ${twice.file}: the token of "alice" is the unnamed --token too; give each ` +
      "their own\n",
  );
  const missing = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--port", "0", "--users-file", `${temp.path}/none`],
    cwd: new URL("../..", import.meta.url),
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  assert.equal(missing.code, 1);
  assert.match(new TextDecoder().decode(missing.stderr), /^shiplog: No such file or directory/);
});
