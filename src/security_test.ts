/**
 * Integration tests of the hardening promises (issue 5) over real HTTP: a real shiplog (`startApp`) on a free
 * port of 127.0.0.1, real `fetch`, real files and real deploy commands. Each test would fail without the
 * feature it names.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { App } from "./app.ts";
import { type Deployment, isFinal } from "./logs/deployment.ts";
import { LOCK_FILE } from "./logs/directory_lock.ts";
import { TIMES_DIR } from "./logs/file_store.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  metric,
  startTestApp,
  type TestApp,
  TIMEOUT_MS,
} from "./testing/test_app.ts";
import { delay, makeTempDir, waitFor, waitForValue } from "./testing/test_helpers.ts";

const TOKEN = "t0ken-for-security-tests";
const BEARER = { authorization: `Bearer ${TOKEN}` };

/** `fetch` with a deadline, never following redirects (so that every `Location` can be checked). */
function request(app: App, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(path, app.url), {
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
    ...init,
  });
}

async function waitForEnd(app: App, id: string, headers: Record<string, string> = {}): Promise<Deployment> {
  return await waitForValue(`deployment ${id} to end`, async () => {
    const deployment = await getDeployment(app, id, headers);
    return isFinal(deployment.status) ? deployment : undefined;
  }, APP_WAIT);
}

/** The whole body of an event stream that ends by itself (after `done`), within the deadline. */
async function readStream(app: App, path: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await request(app, path, { headers });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  return await response.text();
}

/** The `data:` of the unnamed (log line) events of an SSE text. */
function logLines(sse: string): string[] {
  return sse.split("\n\n").filter((event) => /^id: \d+$/m.test(event) && !/^event:/m.test(event))
    .map((event) =>
      event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
    );
}

/** Waits until the server counts `count` open event streams. */
async function waitForStreams(app: App, count: number, what: string): Promise<void> {
  await waitFor(what, async () => await metric(app, "shiplog_event_streams") === count, APP_WAIT);
}

/** Closes the first of the `open` streams, waits until the server released it, and opens `path` in its place. */
async function closeOneAndReopen(app: App, open: Response[], path: string): Promise<void> {
  await open.shift()!.body!.cancel();
  await waitForStreams(app, open.length, "a closed stream to be released");
  const again = await openViewer(app, path);
  assert.equal(again.status, 200);
  open.push(again);
}

/** Opens an event stream and reads its first chunk, so that the server counts it as open. */
async function openViewer(app: App, path: string): Promise<Response> {
  const response = await request(app, path);
  if (response.status === 200) {
    const reader = response.body!.getReader();
    await reader.read();
    reader.releaseLock();
  }
  return response;
}

function assertSecurityHeaders(response: Response, what: string): void {
  const csp = response.headers.get("content-security-policy") ?? "";
  assert.match(csp, /frame-ancestors 'none'/, what);
  // Scripts only from this origin (pages), or inline ones named by their hash (the self-contained sign-in page).
  const scripts = /(?:^|;)\s*script-src ([^;]*)/.exec(csp)?.[1];
  if (scripts !== undefined) assert.match(scripts.trim(), /^(?:'self'|'sha256-[A-Za-z0-9+/]+=*')$/, what);
  else assert.match(csp, /(?:^|;)\s*default-src 'none'/, what);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, what);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff", what);
  assert.equal(response.headers.get("referrer-policy"), "same-origin", what);
}

// --- Access control -------------------------------------------------------------------------------------

Deno.test("with a token, every route but /healthz is 401 with WWW-Authenticate without credentials", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "echo secret-log-line" });
  const { id } = await createDeployment(app, BEARER);
  await waitForEnd(app, id, BEARER);
  const routes: [string, string][] = [
    ["GET", ""],
    ["POST", "start"],
    ["GET", `deployment/${id}`],
    ["GET", "events"],
    ["GET", `events/${id}`],
    ["GET", `deployments/${id}/log`],
    ["GET", "api/deployments"],
    ["GET", `api/deployments/${id}`],
    ["POST", `api/deployments/${id}/cancel`],
    ["GET", "static/style.css"],
    ["GET", "static/deployment.js"],
    ["GET", "metrics"],
    ["GET", "no/such/page"],
    ["GET", `events/${crypto.randomUUID()}`],
    ["DELETE", "api/deployments"],
    ["POST", "sign-out/../start"],
  ];
  for (const [method, path] of routes) {
    const response = await request(app, path, { method });
    const body = await response.text();
    assert.equal(response.status, 401, `${method} /${path}`);
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="shiplog"', `${method} /${path}`);
    assert.equal(body, "Sign in with the access token\n", `${method} /${path}`);
  }
  const health = await request(app, "healthz");
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "ok\n");
  // Nothing was started by the refused POST /start.
  const list: Deployment[] = await (await request(app, "api/deployments", { headers: BEARER })).json();
  assert.deepEqual(list.map((d) => d.id), [id]);
  // And with the token, the same routes answer.
  for (const path of ["", `deployment/${id}`, `deployments/${id}/log`, "static/style.css", "metrics"]) {
    const response = await request(app, path, { headers: BEARER });
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
});

Deno.test("a browser without a session gets the sign-in page with 401, and no token in it", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const { id } = await createDeployment(app, BEARER);
  const response = await request(app, `deployment/${id}?view=full`, {
    headers: { accept: "text/html,application/xhtml+xml" },
  });
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="shiplog"');
  assert.equal(response.headers.get("cache-control"), "no-store");
  const page = await response.text();
  assert.match(page, /<form method="post" action="\/sign-in">/);
  assert.match(page, /type="password"/);
  assert.ok(page.includes(`name="next" value="/deployment/${id}?view=full"`), page);
  assert.ok(!page.includes(TOKEN));
  // Its one inline script is the one its policy allows, by hash; no script is loaded from anywhere.
  const inline = [...page.matchAll(/<script>([^<]*)<\/script>/g)].map((match) => match[1]);
  assert.equal(inline.length, 1, page);
  assert.equal(page.match(/<script/gi)?.length, 1, page);
  const hash = createHash("sha256").update(inline[0]).digest("base64");
  const csp = response.headers.get("content-security-policy") ?? "";
  assert.ok(csp.includes(`script-src 'sha256-${hash}'`), csp);

  // A POST (Start, say) cannot be repeated by the redirect after sign-in: that goes home instead.
  const post = await request(app, "start", {
    method: "POST",
    headers: { accept: "text/html", "content-type": "application/x-www-form-urlencoded" },
    body: "",
  });
  assert.equal(post.status, 401);
  assert.ok((await post.text()).includes('name="next" value="/"'));
});

Deno.test("signing in sets an HttpOnly SameSite=Lax cookie that is not the token and opens pages and streams", async (t) => {
  await using app = await startTestApp({ token: TOKEN, command: "echo first; echo second" });
  const { id } = await createDeployment(app, BEARER);
  await waitForEnd(app, id, BEARER);
  let cookie = "";
  await t.step("POST /sign-in with the right token: 303 to next with the session cookie", async () => {
    const response = await request(app, "sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TOKEN, next: `/deployment/${id}` }),
    });
    assert.equal(response.status, 303);
    await response.body?.cancel();
    const location = response.headers.get("location")!;
    assert.equal(location, `/deployment/${id}`);
    assert.ok(!location.includes(TOKEN));
    const setCookie = response.headers.get("set-cookie")!;
    assert.match(setCookie, /^shiplog_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}; /);
    assert.match(setCookie, /; HttpOnly(;|$)/);
    assert.match(setCookie, /; SameSite=Lax(;|$)/);
    assert.doesNotMatch(setCookie, /Secure/, "no Secure over plain http, or browsers would drop it");
    assert.ok(!setCookie.includes(TOKEN));
    cookie = setCookie.split(";")[0];
    assert.notEqual(cookie.split("=")[1], TOKEN);
    await response.body?.cancel();
  });
  await t.step("the cookie opens pages, the API and the event stream", async () => {
    for (const path of ["", `deployment/${id}`, "api/deployments", "static/style.css"]) {
      const response = await request(app, path, { headers: { cookie, accept: "text/html" } });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
    const sse = await readStream(app, `events/${id}`, { cookie });
    assert.deepEqual(logLines(sse), ["first", "second"]);
    assert.match(sse, /event: done\n/);
  });
  await t.step("the token itself is not a session cookie", async () => {
    const response = await request(app, "api/deployments", {
      headers: { cookie: `shiplog_session=${TOKEN}` },
    });
    assert.equal(response.status, 401);
    await response.body?.cancel();
  });
  await t.step("sign-out clears the cookie, and the session it held is refused from then on", async () => {
    const response = await request(app, "sign-out", { method: "POST", headers: { cookie } });
    assert.equal(response.status, 303);
    await response.body?.cancel();
    assert.match(response.headers.get("set-cookie")!, /^shiplog_session=; .*Max-Age=0/);
    assert.equal(await status(app, "api/deployments", { cookie }), 401);
  });
});

/** Signs in with `token` from the form and returns the `Cookie` header value of the new session. */
async function signIn(app: App, token = TOKEN, headers: Record<string, string> = {}): Promise<string> {
  const response = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ token, next: "/" }),
  });
  assert.equal(response.status, 303);
  await response.body?.cancel();
  return response.headers.get("set-cookie")!.split(";")[0];
}

/** The status of a GET of `path`; its body is dropped. */
async function status(app: App, path: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await request(app, path, { headers });
  await response.body?.cancel();
  return response.status;
}

Deno.test("each sign-in is a session of its own, and signing one out leaves the others", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const [first, second] = [await signIn(app), await signIn(app)];
  assert.notEqual(first, second);
  const out = await request(app, "sign-out", { method: "POST", headers: { cookie: first } });
  assert.equal(out.status, 303);
  await out.body?.cancel();
  assert.equal(await status(app, "api/deployments", { cookie: first }), 401);
  assert.equal(await status(app, "api/deployments", { cookie: second }), 200);
});

Deno.test("a session is signed out for good: still refused after a restart; a new token ends every session", async () => {
  await using dir = await makeTempDir();
  const config = { token: TOKEN, command: "true", dir: dir.path };
  let kept = "", signedOut = "";
  {
    await using app = await startTestApp(config);
    [kept, signedOut] = [await signIn(app), await signIn(app)];
    await (await request(app, "sign-out", { method: "POST", headers: { cookie: signedOut } })).body?.cancel();
    assert.equal(await status(app, "api/deployments", { cookie: signedOut }), 401);
  }
  {
    await using app = await startTestApp(config);
    assert.equal(await status(app, "api/deployments", { cookie: kept }), 200, "a session outlives a restart");
    assert.equal(await status(app, "api/deployments", { cookie: signedOut }), 401, "a sign-out too");
  }
  {
    await using app = await startTestApp({ ...config, token: `${TOKEN}-new` });
    assert.equal(await status(app, "api/deployments", { cookie: kept }), 401, "the token changed");
    const fresh = await signIn(app, `${TOKEN}-new`);
    assert.equal(await status(app, "api/deployments", { cookie: fresh }), 200);
  }
  const file = await Deno.lstat(join(dir.path, ".sessions.json"));
  assert.equal(file.mode! & 0o777, 0o600);
});

Deno.test("a session expires after the session lifetime", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" }, { sessionMs: 1000 });
  const signedIn = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: TOKEN, next: "/" }),
  });
  await signedIn.body?.cancel();
  // The browser drops it then too.
  assert.match(signedIn.headers.get("set-cookie")!, /; Max-Age=1;/);
  const cookie = signedIn.headers.get("set-cookie")!.split(";")[0];
  const issued = performance.now();
  assert.equal(await status(app, "api/deployments", { cookie }), 200);
  await waitFor(
    "the session to expire",
    async () => await status(app, "api/deployments", { cookie }) === 401,
    {
      ...APP_WAIT,
      intervalMs: 100,
    },
  );
  assert.ok(performance.now() - issued >= 900, "not before its time");
});

Deno.test("made-up session cookies, twenty of them, lock nobody out: the real cookie and token still pass", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const cookie = await signIn(app);
  const [payload] = cookie.slice("shiplog_session=".length).split(".");
  for (let i = 0; i < 20; i++) {
    const forged = i % 2 ? `${payload}.${btoa(String(i)).padEnd(43, "A")}` : `guess-${crypto.randomUUID()}`;
    assert.equal(await status(app, "api/deployments", { cookie: `shiplog_session=${forged}` }), 401, forged);
  }
  assert.equal(await status(app, "api/deployments", { cookie }), 200);
  assert.equal(await status(app, "api/deployments", BEARER), 200);
  assert.equal(await status(app, "api/deployments", { authorization: "Bearer wrong-token" }), 401, "not 429");
});

Deno.test("a wrong token is 401: at sign-in (the form again) and as a bearer", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const signIn = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: `${TOKEN}x`, next: "/" }),
  });
  assert.equal(signIn.status, 401);
  assert.equal(signIn.headers.get("set-cookie"), null);
  assert.equal(signIn.headers.get("location"), null);
  const page = await signIn.text();
  assert.match(page, /Wrong token/);
  assert.ok(!page.includes(`${TOKEN}x`), "the typed token is not echoed back");
  const bearer = await request(app, "api/deployments", { headers: { authorization: "Bearer wrong-token" } });
  assert.equal(bearer.status, 401);
  assert.equal(await bearer.text(), "Wrong token\n");
});

Deno.test("sign-in's next cannot send anyone off-site", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const hostile = [
    "//evil.example",
    "//evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    " /x",
    "/%0d%0aSet-Cookie: x=y",
    "/\r\nSet-Cookie: x=y",
    "/\u0000",
    "/\u0001",
    "/\u00e9",
    "",
  ];
  for (const next of hostile) {
    const response = await request(app, "sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TOKEN, next }),
    });
    assert.equal(response.status, 303, JSON.stringify(next));
    const location = response.headers.get("location")!;
    // A hostile next falls back to "/"; "/%0d%0a…" is a harmless local path, kept percent-encoded.
    assert.ok(location === "/" || location === "/%0d%0aSet-Cookie:", JSON.stringify(next));
    assert.ok(location === "/" || !next.includes("evil"), JSON.stringify(next));
    assert.equal(response.headers.getSetCookie().length, 1, JSON.stringify(next));
    await response.body?.cancel();
  }
  for (const next of ["//evil.example", "https://evil.example", "/\\evil.example"]) {
    const page = await (await request(app, `sign-in?next=${encodeURIComponent(next)}`)).text();
    assert.ok(page.includes('name="next" value="/"'), next);
  }
  // The 401 page of a path that looks like a protocol-relative URL does not return there either.
  const page = await (await fetch(`${app.url}/evil.example`, {
    headers: { accept: "text/html" },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })).text();
  assert.ok(page.includes('name="next" value="/"'), page);
});

Deno.test("repeated wrong tokens from one address get 429 with Retry-After, the right one still passes", async () => {
  await using app = await startTestApp(
    { token: TOKEN, command: "true" },
    { maxAuthFailures: 3, authIntervalMs: 100 },
  );
  for (let i = 0; i < 3; i++) {
    assert.equal(await status(app, "api/deployments", { authorization: `Bearer guess-${i}` }), 401);
  }
  const refused = await request(app, "api/deployments", { headers: { authorization: "Bearer guess-4" } });
  assert.equal(refused.status, 429);
  const retryAfter = Number(refused.headers.get("retry-after"));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
  assert.equal(
    await refused.text(),
    "Too many wrong tokens from your address: tries are slowed down; try again later\n",
  );
  const wrongForm = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: "guess-5", next: "/" }),
  });
  assert.equal(wrongForm.status, 429);
  assert.ok(Number(wrongForm.headers.get("retry-after")) >= 1);
  assert.match(
    await wrongForm.text(),
    /Too many wrong tokens from your address.*name="token"/s,
    "the form again",
  );
  assert.equal(await status(app, "api/deployments", BEARER), 200);
  assert.equal(await status(app, "api/deployments"), 401, "no credentials: sign in, not 429");
  const cookie = await signIn(app);
  assert.equal(await status(app, "api/deployments", { cookie }), 200);
  assert.equal(await status(app, "healthz"), 200);
});

Deno.test("a throttled address's guesses are answered one per interval, however many it sends at once", async () => {
  const intervalMs = 300;
  await using app = await startTestApp(
    { token: TOKEN, command: "true" },
    { maxAuthFailures: 1, authIntervalMs: intervalMs },
  );
  assert.equal(await status(app, "api/deployments", { authorization: "Bearer guess-0" }), 401);
  const started = performance.now();
  const guesses = Array.from(
    { length: 5 },
    (_, i) => status(app, "api/deployments", { authorization: `Bearer g-${i}` }),
  );
  assert.deepEqual(await Promise.all(guesses), [429, 429, 429, 429, 429]);
  const took = performance.now() - started;
  assert.ok(took >= 4 * intervalMs - 50, `5 guesses answered within ${Math.round(took)} ms`);
  assert.equal(await status(app, "api/deployments", BEARER), 200);
});

Deno.test("X-Forwarded-For is believed only from a --trusted-proxy: throttle and viewer caps per forwarded client", async (t) => {
  const guess = (client: string) => ({ authorization: "Bearer wrong-guess", "x-forwarded-for": client });
  await t.step(
    "without --trusted-proxy the header is ignored: every client is the proxy's address",
    async () => {
      await using app = await startTestApp({ token: TOKEN, command: "true" }, { maxAuthFailures: 2 });
      assert.equal(await status(app, "api/deployments", guess("203.0.113.1")), 401);
      assert.equal(await status(app, "api/deployments", guess("203.0.113.2")), 401);
      assert.equal(await status(app, "api/deployments", guess("203.0.113.3")), 429);
    },
  );
  await t.step("from a trusted proxy the throttle is per forwarded client", async () => {
    await using app = await startTestApp(
      { token: TOKEN, command: "true", trustedProxies: ["127.0.0.1/32"] },
      { maxAuthFailures: 2 },
    );
    assert.equal(await status(app, "api/deployments", guess("203.0.113.1")), 401);
    assert.equal(await status(app, "api/deployments", guess("203.0.113.1")), 401);
    assert.equal(await status(app, "api/deployments", guess("203.0.113.1")), 429);
    // A client cannot pick an address of its own: the proxy's addition, on the right, is the one used.
    assert.equal(await status(app, "api/deployments", guess("198.51.100.9, 203.0.113.1")), 429);
    assert.equal(await status(app, "api/deployments", guess("203.0.113.2")), 401, "another client");
    assert.equal(
      await status(app, "api/deployments", guess("203.0.113.2, 127.0.0.1")),
      401,
      "past our proxies",
    );
    assert.equal(await status(app, "api/deployments", guess("203.0.113.2, 127.0.0.1")), 429);
  });
  await t.step(
    "the per-client cap on event streams follows the forwarded address, only from a trusted proxy",
    async () => {
      for (const trusted of [true, false]) {
        await using app = await startTestApp({
          command: "sleep 30",
          maxViewers: 100,
          maxViewersPerClient: 1,
          trustedProxies: trusted ? ["127.0.0.1/32"] : [],
        });
        const open: Response[] = [];
        try {
          const from = async (client: string) => {
            const response = await request(app, "events", { headers: { "x-forwarded-for": client } });
            if (response.status === 200) open.push(response);
            else await response.body?.cancel();
            return response.status;
          };
          assert.equal(await from("203.0.113.1"), 200);
          assert.equal(await from("203.0.113.1"), 429);
          assert.equal(await from("203.0.113.2"), trusted ? 200 : 429);
        } finally {
          for (const response of open) await response.body?.cancel();
        }
        await waitForStreams(app, 0, "every stream released");
      }
    },
  );
});

// --- Cross-site requests --------------------------------------------------------------------------------

Deno.test("cross-site POSTs are refused with 403; same-origin and header-less clients are not", async (t) => {
  await using app = await startTestApp({ command: "sleep 30" });
  const origin = new URL(app.url).origin;
  const count = async () => ((await (await request(app, "api/deployments")).json()) as Deployment[]).length;
  await t.step("POST /start", async () => {
    for (
      const headers of [
        { "sec-fetch-site": "cross-site" },
        { "sec-fetch-site": "same-site" },
        { "sec-fetch-site": "cross-site", origin },
        { origin: "http://evil.example" },
        { origin: "null" },
        { origin: origin.replace("127.0.0.1", "localhost") },
      ] as Record<string, string>[]
    ) {
      const response = await request(app, "start", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: "",
      });
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.equal(await response.text(), "Cross-site requests are refused\n");
    }
    assert.equal(await count(), 0, "a refused POST started nothing");
    const allowed: Record<string, string>[] = [{ "sec-fetch-site": "same-origin", origin }, { origin }, {}];
    for (const headers of allowed) {
      const response = await request(app, "start", { method: "POST", headers });
      assert.equal(response.status, 303, JSON.stringify(headers));
      await response.body?.cancel();
    }
    assert.equal(await count(), 3);
  });
  await t.step("POST /api/deployments/<id>/cancel", async () => {
    const { id } = await createDeployment(app);
    const refused: Record<string, string>[] = [{ "sec-fetch-site": "cross-site" }, {
      origin: "https://evil.example",
    }];
    for (const headers of refused) {
      const response = await request(app, `api/deployments/${id}/cancel`, { method: "POST", headers });
      assert.equal(response.status, 403, JSON.stringify(headers));
      await response.body?.cancel();
    }
    assert.notEqual((await getDeployment(app, id)).status, "cancelled");
    const response = await request(app, `api/deployments/${id}/cancel`, {
      method: "POST",
      headers: { "sec-fetch-site": "same-origin" },
    });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).status, "cancelled");
  });
});

Deno.test("a cross-site sign-in is refused too, even with the right token", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const response = await request(app, "sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" },
    body: new URLSearchParams({ token: TOKEN }),
  });
  assert.equal(response.status, 403);
  assert.equal(response.headers.get("set-cookie"), null);
  await response.body?.cancel();
});

Deno.test("a cross-site sign-out is refused with 403 and signs nobody out", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "true" });
  const cookie = await signIn(app);
  const crossSite: Record<string, string>[] = [{ "sec-fetch-site": "cross-site" }, {
    origin: "https://evil.example",
  }];
  for (const headers of crossSite) {
    const response = await request(app, "sign-out", { method: "POST", headers: { cookie, ...headers } });
    assert.equal(response.status, 403, JSON.stringify(headers));
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(await response.text(), "Cross-site requests are refused\n");
  }
  assert.equal(await status(app, "api/deployments", { cookie }), 200, "still signed in");
  const own = await request(app, "sign-out", {
    method: "POST",
    headers: { cookie, "sec-fetch-site": "same-origin" },
  });
  assert.equal(own.status, 303);
  await own.body?.cancel();
  assert.equal(await status(app, "api/deployments", { cookie }), 401);
});

// --- Security headers -----------------------------------------------------------------------------------

Deno.test("security headers are on pages, JSON, assets, streams, 401, 404, 405, 413 and 415", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "echo x", maxBodyBytes: 1024 });
  const { id } = await createDeployment(app, BEARER);
  await waitForEnd(app, id, BEARER);
  const cases: [string, string, RequestInit][] = [
    ["home page", "", { headers: BEARER }],
    ["deployment page", `deployment/${id}`, { headers: BEARER }],
    ["JSON", "api/deployments", { headers: BEARER }],
    ["asset", "static/style.css", { headers: BEARER }],
    ["raw log", `deployments/${id}/log`, { headers: BEARER }],
    ["event stream", `events/${id}`, { headers: BEARER }],
    ["metrics", "metrics", { headers: BEARER }],
    ["health", "healthz", {}],
    ["404", "no/such/page", { headers: BEARER }],
    ["401", "api/deployments", {}],
    ["401 sign-in page", "", { headers: { accept: "text/html" } }],
    ["sign-in page", "sign-in", {}],
    ["405", "api/deployments", { method: "PUT", headers: BEARER }],
    ["413", "start", { method: "POST", headers: BEARER, body: "x".repeat(2000) }],
    ["415", "start", { method: "POST", headers: { ...BEARER, "content-type": "text/xml" }, body: "<a/>" }],
  ];
  for (const [what, path, init] of cases) {
    const response = await request(app, path, init);
    assertSecurityHeaders(response, what);
    await response.body?.cancel();
  }
});

// --- TLS ------------------------------------------------------------------------------------------------

Deno.test("with a certificate shiplog serves HTTPS and the session cookie is Secure", async () => {
  await using certDir = await makeTempDir();
  const openssl = await new Deno.Command("openssl", {
    args: [
      ..."req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1".split(" "),
      // A leaf, not a CA (rustls refuses a CA certificate as a server's), valid for the address used.
      ..."-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE"
        .split(" "),
      ..."-addext extendedKeyUsage=serverAuth -keyout k.pem -out c.pem".split(" "),
    ],
    cwd: certDir.path,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(openssl.success, new TextDecoder().decode(openssl.stderr));
  const cert = await Deno.readTextFile(join(certDir.path, "c.pem"));
  const key = await Deno.readTextFile(join(certDir.path, "k.pem"));
  await using app = await startTestApp({ token: TOKEN, command: "echo over-tls", tls: { cert, key } });
  assert.match(app.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  using client = Deno.createHttpClient({ caCerts: [cert] });
  const get = (path: string, init: RequestInit = {}) =>
    fetch(new URL(path, app.url), {
      client,
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
      ...init,
    });
  const health = await get("healthz");
  assert.equal(await health.text(), "ok\n");
  const signIn = await get("sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: TOKEN }),
  });
  assert.equal(signIn.status, 303);
  const setCookie = signIn.headers.get("set-cookie")!;
  assert.match(setCookie, /; Secure(;|$)/);
  assert.match(setCookie, /; HttpOnly(;|$)/);
  await signIn.body?.cancel();
  const cookie = setCookie.split(";")[0];
  const started = await get("start", { method: "POST", headers: { cookie, accept: "application/json" } });
  assert.equal(started.status, 201);
  const { id } = await started.json();
  const sse = await (await get(`events/${id}`, { headers: { cookie } })).text();
  assert.deepEqual(logLines(sse), ["over-tls"]);
  // Plain HTTP on the TLS port gets no page.
  const plain = await fetch(app.url.replace("https:", "http:") + "healthz", {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).then((r) => r.body?.cancel().then(() => r.status), () => "refused");
  assert.notEqual(plain, 200);
});

// --- Limits ---------------------------------------------------------------------------------------------

Deno.test("a body over maxBodyBytes is 413, declared or chunked", async (t) => {
  await using app = await startTestApp({ token: TOKEN, command: "true", maxBodyBytes: 1024 });
  await t.step("declared by content-length", async () => {
    for (const path of ["start", "sign-in", `api/deployments/${crypto.randomUUID()}/cancel`]) {
      const response = await request(app, path, {
        method: "POST",
        headers: { ...BEARER, "content-type": "application/x-www-form-urlencoded" },
        body: `token=${"x".repeat(2000)}`,
      });
      assert.equal(response.status, 413, path);
      assert.equal(await response.text(), "Request body too large (limit 1024 bytes)\n");
    }
    const list: Deployment[] = await (await request(app, "api/deployments", { headers: BEARER })).json();
    assert.equal(list.length, 0, "the refused POST /start started nothing");
  });
  await t.step("a chunked body to a route that ignores it, whose length is not declared", async () => {
    for (const path of ["start", "sign-out", `api/deployments/${crypto.randomUUID()}/cancel`]) {
      const parts = Array.from({ length: 8 }, () => "x".repeat(512));
      const response = await request(app, path, {
        method: "POST",
        headers: { ...BEARER, "content-type": "application/x-www-form-urlencoded" },
        body: ReadableStream.from(parts).pipeThrough(new TextEncoderStream()),
      });
      assert.equal(response.status, 413, path);
      assert.equal(await response.text(), "Request body too large (limit 1024 bytes)\n");
    }
    const list: Deployment[] = await (await request(app, "api/deployments", { headers: BEARER })).json();
    assert.equal(list.length, 0, "the refused POST /start started nothing");
  });
  await t.step("a chunked sign-in body, whose length is not declared", async () => {
    const chunk = new TextEncoder().encode("x".repeat(512));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than the cap, but bounded: the server must stop reading long before the end.
        if (sent++ < 1000) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await request(app, "sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new Blob([`token=${TOKEN}&next=/&pad=`]).stream().pipeThrough(
        new TransformStream({
          async flush(controller) {
            for await (const part of body) controller.enqueue(part);
          },
        }),
      ),
    });
    assert.equal(response.status, 413);
    assert.equal(response.headers.get("set-cookie"), null, "no session from a body past the cap");
    await response.body?.cancel();
  });
  assert.equal(await (await request(app, "healthz")).text(), "ok\n");
});

Deno.test("wrong content types are 415 and wrong methods 405 with Allow", async () => {
  await using app = await startTestApp({ token: TOKEN, command: "sleep 30" });
  const { id } = await createDeployment(app, BEARER);
  for (
    const [path, type] of [
      ["start", "text/xml"],
      ["start", "text/plain"],
      ["start", "application/octet-stream"],
      [`api/deployments/${id}/cancel`, "text/xml"],
      ["sign-in", "application/json"],
      ["sign-in", "multipart/form-data; boundary=x"],
    ]
  ) {
    const response = await request(app, path, {
      method: "POST",
      headers: { ...BEARER, "content-type": type },
      body: "<a/>",
    });
    assert.equal(response.status, 415, `${type} to /${path}`);
    assert.match(await response.text(), /^Unsupported content type/);
  }
  assert.notEqual((await getDeployment(app, id, BEARER)).status, "cancelled");
  for (
    const [method, path, allow] of [
      ["PUT", "start", "GET, HEAD, POST"],
      ["POST", "", "GET, HEAD"],
      ["DELETE", `api/deployments/${id}`, "GET, HEAD"],
      ["PATCH", `events/${id}`, "GET, HEAD"],
      ["POST", `deployments/${id}/log`, "GET, HEAD"],
      ["GET", `api/deployments/${id}/cancel`, "POST"],
      ["OPTIONS", "healthz", "GET, HEAD"],
      ["PUT", "sign-in", "GET, HEAD, POST"],
      ["GET", "sign-out", "POST"],
    ]
  ) {
    const response = await request(app, path, { method, headers: BEARER });
    assert.equal(response.status, 405, `${method} /${path}`);
    assert.equal(response.headers.get("allow"), allow, `${method} /${path}`);
    await response.body?.cancel();
  }
});

Deno.test("past maxViewers an event stream is 429 with Retry-After, and the count recovers", async () => {
  await using app = await startTestApp({ command: "sleep 30", maxViewers: 3, maxViewersPerClient: 100 });
  const { id } = await createDeployment(app);
  const open: Response[] = [];
  try {
    for (const path of [`events/${id}`, "events", `events/${id}`]) {
      const response = await openViewer(app, path);
      assert.equal(response.status, 200);
      open.push(response);
    }
    for (const path of [`events/${id}`, "events"]) {
      const refused = await openViewer(app, path);
      assert.equal(refused.status, 429, path);
      assert.ok(Number(refused.headers.get("retry-after")) >= 1);
      assert.equal(await refused.text(), "Too many open event streams (limit 3); try again later\n");
    }
    assert.equal(await metric(app, "shiplog_event_streams"), 3);
    await closeOneAndReopen(app, open, `events/${id}`);
  } finally {
    for (const response of open) await response.body?.cancel();
  }
  await waitForStreams(app, 0, "every stream released");
});

Deno.test("past maxViewersPerClient an address gets 429 with Retry-After, and recovers", async () => {
  await using app = await startTestApp({ command: "sleep 30", maxViewers: 100, maxViewersPerClient: 2 });
  const { id } = await createDeployment(app);
  const open = [await openViewer(app, `events/${id}`), await openViewer(app, `events/${id}`)];
  try {
    for (const response of open) assert.equal(response.status, 200);
    const refused = await openViewer(app, `events/${id}`);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    assert.match(await refused.text(), /from your address \(limit 2\)/);
    // Plain requests are not streams and are not capped.
    const plain = await request(app, "api/deployments");
    assert.equal(plain.status, 200);
    await plain.body?.cancel();
    await closeOneAndReopen(app, open, `events/${id}`);
  } finally {
    for (const response of open) await response.body?.cancel();
  }
  await waitForStreams(app, 0, "every stream released");
});

/** Sends raw bytes and returns the status line of the answer (or how the connection ended). */
async function rawStatus(app: TestApp, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: app.port });
  const timer = setTimeout(() => conn.close(), TIMEOUT_MS);
  try {
    await conn.write(new TextEncoder().encode(text)).catch(() => {});
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer).catch(() => null);
    return n === null ? "closed" : new TextDecoder().decode(buffer.subarray(0, n)).split("\r\n")[0];
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

Deno.test("a huge URL and huge headers get a 4xx from the server, which stays healthy", async () => {
  await using app = await startTestApp({ command: "true" });
  // fetch refuses such a URL itself, so it goes over a raw connection.
  const url = await rawStatus(app, `GET /events/${"a".repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(url, /^HTTP\/1\.1 4\d\d /, url);
  const header = await request(app, "healthz", { headers: { "x-huge": "h".repeat(1024 * 1024) } });
  assert.ok(header.status >= 400 && header.status < 500, String(header.status));
  await header.body?.cancel();
  const many = await request(app, "healthz", {
    headers: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`x-header-${i}`, "v"])),
  });
  assert.ok(many.status >= 400 && many.status < 500, String(many.status));
  await many.body?.cancel();
  const health = await request(app, "healthz");
  assert.equal(await health.text(), "ok\n");
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
});

// --- What reaches the log -------------------------------------------------------------------------------

Deno.test("secrets are masked as *** in the log file, the raw log and the event stream", async () => {
  // The command builds the secret, so that it is not in the command line (which the record shows).
  await using app = await startTestApp({
    command: 's=hunter2; echo "password=$s-secret"; echo "twice $s-secret,$s-secret end" >&2; echo clean',
    secrets: ["hunter2-secret"],
  });
  const { id } = await createDeployment(app);
  assert.equal((await waitForEnd(app, id)).status, "succeeded");
  const file = await Deno.readTextFile(join(app.dir, `${id}.log`));
  const raw = await (await request(app, `deployments/${id}/log`)).text();
  const sse = await readStream(app, `events/${id}`);
  for (const [what, text] of [["file", file], ["raw log", raw], ["event stream", sse]]) {
    assert.ok(!text.includes("hunter2-secret"), `${what}: ${text}`);
  }
  assert.equal(file, raw);
  assert.deepEqual(file.split("\n").sort(), ["", "clean", "password=***", "twice ***,*** end"]);
  assert.deepEqual(logLines(sse).sort(), ["clean", "password=***", "twice ***,*** end"]);
});

Deno.test("a secret whose value ends in a line break, as one read from a file does, is masked in any line", async () => {
  await using app = await startTestApp({
    command: 's=hunter2; printf "password=%shunter;\\n" "$s"; echo "$s"hunter; printf "%shunter" "$s"',
    secrets: ["hunter2hunter\n"],
  });
  const { id } = await createDeployment(app);
  assert.equal((await waitForEnd(app, id)).status, "succeeded");
  assert.equal(await Deno.readTextFile(join(app.dir, `${id}.log`)), "password=***;\n***\n***\n");
});

Deno.test("a secret is masked in its base64 and URL-encoded forms, alone and inside longer values", async () => {
  // The value is the secret with the line break a secret file ends with; the command prints it through real
  // tools (`base64`, `sed` for the percent-encoding), with and without that line break.
  await using app = await startTestApp({
    command: [
      's="p@ss w0rd-$(echo hunter2)"',
      'printf "%s" "$s" | base64',
      'echo "$s" | base64',
      'printf "deploy:%s" "$s" | base64',
      'printf "%s" "$s" | base64 | tr "+/" "-_" | tr -d "="',
      'printf "url=https://deploy:%s@host/\\n" "$(printf "%s" "$s" | sed "s/@/%40/g; s/ /%20/g")"',
      'printf "form=%s\\n" "$(printf "%s" "$s" | sed "s/@/%40/g; s/ /+/g")"',
    ].join("; "),
    secrets: ["p@ss w0rd-hunter2\n"],
  });
  const { id } = await createDeployment(app);
  assert.equal((await waitForEnd(app, id)).status, "succeeded");
  const log = await Deno.readTextFile(join(app.dir, `${id}.log`));
  // `printf` and `echo` differ by the line break, which shares the last characters; `deploy:` the first.
  assert.equal(log, "***\n***K\nZGVwbG95On***\n***\nurl=https://deploy:***@host/\nform=***\n");
});

Deno.test("the access token is masked in logs like any secret", async () => {
  await using app = await startTestApp({
    command: 't=tok3n; echo "leaked: $t-access-value"; printf "Bearer %s" "$t-access-value" | base64',
    token: "tok3n-access-value",
  });
  const auth = { authorization: "Bearer tok3n-access-value" };
  const { id } = await createDeployment(app, auth);
  await waitFor("the end", async () => (await getDeployment(app, id, auth)).status === "succeeded", APP_WAIT);
  // Its base64 too, like any secret's: `QmVhcmVyIH` holds `Bearer ` and the token's first bits, `Q==` its last.
  assert.equal(await Deno.readTextFile(join(app.dir, `${id}.log`)), "leaked: ***\nQmVhcmVyIH***Q==\n");
});

Deno.test("past maxLogBytes one notice is written, nothing after it, and the command runs to its end", async () => {
  await using dir = await makeTempDir();
  const marker = join(dir.path, "ran-to-the-end");
  await using app = await startTestApp({
    dir: dir.path,
    maxLogBytes: 2048,
    command: `i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i of filler output"; done; ` +
      `echo done-marker; touch '${marker}'; exit 0`,
  });
  const { id } = await createDeployment(app);
  const final = await waitForEnd(app, id);
  assert.equal(final.status, "succeeded");
  assert.equal(final.exitCode, 0);
  await Deno.stat(marker); // the command was not stopped at the cap
  const log = await Deno.readTextFile(join(app.dir, `${id}.log`));
  const lines = log.split("\n").slice(0, -1);
  const notices = lines.filter((line) => line.includes("log truncated"));
  assert.equal(notices.length, 1, log.slice(-500));
  assert.equal(lines.at(-1), notices[0], "nothing after the notice");
  assert.equal(lines[0], "line 1 of filler output");
  assert.ok(!log.includes("done-marker"));
  assert.ok(new TextEncoder().encode(log).length <= 2048 + notices[0].length + 1, String(log.length));
  // Viewers are told: the notice is the last line they get.
  const sse = await readStream(app, `events/${id}`);
  assert.equal(logLines(sse).at(-1), notices[0]);
  assert.match(sse, /event: done\nid: \d+\ndata: {"status":"succeeded","exitCode":0}/);
});

Deno.test("retention keeps the newest finished deployments and deletes the others with their files", async () => {
  await using app = await startTestApp({ command: "echo kept", keep: 2 });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const { id } = await createDeployment(app);
    await waitForEnd(app, id);
    ids.push(id);
    // createdAt has millisecond resolution: keep the order unambiguous.
    await delay(5);
  }
  const list: Deployment[] = await (await request(app, "api/deployments")).json();
  assert.deepEqual(list.map((d) => d.id), [ids[3], ids[2]]);
  // The record goes first, its log after it: the last deletion may still be under way.
  const kept = [LOCK_FILE, TIMES_DIR, `${ids[2]}.json`, `${ids[2]}.log`, `${ids[3]}.json`, `${ids[3]}.log`]
    .sort();
  const files = async () => (await Array.fromAsync(Deno.readDir(app.dir), (entry) => entry.name)).sort();
  await waitFor("the files of the two kept", async () => (await files()).join() === kept.join(), APP_WAIT)
    .catch(async (error) => assert.fail(`${error}: ${await files()}`));
  // The sidecars of the deployments deleted went with them.
  const sidecarsGone = async () => {
    const names = await Array.fromAsync(Deno.readDir(`${app.dir}/${TIMES_DIR}`), (entry) => entry.name);
    return !names.some((name) => name.startsWith(ids[0]) || name.startsWith(ids[1]));
  };
  await waitFor("the deleted deployments' sidecars gone", sidecarsGone, APP_WAIT);
  for (const path of [`api/deployments/${ids[0]}`, `events/${ids[1]}`, `deployments/${ids[0]}/log`]) {
    const response = await request(app, path);
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
});

Deno.test("without a token, a request for another host name is refused (DNS rebinding)", async () => {
  await using app = await startTestApp({ command: "true" });
  const ask = async (host: string) => {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: app.port });
    try {
      await connection.write(
        new TextEncoder().encode(
          `GET /api/deployments HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        ),
      );
      const reply = new TextDecoder().decode(await new Response(connection.readable).arrayBuffer());
      return Number(reply.split(" ")[1]);
    } catch (error) {
      connection.close();
      throw error;
    }
  };
  assert.equal(await ask("evil.example"), 403);
  assert.equal(await ask(`evil.example:${app.port}`), 403);
  assert.equal(await ask(`127.0.0.1:${app.port}`), 200);
  assert.equal(await ask(`localhost:${app.port}`), 200);
  assert.equal(await ask(`[::1]:${app.port}`), 200);
});
