import assert from "node:assert/strict";
import type { Deployment } from "../logs/deployment.ts";
import type { DeploymentPage, DeploymentQuery } from "../runs/deployments.ts";
import { type Target, Targets } from "../runs/targets.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";
import { errorPage, escapeHtml, formatDuration, Pages, renderRow } from "./pages.ts";

const deployment = deploymentRecord({
  id: "0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f",
  status: "succeeded",
  startedAt: "2026-11-24T08:00:01.000Z",
  finishedAt: "2026-11-24T08:03:08.900Z",
  exitCode: 0,
});

Deno.test("renderRow() writes the row markup documented in static/index.html", () => {
  assert.equal(
    renderRow({
      ...deployment,
      target: "staging",
      params: { version: "v1.4.2", region: "eu" },
      startedBy: "alice",
    }),
    '<li data-id="0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f" data-status="succeeded" data-target="staging" ' +
      'data-created="2026-11-24T08:00:00.000Z">' +
      '<a href="/deployment/0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f"><code>0b6f5b8e</code></a> ' +
      '<span class="target">staging</span> <span class="params">version=v1.4.2 region=eu</span> ' +
      '<span class="by">alice</span> <span class="badge status-succeeded">succeeded</span> ' +
      '<time datetime="2026-11-24T08:00:01.000Z">2026-11-24 08:00:01 UTC</time> ' +
      '<span class="duration" aria-live="off">3m 07s</span></li>',
  );
  assert.match(
    renderRow({ ...deployment, status: "queued", startedAt: null, finishedAt: null }),
    /<span class="duration" aria-live="off"><\/span>/,
  );
});

Deno.test("renderRow() names the instance after the short id only when the record has one, escaped", () => {
  assert.match(
    renderRow({ ...deployment, instance: "web-1" }),
    /<a href="[^"]+"><code>0b6f5b8e<\/code><span class="instance"> on web-1<\/span><\/a> /,
  );
  assert.match(renderRow({ ...deployment, instance: "<b>x" }), /> on &#60;b&#62;x<\/span>/);
  for (const instance of [null, undefined, ""]) {
    assert.doesNotMatch(renderRow({ ...deployment, instance }), /instance/);
  }
});

Deno.test("renderRow() cuts long parameters short, keeps more in the tooltip, and escapes every value", () => {
  const row = renderRow({
    ...deployment,
    target: "<t>",
    params: { version: "x".repeat(600), note: "<b>" },
    startedBy: '"bob"',
  });
  assert.match(row, / data-target="&#60;t&#62;" /);
  assert.match(row, /<span class="params" title="version=x{492}…">version=x{72}…<\/span>/);
  assert.match(row, /<span class="by">&#34;bob&#34;<\/span>/);
  assert.doesNotMatch(row, /<b>|<t>/);
});

Deno.test("formatDuration() rounds down and switches units at a minute and an hour", () => {
  assert.equal(formatDuration(-5), "0s");
  assert.equal(formatDuration(42_999), "42s");
  assert.equal(formatDuration(187_000), "3m 07s");
  assert.equal(formatDuration(7_500_000), "2h 05m");
});

Deno.test("escapeHtml() leaves no markup", () => {
  assert.equal(
    escapeHtml(`<img src=x onerror="a('&')">`),
    "&#60;img src=x onerror=&#34;a(&#39;&#38;&#39;)&#34;&#62;",
  );
});

/** The home page of `pages` for `targets` (each with its latest, if any) and a page of `records`. */
function homeOf(
  pages: Pages,
  cards: { target: Target; latest?: Deployment }[],
  records: Deployment[],
  query: DeploymentQuery = { limit: 50 },
  next: DeploymentPage["next"] = null,
): Promise<string> {
  return pages.home({
    targets: cards.map(({ target, latest }) => ({ target, latest })),
    query,
    page: { records, next },
  }).text();
}

const staging: Target = {
  name: "staging",
  description: "Staging <cluster>",
  command: "./deploy.sh staging",
  cwd: null,
  params: new Map([
    ["version", { description: "Git ref", default: "main", required: false, choices: null, pattern: null }],
    ["region", { description: null, default: "eu", required: false, choices: ["eu", "us"], pattern: null }],
  ]),
};

Deno.test("Pages lists deployments into the home page and serves only known assets", async () => {
  const pages = await Pages.load();
  const [only] = Targets.single(undefined).list();
  const home = await homeOf(pages, [{ target: only }], [deployment]);
  assert.ok(home.includes(renderRow(deployment)));
  assert.doesNotMatch(home, /<!--[a-z-]+-->|__[A-Z]+__/);
  const empty = await homeOf(pages, [{ target: only }], []);
  assert.match(empty, /<ul[^>]*id="deployments"[^>]*>\s*<\/ul>/);
  assert.match(empty, /No deployments yet/);
  assert.equal(pages.asset("style.css")?.headers.get("content-type"), "text/css; charset=utf-8");
  assert.equal(pages.asset("deployment.js")?.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(pages.asset("../deno.json"), undefined);
  assert.equal(pages.asset("index.htm"), undefined);
});

Deno.test("the home page has a card per target: its latest deployment, and a Start that needs no JavaScript", async () => {
  const pages = await Pages.load();
  const [only] = Targets.single(undefined).list();
  const latest = {
    ...deployment,
    target: "staging",
    params: { region: "us", version: "v1.4.2" },
    startedBy: "alice",
  };
  const home = await homeOf(pages, [{ target: staging, latest }, { target: only }], []);
  // After the list's opening: the page's comment shows a card's markup too.
  const cards = home.slice(home.lastIndexOf('<ul id="targets"')).match(/<li class="card"[^]*?<\/li>/g) ?? [];
  assert.equal(cards.length, 2);
  // Staging: its version (the first parameter, whatever the record's order), who, when, and its form's link.
  assert.match(cards[0], /^<li class="card" data-target="staging" data-version-param="version">/);
  assert.match(cards[0], /<p class="card-description">Staging &#60;cluster&#62;<\/p>/);
  assert.match(
    cards[0],
    /<span class="badge status-succeeded">succeeded<\/span> <span class="version">v1.4.2<\/span>/,
  );
  assert.match(cards[0], /<span class="by">alice<\/span> <time datetime="2026-11-24T08:00:01.000Z">/);
  assert.match(
    cards[0],
    /<a class="button primary start-link" href="\/start\?target=staging" data-dialog="start-dialog-0">/,
  );
  // Its dialog holds the start page's form: the defaults, the choices as a select.
  assert.match(
    cards[0],
    /<dialog class="start-dialog" id="start-dialog-0"[^]*<form method="post" action="\/start"/,
  );
  assert.match(cards[0], /<input id="t0-param-version" name="param.version" value="main">/);
  assert.match(
    cards[0],
    /<select id="t0-param-region" name="param.region"><option selected>eu<\/option><option>us/,
  );
  // The default target: never deployed, and Start is a form of its own (no parameters to ask for).
  assert.match(cards[1], /Never deployed/);
  assert.match(cards[1], /<form method="post" action="\/start" class="start-form start-now">/);
  assert.match(cards[1], /<input type="hidden" name="target" value="default">/);
  assert.doesNotMatch(cards[1], /id="start"/, "#start is the only target's");
  assert.match(
    await homeOf(pages, [{ target: only }], []),
    /<button type="submit" class="button primary" id="start">/,
  );
});

Deno.test("the home page's filter form shows the query chosen, and Older/Newest carry the filter on", async () => {
  const pages = await Pages.load();
  const next = { createdAt: "2026-11-24T08:00:00.000Z", id: deployment.id };
  const query: DeploymentQuery = { target: "gone", status: "failed", limit: 20, before: next };
  const home = await homeOf(pages, [{ target: staging }], [], query, next);
  // A target the config no longer names, still in the history, can be chosen.
  assert.match(
    home,
    /<select name="target" id="filter-target"><option value="">any target<\/option><option>staging<\/option><option selected>gone<\/option><\/select>/,
  );
  assert.match(home, /<option selected>failed<\/option>/);
  assert.match(home, /<input type="hidden" name="limit" value="20">/);
  assert.match(home, /<a href="\/" class="clear-filters">Clear<\/a>/);
  assert.match(home, /No deployments match/);
  assert.match(home, /<ul id="deployments" class="deployments" aria-live="polite" data-limit="20">/);
  assert.match(home, /<a class="button" id="newest" href="\/\?target=gone&#38;status=failed&#38;limit=20">/);
  assert.match(
    home,
    /<a class="button" id="older" href="\/\?target=gone&#38;status=failed&#38;limit=20&#38;before=2026-11-24T08%3A00%3A00.000Z_0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f">/,
  );
  // The last page: no Older, no Newest on the first.
  const last = await homeOf(pages, [{ target: staging }], [deployment]);
  assert.match(last, /<a class="button" id="older" href="\/" hidden>/);
  assert.doesNotMatch(last, /id="newest"|clear-filters/);
});

Deno.test("Pages.startForm() renders each error next to its field and answers 400", async () => {
  const pages = await Pages.load();
  const response = pages.startForm(staging, {
    values: { version: "<v>" },
    errors: [{ param: "version", message: "version must match ^v" }, { param: null, message: "Not now" }],
  });
  assert.equal(response.status, 400);
  const page = await response.text();
  assert.match(page, /<p class="error" role="alert">Not now<\/p>/);
  assert.match(
    page,
    /<input id="param-version" name="param.version" value="&#60;v&#62;" aria-invalid="true" aria-describedby="param-version-error">/,
  );
  assert.match(page, /<span class="error" id="param-version-error">version must match \^v<\/span>/);
  assert.equal(pages.startForm(staging).status, 200);
});

Deno.test("Pages fills in a deployment's page: id, status and the raw log, for a reader without JavaScript", async () => {
  const pages = await Pages.load();
  const page = await pages.deployment({ ...deployment, status: "running" }).text();
  assert.match(page, /<title>0b6f5b8e · shiplog<\/title>/);
  assert.match(
    page,
    /<code id="deployment-id"[^>]* title="0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f">0b6f5b8e<\/code>/,
  );
  assert.match(page, /<span id="status" class="badge status-running"[^>]*>\s*running\s*<\/span>/);
  assert.match(
    page,
    /<a id="raw-log" class="button" href="\/deployments\/0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f\/log">/,
  );
  assert.match(page, /<noscript>[^]*href="\/deployments\/0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f\/log"/);
  assert.doesNotMatch(page, /__[A-Z_]+__/);
});

Deno.test("errorPage() shows the status and the message as text, with a link home", () => {
  const page = errorPage(404, `No "<b>such</b>" page`);
  assert.match(page, /<title>404 Not Found · shiplog<\/title>/);
  assert.match(page, /<p>No &#34;&#60;b&#62;such&#60;\/b&#62;&#34; page<\/p>/);
  assert.match(page, /<a href="\/">/);
  assert.match(errorPage(499, "x"), /<h1>499 Error<\/h1>/);
});
