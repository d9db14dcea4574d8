import assert from "node:assert/strict";
import { deploymentRecord } from "../testing/test_helpers.ts";
import { Targets } from "../runs/targets.ts";
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
    renderRow(deployment),
    '<li data-id="0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f" data-status="succeeded">' +
      '<a href="/deployment/0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f"><code>0b6f5b8e</code></a> ' +
      '<span class="badge status-succeeded">succeeded</span> ' +
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

Deno.test("Pages lists deployments into the home page and serves only known assets", async () => {
  const pages = await Pages.load();
  const home = await pages.home([deployment]).text();
  assert.ok(home.includes(renderRow(deployment)));
  assert.ok(!home.includes("<!--deployments-->"));
  const empty = await pages.home([]).text();
  assert.match(empty, /<ul[^>]*id="deployments"[^>]*>\s*<\/ul>/);
  assert.equal(pages.asset("style.css")?.headers.get("content-type"), "text/css; charset=utf-8");
  assert.equal(pages.asset("deployment.js")?.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(pages.asset("../deno.json"), undefined);
  assert.equal(pages.asset("index.htm"), undefined);
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
      ["home", await shown.home([deployment]).text()],
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
    for (const html of [await open.home([]).text(), await open.deployment(deployment).text()]) {
      assert.ok(!html.includes("signed-in"), "no bar");
      assert.ok(!html.includes("<!--signed-in-->"), "no marker left");
    }
    assert.ok(!(await open.startForm(target).text()).includes("signed-in"));
  }
  assert.ok(!errorPage(404, "x").includes("signed-in"));
});
