import assert from "node:assert/strict";
import type { Deployment } from "../logs/deployment.ts";
import type { DeploymentPage, DeploymentQuery } from "../runs/deployments.ts";
import { type ParamSpec, type Target, Targets } from "../runs/targets.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";
import { errorPage, escapeHtml, formatDuration, Pages, renderRow, signedInBar } from "./pages.ts";

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
  cards: { target: Target; latest?: Deployment; deployed?: Deployment }[],
  records: Deployment[],
  query: DeploymentQuery = { limit: 50 },
  next: DeploymentPage["next"] = null,
): Promise<string> {
  return pages.home({
    targets: cards.map(({ target, latest, deployed }) => ({ target, latest, deployed })),
    query,
    page: { records, next },
    running: records.filter(({ status }) => status === "running").length,
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
  assert.doesNotMatch(home, /<!--/, "the template's notes are not sent");
  assert.doesNotMatch(await pages.deployment(deployment).text(), /<!--/);
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

Deno.test("a card says what is deployed when its latest does not: the latest that succeeded, else hidden", async () => {
  const pages = await Pages.load();
  const deployed = {
    ...deployment,
    target: "staging",
    params: { version: "v1", region: "eu" },
    startedBy: "bob",
  };
  const failed = {
    ...deployed,
    id: crypto.randomUUID(),
    status: "failed" as const,
    params: { version: "v2" },
  };
  const card = async (cards: Parameters<typeof homeOf>[1]) =>
    /<p class="card-deployed"( hidden)?>Deployed: (.*?)<\/p>/.exec(await homeOf(pages, cards, []))!.slice(1);
  const [hidden, line] = await card([{ target: staging, latest: failed, deployed }]);
  assert.equal(hidden, undefined);
  assert.match(line, new RegExp(`^<a href="/deployment/${deployed.id}" data-id="${deployed.id}" [^>]+>`));
  assert.match(line, /<span class="version">v1<\/span><\/a> <span class="by">bob<\/span> <time /);
  // The latest is what is deployed, or nothing ever succeeded: the line says nothing more.
  assert.equal((await card([{ target: staging, latest: deployed, deployed }]))[0], " hidden");
  assert.deepEqual(await card([{ target: staging, latest: failed }]), [" hidden", ""]);
});

Deno.test("a parameter named like an Object.prototype property (constructor) is no value of a record or a form", async () => {
  const pages = await Pages.load();
  const spec: ParamSpec = { description: null, default: null, required: false, choices: null, pattern: null };
  const web: Target = {
    ...staging,
    name: "web",
    params: new Map([["constructor", spec], ["to_string", { ...spec, default: "x" }]]),
  };
  const latest = { ...deployment, target: "web", params: { to_string: "x" } };
  const home = await homeOf(pages, [{ target: web, latest }], [latest]);
  assert.match(home, /<span class="version">to_string=x<\/span>/, "no version: all the parameters");
  const form = await pages.startForm(web, { values: { to_string: "y" } }).text();
  assert.match(form, /<input id="param-constructor" name="param.constructor" value="">/);
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

Deno.test("Pages fills in a deployment's details: target, params, who, re-run of, each escaped", async () => {
  const pages = await Pages.load();
  const rerunOf = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  const page = await pages.deployment({
    ...deployment,
    target: "prod<b>",
    // A value that looks like the template's words or a replacement pattern stays as it is.
    params: { version: "v1.4.2", note: `__ID__ $& $' <i>"x"</i>` },
    startedBy: "alice",
    cancelledBy: "bob & co",
    rerunOf,
  }).text();
  assert.match(page, /<dt>Target<\/dt><dd><span id="target">prod&#60;b&#62;<\/span><\/dd>/);
  assert.match(
    page,
    /<ul id="params" class="params"><li><span class="param-name">version<\/span> <code class="param-value">v1\.4\.2<\/code><\/li>/,
  );
  assert.ok(
    page.includes(
      `<code class="param-value">__ID__ $&#38; $&#39; &#60;i&#62;&#34;x&#34;&#60;/i&#62;</code>`,
    ),
  );
  assert.match(
    page,
    /<div class="detail" id="started-by-detail"><dt>Started by<\/dt><dd><span id="started-by" class="person">alice</,
  );
  assert.match(
    page,
    /<div class="detail" id="cancelled-by-detail"><dt>Cancelled by<\/dt><dd>[^]*>bob &#38; co</,
  );
  assert.match(
    page,
    new RegExp(
      `<div class="detail" id="rerun-detail"><dt>Re-run of</dt><dd><a id="rerun-of" href="/deployment/${rerunOf}" title="${rerunOf}"><code>7c9e6679</code></a>`,
    ),
  );
  assert.doesNotMatch(page, /<!--details-->|<!--run-again-->/);
});

Deno.test("Pages hides the details a deployment lacks, and Run again until it has ended", async () => {
  const pages = await Pages.load();
  const running = await pages.deployment({ ...deployment, status: "running" }).text();
  for (const detail of ["params", "started-by", "cancelled-by", "rerun"]) {
    assert.match(running, new RegExp(`<div class="detail" id="${detail}-detail" hidden>`), detail);
  }
  assert.match(running, /<div class="detail" id="target-detail">/);
  assert.match(
    running,
    new RegExp(
      `<form id="run-again" class="run-again" method="post" action="/api/deployments/${deployment.id}/rerun" hidden>`,
    ),
  );
  const ended = pages.deployment(deployment);
  // Not kept for Back: the page shown again carries a new key.
  assert.equal(ended.headers.get("cache-control"), "no-store");
  const html = await ended.text();
  const form = /<form id="run-again"[^>]*>.*?<\/form>/.exec(html)?.[0] ?? "";
  assert.match(form, /action="\/api\/deployments\/[0-9a-f-]{36}\/rerun">/, "shown once ended");
  assert.match(
    form,
    /<input type="hidden" name="key" value="[0-9a-f-]{36}"><button type="submit" class="button primary">Run again<\/button><\/form>/,
  );
  const again = await pages.deployment(deployment).text();
  assert.notEqual(
    /name="key" value="([^"]+)"/.exec(again)?.[1],
    /name="key" value="([^"]+)"/.exec(html)?.[1],
  );
});

Deno.test("signedInBar() names the user escaped, with a sign-out form unless a proxy signed them in", () => {
  assert.equal(signedInBar(undefined), "");
  assert.equal(
    signedInBar({ user: `a&"<b>`, canSignOut: true }),
    '<div class="signed-in"><span class="user"><span class="label">Signed in as </span><strong id="user-name">a&#38;&#34;&#60;b&#62;</strong>' +
      '</span><form method="post" action="/sign-out" class="sign-out">' +
      '<button type="submit" class="button" id="sign-out">Sign out</button></form></div>',
  );
  assert.equal(
    signedInBar({ user: null, canSignOut: true }),
    '<div class="signed-in"><span class="user"><span class="label">Signed in with the access token</span></span>' +
      '<form method="post" action="/sign-out" class="sign-out">' +
      '<button type="submit" class="button" id="sign-out">Sign out</button></form></div>',
  );
  assert.equal(
    signedInBar({ user: "carol", canSignOut: false }),
    '<div class="signed-in"><span class="user"><span class="label">Signed in as </span><strong id="user-name">carol</strong></span></div>',
  );
});

Deno.test("Pages.for() puts who is signed in into the top bar of every page: home, deployment, start form, error", async () => {
  const pages = await Pages.load();
  const signedIn = { user: "alice", canSignOut: true };
  const bar = signedInBar(signedIn);
  const topbar = (html: string) => /<header class="topbar">([^]*?)<\/header>/.exec(html)?.[1] ?? "";
  const target = Targets.single(undefined).list()[0];
  const shown = pages.for(signedIn);
  for (
    const [name, html] of [
      ["home", await homeOf(shown, [{ target }], [deployment])],
      ["deployment", await shown.deployment(deployment).text()],
      ["start form", await shown.startForm(target).text()],
      ["error", errorPage(404, "No such deployment", signedIn)],
    ]
  ) {
    assert.ok(topbar(html).includes(bar), name);
    assert.equal(html.split(bar).length, 2, `${name}: once`);
  }
  // The pages as loaded, and as nobody's, have none; the shared pages are not changed by someone's view.
  for (const open of [pages, pages.for(undefined)]) {
    for (const html of [await homeOf(open, [{ target }], []), await open.deployment(deployment).text()]) {
      assert.ok(!html.includes("signed-in"), "no bar");
      assert.ok(!html.includes("<!--signed-in-->"), "no marker left");
    }
    assert.ok(!(await open.startForm(target).text()).includes("signed-in"));
  }
  assert.ok(!errorPage(404, "x").includes("signed-in"));
});
