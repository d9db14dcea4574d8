/**
 * Hostile input against a real shiplog (`startApp`) on a free port of 127.0.0.1: a table of hostile ids and
 * paths sent byte for byte over raw connections (fetch would normalise them first), a table of hostile
 * `Last-Event-ID` values, and a seeded fuzz run of a few thousand random requests. Whatever comes in: a 4xx
 * where the input is wrong, never a 5xx, never a file's contents, never a hang, never a gap or a duplicate.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { App, AppConfig, AppOptions } from "./app.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  metric,
  startTestApp,
  TIMEOUT_MS,
} from "./testing/test_app.ts";
import { delay, makeTempDir, waitFor, withDeadline } from "./testing/test_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Sends `head` (a request line and headers, exactly these bytes) on a new connection and reads the whole
 * answer (`Connection: close`), within the deadline.
 */
async function rawRequest(port: number, head: Uint8Array): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, TIMEOUT_MS);
  const chunks: Uint8Array[] = [];
  try {
    await conn.write(head);
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
  assert.ok(!timedOut, `no answer within ${TIMEOUT_MS} ms`);
  const text = decoder.decode(concat(chunks));
  const match = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
  return { status: match ? Number(match[1]) : 0, text };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

/**
 * True for a target that, resolved like every WHATWG URL parser does (and so `Deno.serve` before the handler
 * sees it), names the home page or a public asset: `/events/%2e%2e` is `/`. A browser never sends such a
 * target; the page it gets is the same anyone gets at `/`, not a file of the server.
 */
function resolvesToPublicPage(target: string): boolean {
  const { pathname } = new URL(target, "http://127.0.0.1");
  return pathname === "/" ||
    /^\/static\/(index\.html|deployment\.html|style\.css|[a-z]+\.js)$/.test(pathname);
}

/** Texts that must never be in an answer: files outside the deployments, and the id's own record file. */
const FOREIGN_CONTENT = ['"compilerOptions"', "root:", "#!/", "@module"];

Deno.test("hostile ids and paths are 4xx, never a file's contents, never a 5xx", async () => {
  await using app = await startTestApp({ command: "echo line-of-the-log" });
  const { id } = await createDeployment(app);
  await waitFor(
    "the deployment to end",
    async () => (await getDeployment(app, id)).status === "succeeded",
    APP_WAIT,
  );
  const ids = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "..%2f..%2fdeno.json",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fdeno.json",
    "..%5c..%5cdeno.json",
    "%5c..%5c..%5cetc%5cpasswd",
    "..\\..\\deno.json",
    "%00",
    `${id}%00`,
    `${id}%00.json`,
    `..%00/deno.json`,
    "%252e%252e%252fdeno.json",
    "%25%32%65%25%32%65",
    "%c0%ae%c0%ae%c0%af",
    "%ef%bc%8e%ef%bc%8e%ef%bc%8f",
    "%e2%80%a5",
    "a".repeat(8000),
    `${id}${"0".repeat(8000)}`,
    id.toUpperCase(),
    `{${id}}`,
    `%7b${id}%7d`,
    `${id}.json`,
    `${id}.log`,
    `${id}.json.tmp`,
    `${id}%2ejson`,
    `${id}%2f..%2f${id}`,
    `%20${id}`,
    `${id}%20`,
    `${id}%0a`,
    `${id}%0d%0a`,
    `${id.slice(0, 8)}%e2%80%90${id.slice(9)}`, // U+2010 HYPHEN instead of "-"
    `${id.slice(0, 35)}%d0%b0`, // a Cyrillic "а" at the end
    `%ef%bc%90${id.slice(1)}`, // a fullwidth digit zero
    `${id.replaceAll("-", "")}`,
    `urn:uuid:${id}`,
    "deno.json",
    "index.html",
    "~root",
    "*",
    "%",
    "%zz",
  ];
  const targets: [string, (x: string) => string][] = [
    ["GET", (x) => `/deployment/${x}`],
    ["GET", (x) => `/events/${x}`],
    ["GET", (x) => `/api/deployments/${x}`],
    ["GET", (x) => `/deployments/${x}/log`],
    ["GET", (x) => `/deployments/${x}/log?timestamps=1&plain=1`],
    ["GET", (x) => `/api/deployments/${x}/lines`],
    ["POST", (x) => `/api/deployments/${x}/cancel`],
    ["GET", (x) => `/static/${x}`],
    ["GET", (x) => `/static/${x}/..%2f..%2fdeno.json`],
    ["GET", (x) => `/${x}`],
  ];
  const failures: string[] = [];
  for (const [method, target] of targets) {
    for (const hostile of ids) {
      const path = target(hostile);
      const { status, text } = await rawRequest(
        app.port,
        latin1(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
      );
      const found = FOREIGN_CONTENT.filter((foreign) => text.includes(foreign));
      if (
        (status < 400 && !resolvesToPublicPage(path)) || status > 499 || found.length > 0 ||
        text.includes("line-of-the-log")
      ) {
        failures.push(`${method} ${path.slice(0, 120)} -> ${status} ${found.join(", ")}`);
      }
    }
  }
  // Paths that fetch or a proxy would have normalised away.
  for (
    const path of [
      "/static/../deno.json",
      "/static/../../../../etc/passwd",
      "/../../../../etc/passwd",
      "/static/%2e%2e/%2e%2e/deno.json",
      "/static//etc/passwd",
      "/static/.%2e/src/server.ts",
      "//etc/passwd",
      `/events/${id}/../../deno.json`,
      `/deployments/${id}/../../../deno.json`,
      "/static/\\..\\..\\deno.json",
    ]
  ) {
    const { status, text } = await rawRequest(
      app.port,
      latin1(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
    );
    const found = FOREIGN_CONTENT.filter((foreign) => text.includes(foreign));
    if (status < 400 || status > 499 || found.length > 0) failures.push(`GET ${path} -> ${status} ${found}`);
  }
  // Raw bytes that are not ASCII in the request target: refused by the HTTP parser or a 404, never a 5xx.
  for (
    const bytes of [[0xc0, 0xae, 0xc0, 0xae], [0xff, 0xfe], [0xef, 0xbc, 0x8e, 0xef, 0xbc, 0x8e], [0x7f]]
  ) {
    const head = concat([
      encoder.encode("GET /events/"),
      new Uint8Array(bytes),
      encoder.encode(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    ]);
    const { status } = await rawRequest(app.port, head);
    if (status >= 500 || (status !== 0 && status < 400)) failures.push(`GET /events/${bytes} -> ${status}`);
  }
  assert.deepEqual(failures, []);
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
  // The real id still works: the checks refused the hostile ones, not everything.
  const log = await fetch(new URL(`deployments/${id}/log`, app.url), {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(await log.text(), "line-of-the-log\n");
});

/** The line ids (`id:` of unnamed events) of an SSE text. */
function lineIds(sse: string): number[] {
  return sse.split("\n\n").filter((event) => !/^event:/m.test(event)).flatMap((event) => {
    const match = /^id: (\d+)$/m.exec(event);
    return match ? [Number(match[1])] : [];
  });
}

/**
 * Reads an event stream until the line `last` arrived (or the stream ended), within the deadline; the status
 * and the line ids received.
 */
async function readIds(app: App, path: string, headers: Record<string, string>, last: number) {
  const response = await fetch(new URL(path, app.url), { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (response.status !== 200) {
    await response.body?.cancel();
    return { status: response.status, ids: [] };
  }
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!lineIds(text).includes(last)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    await reader.cancel();
  }
  return { status: response.status, ids: lineIds(text) };
}

Deno.test("hostile Last-Event-IDs never cause a 5xx, a duplicate or a gap", async (t) => {
  await using app = await startTestApp({ command: "for i in 1 2 3 4 5 6; do echo line $i; done; sleep 30" });
  const running = await createDeployment(app);
  const lines = 6;
  await waitFor("six lines", async () => {
    const log = await fetch(new URL(`deployments/${running.id}/log`, app.url));
    return (await log.text()).split("\n").length === lines + 1;
  }, APP_WAIT);
  const values = [
    "",
    " ",
    "0",
    "-1",
    "-0",
    "+2",
    "2.0",
    "2.5",
    "1e1",
    "0x2",
    "abc",
    "3abc",
    "NaN",
    "Infinity",
    "99999999999999999999",
    "9007199254740993",
    "999999999999999",
    String(lines),
    String(lines + 1),
    "1000000",
    "003",
    "0000000000000000000004",
    " 2 ",
    "\u0663", // ARABIC-INDIC DIGIT THREE
    "1,2",
    "𝟐",
  ];
  const check = (what: string, result: { status: number; ids: number[] }, last = lines) => {
    assert.ok(result.status === 200 || result.status === 204, `${what}: ${result.status}`);
    if (result.status === 204) return;
    const first = result.ids[0] ?? last + 1;
    const expected = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    assert.deepEqual(result.ids, expected, `${what}: not one contiguous run ending at line ${last}`);
  };
  // A header carries bytes only: fetch refuses the others, so they go in the query parameter.
  const headerValues = values.filter((value) => /^[\x20-\x7e]*$/.test(value));
  await t.step("as the Last-Event-ID header of a running deployment", async () => {
    for (const value of headerValues) {
      if (value === String(lines)) continue; // nothing more to send while it runs: the stream waits
      const result = await readIds(app, `events/${running.id}`, { "last-event-id": value }, lines);
      check(JSON.stringify(value), result);
      // A whole number of this log resumes right after it (documented up to 15 digits; longer replays all).
      if (/^\d{1,15}$/.test(value) && Number(value) < lines) {
        assert.equal(result.ids[0], Number(value) + 1, value);
      }
    }
  });
  const query = [
    ...values.map(encodeURIComponent),
    "%0D%0A",
    "2%0D%0A",
    "%0D%0A2",
    "2%0Aid:%201",
    "2%0D%0Aevent:%20done%0D%0Adata:%20x",
    "2%00",
    "%FF",
    "2&lastEventId=4",
    "",
  ];
  await t.step("as the lastEventId query parameter, alone and with a header", async () => {
    for (const value of query) {
      if (value === String(lines)) continue;
      check(value, await readIds(app, `events/${running.id}?lastEventId=${value}`, {}, lines));
      check(
        `${value} + header`,
        await readIds(app, `events/${running.id}?lastEventId=${value}`, { "last-event-id": "4" }, lines),
      );
    }
  });
  await t.step("on a deployment that ended: the last line's id is 204, anything else replays", async () => {
    const cancel = await fetch(new URL(`api/deployments/${running.id}/cancel`, app.url), {
      method: "POST",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.equal(cancel.status, 200);
    await cancel.body?.cancel();
    // Its six lines and the notice of the cancel.
    const ended = lines + 1;
    for (const value of headerValues) {
      const result = await readIds(app, `events/${running.id}`, { "last-event-id": value }, ended + 1);
      check(JSON.stringify(value), result, ended);
      if (value === String(ended) || value === "000000000000007") assert.equal(result.status, 204);
    }
  });
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
});

// --- Fuzz -----------------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed with SHIPLOG_FUZZ_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Uint8Array<ArrayBuffer>;
  chunked: boolean;
}

function fuzzer(random: () => number, token: string, knownIds: () => string[]) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const chance = (p: number) => random() < p;
  const hex = (byte: number) => `%${byte.toString(16).padStart(2, "0").toUpperCase()}`;
  const junk = (max: number) => {
    let out = "";
    for (let i = int(max + 1); i > 0; i--) {
      out += chance(0.5) ? hex(int(256)) : pick("abcXYZ019-._~!$&'()*+,;=:@".split(""));
    }
    return out;
  };
  const printable = (max: number) =>
    Array.from({ length: int(max + 1) }, () => String.fromCharCode(0x20 + int(0x5f))).join("").trim();
  const id = () =>
    pick([
      ...knownIds().slice(0, 5),
      crypto.randomUUID(),
      knownIds()[0]?.toUpperCase() ?? "",
      `{${knownIds()[0] ?? ""}}`,
    ]);
  const fragments = [
    "",
    "start",
    "deployment",
    "events",
    "deployments",
    "log",
    "api",
    "cancel",
    "static",
    "style.css",
    "deployment.js",
    "home.js",
    "index.html",
    "sign-in",
    "sign-out",
    "healthz",
    "metrics",
    "..",
    "%2e%2e",
    "%2F",
    "%5C",
    "%00",
    "%252e",
    ".json",
    "deno.json",
  ];
  const shapes: (() => string)[] = [
    () => `/events/${id()}`,
    () => `/deployment/${id()}`,
    () => `/api/deployments/${id()}`,
    () => `/api/deployments/${id()}/cancel`,
    () => `/deployments/${id()}/log`,
    () => `/api/deployments/${id()}/lines`,
    () => `/static/${pick(["style.css", "deployment.js", junk(10)])}`,
    () =>
      pick(["/", "/start", "/events", "/api/deployments", "/healthz", "/metrics", "/sign-in", "/sign-out"]),
    () => pick(["/sign-in", "/sign-in", "/start", "/sign-out"]),
    () =>
      "/" + Array.from({ length: 1 + int(4) }, () => chance(0.7) ? pick(fragments) : junk(12)).join(
        pick(["/", "/", "//", "%2F"]),
      ),
  ];
  const header = (): [string, string] | undefined => {
    switch (int(10)) {
      case 0:
        return ["accept", pick(["text/html", "application/json", "text/event-stream", "*/*", printable(30)])];
      case 1:
        return [
          "content-type",
          pick([
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/json",
            "multipart/form-data; boundary=x",
            "text/xml",
            ";;;",
            printable(40),
          ]),
        ];
      case 2:
        return ["last-event-id", pick(["1", "3", "-1", "99999999999999999999", "abc", "", printable(20)])];
      case 3:
        return ["origin", pick(["http://evil.example", "null", printable(30), "http://127.0.0.1"])];
      case 4:
        return ["sec-fetch-site", pick(["same-origin", "cross-site", "same-site", "none", printable(10)])];
      case 5:
        return [
          "authorization",
          pick([`Bearer ${token}`, "Bearer wrong-token", "Basic Zm9vOmJhcg==", printable(60)]),
        ];
      case 6:
        return [
          "cookie",
          pick(["shiplog_session=" + printable(64), `shiplog_session=${token}`, printable(80)]),
        ];
      case 7:
        return ["content-length", String(int(3000))];
      case 8:
        return [`x-${junk(5).replace(/[^a-z0-9]/gi, "") || "f"}`, printable(100)];
      default:
        return undefined;
    }
  };
  return (): FuzzRequest => {
    let path = pick(shapes)();
    if (chance(0.3)) {
      path += `?${
        pick([
          "lastEventId",
          "next",
          "x",
          "times",
          "timestamps",
          "plain",
          "download",
          "after",
          "limit",
          junk(4),
        ])
      }=${
        chance(0.5) ? junk(30) : printable(30)
          .replace(/[#%]/g, "")
      }`;
    }
    // The routes that take a POST mostly get one, so that the fuzz reaches the code behind the method check.
    const method = /^\/(sign-in|sign-out|start)$|\/cancel$/.test(path) && chance(0.8) ? "POST" : pick([
      ...Array(6).fill("GET"),
      ...Array(4).fill("POST"),
      "HEAD",
      "PUT",
      "DELETE",
      "PATCH",
      "OPTIONS",
      "PROPFIND",
      "FOO",
      "get",
      "post",
      "M-SEARCH",
    ]);
    const headers: [string, string][] = [];
    for (let i = int(5); i > 0; i--) {
      const h = header();
      if (h && h[0] !== "content-length") headers.push(h);
    }
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (!["GET", "HEAD", "get"].includes(method) && chance(0.6)) {
      if (chance(0.5)) {
        // A form, mostly said to be one, so that it gets past the content-type check to the code reading it.
        const next = pick(["/", "//evil.example", junk(20), `/${junk(20)}`]);
        body = encoder.encode(`token=${pick([token, "wrong", junk(20)])}&next=${next}`) as Uint8Array<
          ArrayBuffer
        >;
        if (chance(0.7)) headers.push(["content-type", "application/x-www-form-urlencoded"]);
      } else {
        body = Uint8Array.from({ length: int(chance(0.1) ? 5000 : 300) }, () => int(256));
      }
    }
    return { method, path, headers, body, chunked: body !== undefined && chance(0.2) };
  };
}

interface FuzzOutcome {
  failures: string[];
  sent: number;
}

async function fuzz(
  app: App,
  next: () => FuzzRequest,
  count: number,
  concurrency: number,
): Promise<FuzzOutcome> {
  const failures: string[] = [];
  let sent = 0;
  const one = async (request: FuzzRequest) => {
    const what = `${request.method} ${request.path.slice(0, 150)} ${JSON.stringify(request.headers)}`;
    let body: BodyInit | undefined = request.body;
    if (request.body && request.chunked) {
      const bytes = request.body;
      body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.subarray(0, bytes.length >> 1));
          controller.enqueue(bytes.subarray(bytes.length >> 1));
          controller.close();
        },
      });
    }
    const signal = AbortSignal.timeout(5000);
    let response: Response;
    try {
      response = await fetch(new URL(request.path, app.url), {
        method: request.method,
        headers: request.headers,
        body,
        redirect: "manual",
        signal,
      });
    } catch (error) {
      // fetch refusing the request before it leaves (an invalid header value) is not the server's doing.
      if (error instanceof TypeError && !signal.aborted && !/error sending request/.test(String(error))) {
        return;
      }
      failures.push(`${what}: ${error}`);
      return;
    }
    sent++;
    if (response.status >= 500) failures.push(`${what}: ${response.status}`);
    try {
      if (response.body === null) {
        // HEAD, 204, 304: nothing to read.
      } else if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
        const reader = response.body!.getReader();
        await reader.read();
        await reader.cancel();
      } else {
        await response.arrayBuffer();
      }
    } catch (error) {
      failures.push(`${what}: body: ${error}`);
    }
  };
  let remaining = count;
  const worker = async () => {
    while (remaining-- > 0) await one(next());
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { failures, sent };
}

Deno.test("fuzz: thousands of random requests never get a 5xx or hang, and the server stays healthy", async (t) => {
  const seed = Number(Deno.env.get("SHIPLOG_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 32));
  console.log(`fuzz seed ${seed} (replay with SHIPLOG_FUZZ_SEED=${seed})`);
  const random = prng(seed);
  const token = "fuzz-token-0123456789";
  const apps: [string, Partial<AppConfig>, AppOptions][] = [
    ["open", {}, {}],
    ["with a token", { token }, { maxAuthFailures: 1_000_000 }],
  ];
  for (const [name, config, options] of apps) {
    await t.step(name, async () => {
      await using app = await startTestApp({
        command: 'echo "fuzz $SHIPLOG_DEPLOYMENT_ID"; sleep 0.05; echo two',
        keep: 20,
        maxBodyBytes: 1024,
        maxViewersPerClient: 50,
        ...config,
      }, options);
      const auth: Record<string, string> = config.token ? { authorization: `Bearer ${token}` } : {};
      const known: string[] = [];
      for (let i = 0; i < 3; i++) known.push((await createDeployment(app, auth)).id);
      const started = performance.now();
      const { failures, sent } = await fuzz(app, fuzzer(random, token, () => known), 1500, 20);
      console.log(`${name}: ${sent} requests in ${Math.round(performance.now() - started)} ms`);
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failures with seed ${seed}`);
      assert.ok(sent > 1400, `only ${sent} requests reached the server`);
      const health = await fetch(new URL("healthz", app.url), { signal: AbortSignal.timeout(TIMEOUT_MS) });
      assert.equal(await health.text(), "ok\n");
      assert.equal(await metric(app, "shiplog_request_errors_total", auth), 0);
      // Every stream the fuzz opened was released when it went away.
      await waitFor(
        "every event stream closed",
        async () => await metric(app, "shiplog_event_streams", auth) === 0,
        APP_WAIT,
      );
    });
  }
});

Deno.test("fuzz: odd request lines over raw connections never get a 5xx or hang", async () => {
  await using app = await startTestApp({ command: "true" });
  const { id } = await createDeployment(app);
  const heads = [
    "TRACE / HTTP/1.1",
    "CONNECT evil.example:443 HTTP/1.1",
    "TRACK / HTTP/1.1",
    "get /healthz HTTP/1.1",
    "GET * HTTP/1.1",
    "OPTIONS * HTTP/1.1",
    "GET http://evil.example/api/deployments HTTP/1.1",
    `GET http://evil.example/events/${id} HTTP/1.1`,
    "GET /healthz HTTP/1.0",
    "GET /healthz HTTP/9.9",
    "GET /healthz",
    "GET  /healthz  HTTP/1.1",
    "GET /a b HTTP/1.1",
    "GET /events/%",
    "GET /%%%% HTTP/1.1",
    "GET ../../etc/passwd HTTP/1.1",
    "GET \\..\\deno.json HTTP/1.1",
    "G\u0000T / HTTP/1.1",
    "POST /start HTTP/1.1\r\nContent-Length: -1",
    "POST /start HTTP/1.1\r\nContent-Length: 99999999999999999999999",
    "POST /start HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6",
    "POST /start HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3",
    "POST /sign-in HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked",
    "GET /healthz HTTP/1.1\r\nX-Bad\u0001Header: v",
    "GET /healthz HTTP/1.1\r\nX-Folded: a\r\n b",
    `GET /events/${id} HTTP/1.1\r\nLast-Event-ID: 1\rid: 2`,
    "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b",
    "GET /healthz HTTP/1.1\r\nHost: " + "h".repeat(20_000),
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:99999",
    "GET /healthz HTTP/1.1\r\nHost: [::1",
    "GET /healthz HTTP/1.1\r\nHost: a b",
  ];
  const failures: string[] = [];
  for (const head of heads) {
    const text = head.includes("\r\nHost:") ? head : `${head}\r\nHost: 127.0.0.1`;
    // A declared chunked body is sent (empty), so that the server has no reason to wait for more.
    const body = /chunked/.test(head) ? "0\r\n\r\n" : "";
    const { status } = await rawRequest(app.port, latin1(`${text}\r\nConnection: close\r\n\r\n${body}`));
    // 0: the parser closed the connection without an answer, which is fine; a 5xx is not.
    if (status >= 500) failures.push(`${JSON.stringify(head.slice(0, 80))} -> ${status}`);
  }
  assert.deepEqual(failures, []);
  const health = await fetch(new URL("healthz", app.url), { signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(await health.text(), "ok\n");
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
});

Deno.test("a log replaced by a symlink serves nothing of the file it points to, and gets no output", async (t) => {
  await using elsewhere = await makeTempDir();
  const target = join(elsewhere.path, "target");
  const marker = "MARKER-outside-the-data-directory";
  const original = `${marker} 1\n${marker} 2\n`;
  await Deno.writeTextFile(target, original);
  await using app = await startTestApp({
    command: 'i=0; while [ $i -lt 400 ]; do echo "output $i"; i=$((i+1)); sleep 0.05; done',
    maxRunning: 1,
  });
  const linkLog = async (id: string) => {
    const path = join(app.dir, `${id}.log`);
    await Deno.symlink(target, `${path}.link`);
    await Deno.rename(`${path}.link`, path);
  };
  const answers: string[] = [];
  const get = async (path: string) => {
    const response = await fetch(new URL(path, app.url), { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await response.text();
    assert.ok(response.status < 500, `${path}: ${response.status} ${text}`);
    answers.push(text);
    return { status: response.status, text };
  };
  const running = await createDeployment(app);
  const queued = await createDeployment(app);
  await waitFor("running", async () => (await getDeployment(app, running.id)).status === "running", APP_WAIT);
  assert.equal((await getDeployment(app, queued.id)).status, "queued");

  await t.step(
    "a running deployment's: its viewer gets a reset, and it ends failed, naming the link",
    async () => {
      const response = await fetch(new URL(`events/${running.id}`, app.url), {
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const read = (async () => {
        for (let next = await reader.read(); !next.done; next = await reader.read()) text += next.value;
      })();
      await waitFor("a line of output", () => text.includes("data: output 0\n"), APP_WAIT);
      await linkLog(queued.id);
      await linkLog(running.id);
      await withDeadline("the viewer's stream to end", read, TIMEOUT_MS);
      answers.push(text);
      assert.match(text, /^event: reset$/m);
      await waitFor(
        "failed",
        async () => (await getDeployment(app, running.id)).status === "failed",
        APP_WAIT,
      );
      assert.match(
        (await getDeployment(app, running.id)).reason!,
        /^Cannot write the log: Cannot append to \S+\.log: it is a symlink, not a regular file$/,
      );
    },
  );
  await t.step("a queued deployment's: it ends failed before it runs, naming the link", async () => {
    await waitFor("failed", async () => (await getDeployment(app, queued.id)).status === "failed", APP_WAIT);
    assert.match(
      (await getDeployment(app, queued.id)).reason!,
      /^Cannot run the deployment: Cannot append to \S+\.log: it is a symlink, not a regular file$/,
    );
  });
  await t.step("its raw log and its event stream are empty", async () => {
    for (const { id } of [running, queued]) {
      assert.deepEqual(await get(`deployments/${id}/log`), { status: 200, text: "" });
      const events = await get(`events/${id}`);
      assert.equal(events.status, 200);
      assert.deepEqual([...events.text.matchAll(/^event: (\w+)$/gm)].map((match) => match[1]), [
        "status",
        "done",
      ]);
      await get(`deployment/${id}`);
      await get(`api/deployments/${id}`);
    }
    await get("api/deployments");
  });
  for (const answer of answers) assert.ok(!answer.includes(marker), answer);
  assert.equal(await Deno.readTextFile(target), original, "nothing was written through the link");
});

Deno.test("a Host header that makes no URL gets a 400 with the security headers, not a server error", async () => {
  await using app = await startTestApp({ command: "true" });
  for (const host of ["127.0.0.1:99999", "[::1", "a b"]) {
    const head = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    const { status, text } = await rawRequest(app.port, latin1(head));
    assert.equal(status, 400, `Host: ${host}\n${text}`);
    assert.match(text, /Cannot make a URL of this request: check its Host header/);
    assert.match(text, /x-content-type-options: nosniff/i);
  }
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
});

Deno.test("a client that goes away in the middle of its body is not a server error", async () => {
  await using app = await startTestApp({ command: "true" });
  for (const path of ["/sign-in", "/start"]) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: app.port });
    await conn.write(encoder.encode(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        "Transfer-Encoding: chunked\r\n\r\n5\r\ntoken\r\n",
    ));
    await delay(50);
    conn.close();
  }
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: app.port });
  await conn.write(encoder.encode(
    "POST /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
      "Content-Length: 1000\r\n\r\ntoken=abc",
  ));
  await delay(50);
  conn.close();
  // The server noticed and moved on; nothing was counted (or logged) as an unexpected failure.
  await delay(100);
  assert.equal(await metric(app, "shiplog_request_errors_total"), 0);
  const health = await fetch(new URL("healthz", app.url), { signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(await health.text(), "ok\n");
});
