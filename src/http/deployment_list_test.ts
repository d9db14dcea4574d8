/**
 * The list of deployments over HTTP: the API's filters, limit and `Link` pages, the 400s of a bad query, the
 * home page and its feed with 10,000 deployments in the history (each under 100 KB), and what the feed sends of
 * the changes, on a real server and real stores.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "../logs/deployment.ts";
import { FileStore } from "../logs/file_store.ts";
import { Deployments } from "../runs/deployments.ts";
import { type Target, Targets } from "../runs/targets.ts";
import { serveHttp } from "../testing/http_test_server.ts";
import { deploymentRecord, makeTempDir, withDeadline } from "../testing/test_helpers.ts";
import { TIMEOUT_MS } from "../testing/test_app.ts";
import { deploymentsFeedResponse } from "./deployments_feed.ts";
import { EventStream } from "./event_stream.ts";

const HISTORY = 10_000;
const BUDGET_BYTES = 100 * 1024;

function target(name: string, params: string[] = []): Target {
  return {
    name,
    description: `The ${name} cluster`,
    command: "true",
    cwd: null,
    params: new Map(params.map((param) => [param, {
      description: null,
      default: null,
      required: false,
      choices: null,
      pattern: null,
    }])),
  };
}

const TARGETS = new Targets([target("staging", ["version", "region"]), target("production", ["version"])]);

/** Writes `count` finished records straight into `dir`, newest last, over both targets and every final status. */
async function writeHistory(dir: string, count: number): Promise<Deployment[]> {
  const statuses = ["succeeded", "failed", "cancelled", "interrupted"] as const;
  const records = Array.from({ length: count }, (_, i) => {
    const at = Date.UTC(2026, 0, 1) + i * 60_000;
    return deploymentRecord({
      target: i % 3 === 0 ? "production" : "staging",
      params: { version: `v1.${Math.floor(i / 100)}.${i % 100}`, region: i % 2 ? "eu" : "us" },
      status: statuses[i % 5 % 4],
      startedBy: i % 4 ? "alice" : "bob",
      createdAt: new Date(at).toISOString(),
      startedAt: new Date(at + 5).toISOString(),
      finishedAt: new Date(at + 42_000).toISOString(),
      exitCode: 0,
    });
  });
  for (let i = 0; i < records.length; i += 500) {
    await Promise.all(
      records.slice(i, i + 500).map((record) =>
        Deno.writeTextFile(join(dir, `${record.id}.json`), JSON.stringify(record))
      ),
    );
  }
  return records;
}

/** The bytes of a stream up to the end of its first event (a blank line after `event:`), then lets it go. */
async function firstEvent(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(response.status, 200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!/^event: [^]*?\n\n/m.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    await reader.cancel();
  }
  return /^event: [^]*?\n\n/m.exec(text)?.[0] ?? assert.fail(`no event in ${text}`);
}

async function get(url: string): Promise<Response> {
  return await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
}

Deno.test("with 10,000 deployments: the home page and the feed's first event stay under 100 KB; the API pages through them all", async (t) => {
  await using temp = await makeTempDir();
  const history = await writeHistory(temp.path, HISTORY);
  const newestFirst = history.toReversed();
  await using served = await serveHttp(temp.path, { command: "true", targets: TARGETS });

  await t.step("the home page sends the latest 50 and the cards, under 100 KB", async () => {
    const body = await (await get(served.url)).bytes();
    const bytes = body.length;
    const page = new TextDecoder().decode(body);
    assert.ok(bytes < BUDGET_BYTES, `the home page is ${bytes} bytes`);
    const ids = [...page.matchAll(/<li data-id="([0-9a-f-]{36})"/g)].map((match) => match[1]);
    assert.deepEqual(ids, newestFirst.slice(0, 50).map(({ id }) => id));
    // The cards: each target's latest (the newest is staging's; production's is the newest with i % 3 = 0).
    const production = newestFirst.find((record) => record.target === "production")!;
    assert.match(
      page,
      new RegExp(`data-target="production" data-version-param="version">[^]*?data-id="${production.id}"`),
    );
    assert.match(page, /<a class="button" id="older" href="\/\?before=[^"]+">/);
    console.log(`home page: ${bytes} bytes`);
  });

  await t.step("the feed's first event holds the same 50, under 100 KB", async () => {
    const event = await firstEvent(`${served.url}events`);
    const bytes = new TextEncoder().encode(event).length;
    assert.ok(bytes < BUDGET_BYTES, `the first event is ${bytes} bytes`);
    assert.match(event, /^event: deployments\n/);
    const records: Deployment[] = JSON.parse(event.slice(event.indexOf("data: ") + 6));
    assert.deepEqual(records.map(({ id }) => id), newestFirst.slice(0, 50).map(({ id }) => id));
    console.log(`feed's first event: ${bytes} bytes`);
    // Filtered likewise, and limited.
    const filtered: Deployment[] = JSON.parse(
      (await firstEvent(`${served.url}events?target=production&status=failed&limit=7`)).split("data: ")[1],
    );
    assert.deepEqual(
      filtered.map(({ id }) => id),
      newestFirst.filter((r) => r.target === "production" && r.status === "failed").slice(0, 7).map((
        { id },
      ) => id),
    );
  });

  await t.step("the API follows its Link header to the end: every match once, newest first", async () => {
    for (
      const filter of ["", "target=staging", "status=cancelled&limit=333", "target=production&status=failed"]
    ) {
      const search = new URLSearchParams(filter);
      const expected = newestFirst.filter((record) =>
        (!search.has("target") || record.target === search.get("target")) &&
        (!search.has("status") || record.status === search.get("status"))
      ).map(({ id }) => id);
      const limit = Number(search.get("limit") ?? 1000);
      search.set("limit", String(limit));
      const walked: string[] = [];
      let next: string | undefined = `/api/deployments?${search}`;
      while (next) {
        const response = await get(new URL(next, served.url).href);
        assert.equal(response.status, 200);
        const page: Deployment[] = await response.json();
        assert.ok(Array.isArray(page) && page.length <= limit);
        walked.push(...page.map(({ id }) => id));
        const link = response.headers.get("link");
        next = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] ?? assert.fail(link) : undefined;
        if (next) assert.equal(page.length, limit, "only the last page is short");
      }
      assert.deepEqual(walked, expected, filter);
    }
    // Without a limit: the latest 50, as the home page.
    const first: Deployment[] = await (await get(`${served.url}api/deployments`)).json();
    assert.deepEqual(first.map(({ id }) => id), newestFirst.slice(0, 50).map(({ id }) => id));
  });

  await t.step("the home page's Older link goes on from the last row, keeping the filter", async () => {
    const first = await (await get(`${served.url}?target=production`)).text();
    const older = /id="older" href="([^"]+)"/.exec(first)?.[1]?.replaceAll("&#38;", "&");
    assert.ok(older);
    const second = await (await get(new URL(older, served.url).href)).text();
    const ids = [...second.matchAll(/<li data-id="([0-9a-f-]{36})"/g)].map((match) => match[1]);
    const production = newestFirst.filter((record) => record.target === "production");
    assert.deepEqual(ids, production.slice(50, 100).map(({ id }) => id));
    assert.match(second, /id="newest" href="\/\?target=production"/);
    assert.match(second, /<option selected>production<\/option>/);
  });
});

Deno.test("a bad status, limit or cursor is a 400 naming it, on the API, the home page and the feed", async () => {
  await using temp = await makeTempDir();
  await using served = await serveHttp(temp.path, { command: "true" });
  const cases: [string, RegExp][] = [
    [
      "status=done",
      /^Cannot filter by status "done": expected one of queued, running, succeeded, failed, cancelled, interrupted$/,
    ],
    ["limit=0", /^Cannot read limit "0": expected an integer from 1 to 1000$/],
    ["limit=1001", /^Cannot read limit "1001"/],
    ["limit=2.5", /^Cannot read limit "2.5"/],
    ["limit=ten", /^Cannot read limit "ten"/],
    [
      "before=yesterday",
      /^Cannot read before "yesterday": expected a cursor from the Link header of the page before/,
    ],
    ["before=2026-11-24T08:00:00.000Z_not-an-id", /^Cannot read before /],
    [`status=${"x".repeat(5000)}`, /^Cannot filter by status "x{100}…": /],
  ];
  for (const [search, message] of cases) {
    for (const path of ["api/deployments", "events", ""]) {
      const response = await get(`${served.url}${path}?${search}`);
      assert.equal(response.status, 400, `${path}?${search}`);
      assert.match((await response.text()).trim(), message, `${path}?${search}`);
    }
  }
  // A browser gets the message as a page, escaped.
  const page = await fetch(`${served.url}?status=<b>`, { headers: { accept: "text/html" } });
  assert.equal(page.status, 400);
  assert.match(await page.text(), /<p>Cannot filter by status &#34;&#60;b&#62;&#34;: expected one of/);
  // Empty values are no filter (a form's "any"); an unknown target matches nothing, it is not an error.
  const unfiltered = await get(`${served.url}api/deployments?target=&status=&limit=&before=`);
  assert.equal(unfiltered.status, 200);
  await unfiltered.body?.cancel();
  assert.deepEqual(await (await get(`${served.url}api/deployments?target=nowhere`)).json(), []);
});

/** Reads the events `deploymentsFeedResponse` sends, as `[event, data]`. */
function readEvents(
  response: Response,
): {
  events: [string, string][];
  counts: number[];
  next: (count: number, of?: "events" | "counts") => Promise<void>;
} {
  const events: [string, string][] = [];
  // How many run, as `counts` said each time, kept apart: it comes between the others whenever that changes.
  const counts: number[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    events,
    counts,
    async next(count: number, of: "events" | "counts" = "events") {
      const read = of === "events" ? events : counts;
      const goal = read.length + count;
      await withDeadline(
        `${count} more events`,
        (async () => {
          while (read.length < goal) {
            const { value, done } = await reader.read();
            if (done) throw new Error("the feed ended");
            buffer += value;
            for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const event = /^event: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
              if (event === "counts") counts.push(JSON.parse(data).running);
              else if (event) events.push([event, data]);
            }
          }
        })(),
      );
    },
  };
}

Deno.test("a filtered feed sends the changes of its page, a record once more as it leaves the filter, and each target's latest", async () => {
  await using temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  try {
    const deployments = await Deployments.load(store);
    const old = await deployments.create(null, { target: "staging", now: new Date("2026-01-01T00:00:00Z") });
    const stream = new EventStream();
    const feed = readEvents(
      deploymentsFeedResponse(deployments, stream, {
        query: { target: "staging", status: "queued", limit: 50 },
        targets: ["staging", "production"],
      }),
    );
    await feed.next(2);
    assert.deepEqual(feed.events[0][0], "deployments");
    assert.deepEqual(JSON.parse(feed.events[0][1]).map((d: Deployment) => d.id), [old.id]);
    // The cards: staging's latest; production has none yet.
    assert.deepEqual(feed.events[1][0], "latest");
    assert.deepEqual(JSON.parse(feed.events[1][1]).map((d: Deployment) => d.id), [old.id]);

    // A new queued staging deployment: on the page.
    const added = await deployments.create(null, { target: "staging" });
    // The latest of production: for its card, though not on the page.
    const production = await deployments.create(null, { target: "production" });
    await feed.next(2);
    assert.deepEqual(feed.events.slice(2).map(([event, data]) => [event, JSON.parse(data).id]), [
      ["deployment", added.id],
      ["deployment", production.id],
    ]);
    // The old one runs: it leaves the filter, sent once more (to go); then it succeeds, sent for the card (what
    // is deployed on staging now), though no longer on the page.
    await deployments.update(old.id, { status: "running", startedAt: new Date().toISOString() });
    await deployments.update(old.id, { status: "succeeded", finishedAt: new Date().toISOString() });
    // A production deployment that is no longer its target's latest: not sent. Then one that is.
    const newer = await deployments.create(null, { target: "production" });
    await deployments.update(production.id, { status: "cancelled", finishedAt: new Date().toISOString() });
    await deployments.update(newer.id, { status: "running", startedAt: new Date().toISOString() });
    await feed.next(4);
    assert.deepEqual(
      feed.events.slice(4).map(([event, data]) => [event, JSON.parse(data).id, JSON.parse(data).status]),
      [
        ["deployment", old.id, "running"],
        ["deployment", old.id, "succeeded"],
        ["deployment", newer.id, "queued"],
        ["deployment", newer.id, "running"],
      ],
    );
    stream.close();
  } finally {
    await store.close();
  }
});

Deno.test("the feed says how many run in all, at connect and each time that changes; so does the home page's title", async () => {
  await using temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  try {
    const deployments = await Deployments.load(store);
    const staging = await deployments.create(null, { target: "staging" });
    await deployments.update(staging.id, { status: "running", startedAt: new Date().toISOString() });
    const stream = new EventStream();
    // A filter that shows none of them: the count is of all.
    const feed = readEvents(
      deploymentsFeedResponse(deployments, stream, { query: { status: "failed", limit: 50 }, targets: [] }),
    );
    await feed.next(1, "counts");
    assert.deepEqual(feed.counts, [1]);
    const production = await deployments.create(null, { target: "production" });
    await deployments.update(production.id, { status: "running", startedAt: new Date().toISOString() });
    await deployments.update(staging.id, { status: "failed", finishedAt: new Date().toISOString() });
    await feed.next(2, "counts");
    assert.deepEqual(feed.counts, [1, 2, 1], "the queued one changed nothing");
    stream.close();
  } finally {
    await store.close();
  }

  // The page as a browser without JavaScript gets it.
  await using other = await makeTempDir();
  await using served = await serveHttp(other.path, { command: "sleep 30" });
  const title = async () => /<title>(.*)<\/title>/.exec(await (await get(served.url)).text())?.[1];
  assert.equal(await title(), "Deployments · shiplog");
  const started = await fetch(new URL("start", served.url), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: "{}",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(started.status, 201);
  const { id } = await started.json();
  await withDeadline(
    "running",
    (async () => {
      while (await title() !== "1 running · Deployments · shiplog") {
        await new Promise((ok) => setTimeout(ok, 20));
      }
    })(),
  );
  const cancel = await fetch(new URL(`api/deployments/${id}/cancel`, served.url), {
    method: "POST",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(cancel.status, 200, await cancel.text());
});

Deno.test("a feed of a later page (a cursor) takes no new deployment, and says which of its own was deleted", async () => {
  await using temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  try {
    const deployments = await Deployments.load(store, { keep: 1 });
    const first = await deployments.create(null, { now: new Date("2026-01-01T00:00:00Z") });
    const second = await deployments.create(null, { now: new Date("2026-01-01T00:01:00Z") });
    const stream = new EventStream();
    const feed = readEvents(
      deploymentsFeedResponse(deployments, stream, {
        query: { limit: 50, before: { createdAt: second.createdAt, id: second.id } },
      }),
    );
    await feed.next(2);
    assert.deepEqual(JSON.parse(feed.events[0][1]).map((d: Deployment) => d.id), [first.id]);
    assert.deepEqual(feed.events[1], ["latest", "[]"], "no card asked for");
    const staging = await deployments.create(null, { target: "staging" }); // its target's latest: for a card
    // The second ends: not on this page, but its target's latest.
    await deployments.update(second.id, { status: "succeeded", finishedAt: "2026-01-01T00:02:00.000Z" });
    // The first ends (on the page), and --keep 1 deletes the second (it finished first): not on the page, so not
    // said; the next event is the one after.
    await deployments.update(first.id, { status: "succeeded", finishedAt: "2026-01-01T00:03:00.000Z" });
    assert.equal(deployments.get(second.id), undefined);
    const later = await deployments.create(null, {
      target: "staging",
      now: new Date("2027-01-01T00:00:00Z"),
    });
    await feed.next(4);
    assert.deepEqual(feed.events.slice(2).map(([event, data]) => [event, JSON.parse(data).id]), [
      ["deployment", staging.id],
      ["deployment", second.id],
      ["deployment", first.id],
      ["deployment", later.id],
    ]);
    stream.close();
  } finally {
    await store.close();
  }
});
