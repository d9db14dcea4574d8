/**
 * @module
 * The pages and their assets, read once from `static/` next to the source (embedded in the binary by
 * `deno compile --include static`, so nothing depends on source paths at run time). The home page gets its
 * target cards and its page of the history rendered into it on the server, so it works without JavaScript;
 * every dynamic value is HTML-escaped. When access is controlled, every page's top bar says who is signed in,
 * with a sign-out button (a plain form): {@linkcode Pages.for} gives the pages as one person sees them.
 */

import { STATUS_CODES } from "node:http";
import { type Deployment, isFinal, STATUSES } from "../logs/deployment.ts";
import type { DeploymentPage as ListPage, DeploymentQuery } from "../runs/deployments.ts";
import type { Target } from "../runs/targets.ts";
import { DEFAULT_LIMIT, pageAddress } from "./deployment_query.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".png": "image/png",
};

const DETAILS_MARKER = "<!--details-->";
const RUN_AGAIN_MARKER = "<!--run-again-->";
/** Where a page's top bar says who is signed in (see {@linkcode signedInBar}). */
const SIGNED_IN_MARKER = "<!--signed-in-->";

/** Who a page is shown to, when access is controlled. */
export interface SignedIn {
  /** Their name; `null` for whoever holds the unnamed `--token`. */
  user: string | null;
  /**
   * Whether shiplog can sign them out: not when a single-sign-on proxy named them (it would name them again
   * on the next request; signing out is the proxy's).
   */
  canSignOut: boolean;
}

type Assets = Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>;

/** The pages' HTML as `static/` has it. */
interface Templates {
  home: string;
  deployment: string;
}

/** The pages and static assets, in memory. */
export class Pages {
  #assets: Assets;
  #templates: Templates;
  #signedIn: SignedIn | undefined;

  private constructor(assets: Assets, templates: Templates, signedIn?: SignedIn) {
    this.#assets = assets;
    this.#templates = templates;
    this.#signedIn = signedIn;
  }

  /** The home page's template with the top bar filled in: only when a page is made, not for every request. */
  get #home(): string {
    return this.#templates.home.replace(SIGNED_IN_MARKER, signedInBar(this.#signedIn));
  }

  get #deployment(): string {
    return this.#templates.deployment.replace(SIGNED_IN_MARKER, signedInBar(this.#signedIn));
  }

  /** Reads every page and asset of `static/` (tests excluded). */
  static async load(dir: URL = new URL("../../static/", import.meta.url)): Promise<Pages> {
    const assets = new Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>();
    for await (const entry of Deno.readDir(dir)) {
      const extension = entry.name.slice(entry.name.lastIndexOf("."));
      if (!entry.isFile || !(extension in CONTENT_TYPES) || entry.name.includes("_test.")) continue;
      assets.set(entry.name, {
        body: await Deno.readFile(new URL(entry.name, dir)),
        type: CONTENT_TYPES[extension],
      });
    }
    for (const page of ["index.html", "deployment.html"]) {
      if (!assets.has(page)) throw new TypeError(`Cannot serve the pages: static/${page} is missing`);
    }
    // The templates' notes are for whoever edits them: every page would carry them, about 4 KB on the home page.
    const decode = (page: string) => new TextDecoder().decode(assets.get(page)!.body).replace(NOTE, "");
    return new Pages(assets, { home: decode("index.html"), deployment: decode("deployment.html") });
  }

  /** The pages as `signedIn` sees them: their top bar says who that is (`undefined`: nobody, access is open). */
  for(signedIn: SignedIn | undefined): Pages {
    return new Pages(this.#assets, this.#templates, signedIn);
  }

  /**
   * The home page: a card per target with its latest deployment and its Start, then the page of the history
   * that `view.query` asks for, its filter form and the way to the next page.
   */
  home(view: HomeView): Response {
    const { query, page } = view;
    const filtered = query.target !== undefined || query.status !== undefined;
    const targetNames = view.targets.map(({ target }) => target.name);
    // A target of old records that the config no longer names can still be asked for.
    if (query.target !== undefined && !targetNames.includes(query.target)) targetNames.push(query.target);
    const replacements: Record<string, string> = {
      "<!--targets-->": view.targets.map((card, index) => renderCard(card, index, view.targets.length)).join(
        "\n",
      ),
      "<!--target-options-->": options(targetNames, query.target, "any target"),
      "<!--status-options-->": options(STATUSES, query.status, "any status"),
      "<!--limit-field-->": query.limit === DEFAULT_LIMIT
        ? ""
        : `<input type="hidden" name="limit" value="${query.limit}">`,
      "<!--clear-filters-->": filtered ? `<a href="/" class="clear-filters">Clear</a>` : "",
      "<!--deployments-->": page.records.map(renderRow).join("\n"),
      "<!--empty-->": filtered || query.before
        ? "No deployments match."
        : "No deployments yet. Press <strong>Start</strong> to run one.",
      "<!--pager-->":
        (query.before
          ? `<a class="button" id="newest" href="${escapeHtml(pageAddress("/", query))}">&larr; Newest</a>`
          : "") +
        `<a class="button" id="older" href="${
          page.next ? escapeHtml(pageAddress("/", query, page.next)) : "/"
        }"${page.next ? "" : " hidden"}>Older &rarr;</a>`,
      "__LIMIT__": String(query.limit),
      "<!--running-->": runningTitle(view.running),
    };
    const body = this.#home.replace(/<!--[a-z-]+-->|__LIMIT__/g, (marker) => replacements[marker] ?? marker);
    const response = html(body);
    // Never kept for Back: a page shown again must carry new start keys (and the list as it is now).
    response.headers.set("cache-control", "no-store");
    return response;
  }

  /**
   * The page of `deployment`, with its id, status and details (target, parameters, who, what it re-runs) filled
   * in, and Run again once it has ended (a plain form); its script keeps them up to date.
   */
  deployment(deployment: Deployment, options: DeploymentPage = {}): Response {
    const id = escapeHtml(deployment.id);
    // The template's words first, then the details: a value that holds `__ID__` or `$&` stays as it is.
    const page = html(
      this.#deployment.replaceAll("__ID__", id).replaceAll("__SHORT_ID__", id.slice(0, 8))
        .replaceAll("__STATUS__", escapeHtml(deployment.status))
        .replace(DETAILS_MARKER, () => renderDetails(deployment))
        .replace(RUN_AGAIN_MARKER, () => renderRunAgain(deployment, options)),
    );
    // Never kept for Back: a page shown again must carry a new Run again key.
    page.headers.set("cache-control", "no-store");
    return page;
  }

  /**
   * The form that starts a deployment of `target` (`GET /start?target=`, and a Start refused with the reasons):
   * one field per parameter, filled with `values` (or the defaults), each error shown next to its field.
   * Works without JavaScript.
   */
  startForm(target: Target, form: StartForm = {}): Response {
    const general = form.errors?.find(({ param }) => param === null)?.message;
    const body = `<h1>Deploy to ${escapeHtml(target.name)}</h1>` +
      (target.description ? `<p class="lede">${escapeHtml(target.description)}</p>` : "") +
      (general === undefined ? "" : `<p class="error" role="alert">${escapeHtml(general)}</p>`) +
      renderStartForm(target, form, "param-") + `<p><a href="/">&larr; All deployments</a></p>`;
    const page = html(
      pageShell(`Deploy to ${target.name}`, body, this.#signedIn),
      form.errors?.length ? 400 : 200,
    );
    page.headers.set("cache-control", "no-store");
    return page;
  }

  /** A static asset by file name, or `undefined`. */
  asset(name: string): Response | undefined {
    const asset = this.#assets.get(name);
    if (!asset) return undefined;
    return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
  }
}

/** What the home page shows: see {@linkcode Pages.home}. */
export interface HomeView {
  /** The targets, in the config's order, each with its latest deployment (`undefined`: none yet). */
  targets: readonly TargetCard[];
  /** What the history shows (its filter, limit and cursor), and the page of it. */
  query: DeploymentQuery;
  page: ListPage;
  /** How many deployments run now (all of them, whatever the filter): the title says it, for a background tab. */
  running: number;
}

/**
 * The start of the home page's title while deployments run (`2 running · `), so a background tab tells it;
 * static/home.js keeps it live by the same rule.
 */
function runningTitle(running: number): string {
  return running > 0 ? `${running} running · ` : "";
}

/** A target's card on the home page. */
export interface TargetCard {
  target: Target;
  latest: Deployment | undefined;
  /** Its latest deployment that succeeded: what is there now. Default: none. */
  deployed?: Deployment;
}

/** The longest parameters text a row or card shows; the rest is in its tooltip, up to the tooltip's. */
const SHORT_PARAMS = 80;
const LONG_PARAMS = 500;

/**
 * One target's card (see `static/index.html`): its latest deployment (`home.js` keeps it live) and its Start:
 * a target without parameters starts at a press (a form, as the only target's `#start`); one with parameters
 * links to its form page (`GET /start?target=`), which `home.js` opens in the card's dialog instead.
 */
function renderCard({ target, latest, deployed }: TargetCard, index: number, count: number): string {
  const name = escapeHtml(target.name);
  const start = target.params.size === 0
    ? `<form method="post" action="/start" class="start-form start-now">` +
      `<input type="hidden" name="key" value="${crypto.randomUUID()}">` +
      `<input type="hidden" name="target" value="${name}">` +
      `<button type="submit" class="button primary"${count === 1 ? ' id="start"' : ""}>Start</button></form>`
    : `<a class="button primary start-link" href="/start?target=${
      escapeHtml(encodeURIComponent(target.name))
    }"` +
      ` data-dialog="start-dialog-${index}">Start…</a>` +
      `<dialog class="start-dialog" id="start-dialog-${index}" aria-labelledby="start-dialog-${index}-title">` +
      `<h2 id="start-dialog-${index}-title">Deploy to ${name}</h2>` +
      renderStartForm(target, {}, `t${index}-param-`) +
      `<button type="button" class="button close-dialog">Close</button></dialog>`;
  const [first] = target.params.keys();
  // Which parameter is the version, for the cards home.js brings up to date.
  const version = first === undefined ? "" : ` data-version-param="${escapeHtml(first)}"`;
  return `<li class="card" data-target="${name}"${version}>` +
    `<h3 class="card-name">${name}</h3>` +
    (target.description ? `<p class="card-description">${escapeHtml(target.description)}</p>` : "") +
    `<p class="card-latest">${
      latest ? renderCardLine(latest, target, { badge: true }) : "Never deployed"
    }</p>` +
    // What is there now, when the latest does not say it (it failed, or is still to run).
    `<p class="card-deployed"${!deployed || deployed.id === latest?.id ? " hidden" : ""}>Deployed: ${
      deployed ? renderCardLine(deployed, target, { badge: false }) : ""
    }</p>` +
    `<div class="card-actions">${start}</div></li>`;
}

/**
 * A card's line of one deployment, the latest (with its status badge) or the deployed one: its version (a link
 * to it), who started it and when.
 */
function renderCardLine(deployment: Deployment, target: Target, { badge }: { badge: boolean }): string {
  const id = escapeHtml(deployment.id);
  const status = escapeHtml(deployment.status);
  const { text, title } = shortParams(versionOf(deployment, target));
  return `<a href="/deployment/${id}" data-id="${id}" data-created="${escapeHtml(deployment.createdAt)}">` +
    (badge ? `<span class="badge status-${status}">${status}</span> ` : "") +
    `<span class="version"${title}>${text}</span></a>` +
    ` <span class="by">${escapeHtml(deployment.startedBy ?? "")}</span> ${renderTime(deployment)}`;
}

/**
 * What a card calls a deployment's version: the value of its target's first parameter (the version, as a
 * config would order them), or every parameter, `name=value` (like `home.js`'s `versionOf`).
 */
function versionOf(deployment: Deployment, target: Target): string {
  const [first] = target.params.keys();
  // Own keys only: a parameter may be named `constructor`.
  if (first !== undefined && Object.hasOwn(deployment.params, first)) return deployment.params[first];
  return paramsText(deployment.params);
}

/** Every parameter as `name=value`, space-separated, in the record's order. */
function paramsText(params: Record<string, string>): string {
  return Object.entries(params).map(([name, value]) => `${name}=${value}`).join(" ");
}

/** `text` cut to {@linkcode SHORT_PARAMS}, HTML-escaped, and a `title` attribute with more of it when cut. */
function shortParams(text: string): { text: string; title: string } {
  if (text.length <= SHORT_PARAMS) return { text: escapeHtml(text), title: "" };
  const long = text.length > LONG_PARAMS ? `${text.slice(0, LONG_PARAMS)}…` : text;
  return { text: `${escapeHtml(text.slice(0, SHORT_PARAMS))}…`, title: ` title="${escapeHtml(long)}"` };
}

/** When a deployment started (or was created, while queued): ISO in `datetime`, UTC text until `home.js`. */
function renderTime(deployment: Deployment): string {
  const start = deployment.startedAt ?? deployment.createdAt;
  return `<time datetime="${escapeHtml(start)}">${
    escapeHtml(start.replace("T", " ").slice(0, 19))
  } UTC</time>`;
}

/** `<option>`s: the empty "any" first, then `values`, `selected` the chosen one. */
function options(values: readonly string[], selected: string | undefined, any: string): string {
  return `<option value="">${escapeHtml(any)}</option>` +
    values.map((value) => `<option${value === selected ? " selected" : ""}>${escapeHtml(value)}</option>`)
      .join("");
}

/**
 * The form that starts `target` (its page, and a card's dialog): the key, the target, one field per parameter
 * (filled with the values sent, else the defaults; choices as a select), each error next to its field. The ids
 * of its fields start with `idPrefix`, so several forms can share a page.
 */
function renderStartForm(target: Target, form: StartForm, idPrefix: string): string {
  const errors = new Map((form.errors ?? []).map(({ param, message }) => [param, message]));
  const fields = [...target.params].map(([name, spec]) => {
    const value = (form.values && Object.hasOwn(form.values, name) ? form.values[name] : null) ??
      spec.default ??
      "";
    const id = `${idPrefix}${escapeHtml(name)}`;
    const error = errors.get(name);
    const described = error === undefined ? "" : ` aria-invalid="true" aria-describedby="${id}-error"`;
    const control = spec.choices
      ? `<select id="${id}" name="param.${escapeHtml(name)}"${described}>` +
        spec.choices.map((choice) =>
          `<option${choice === value ? " selected" : ""}>${escapeHtml(choice)}</option>`
        ).join("") + "</select>"
      : `<input id="${id}" name="param.${escapeHtml(name)}" value="${escapeHtml(value)}"` +
        `${spec.required ? " required" : ""}${described}>`;
    return `<p class="field"><label for="${id}">${escapeHtml(name)}</label> ${control}` +
      (spec.description ? ` <span class="hint">${escapeHtml(spec.description)}</span>` : "") +
      (error === undefined ? "" : ` <span class="error" id="${id}-error">${escapeHtml(error)}</span>`) +
      "</p>";
  });
  // Not checked in the browser: the server's messages say what is allowed, next to each field.
  return `<form method="post" action="/start" class="start-form start-params" novalidate>` +
    `<input type="hidden" name="key" value="${crypto.randomUUID()}">` +
    `<input type="hidden" name="target" value="${escapeHtml(target.name)}">` +
    fields.join("") + `<button type="submit" class="button primary">Start</button></form>`;
}

/** One row of the deployment list; `home.js` renders the same markup (see `static/index.html`) for rows it adds. */
export function renderRow(deployment: Deployment): string {
  const id = escapeHtml(deployment.id);
  const status = escapeHtml(deployment.status);
  const start = deployment.startedAt ?? deployment.createdAt;
  const duration = deployment.finishedAt
    ? formatDuration(Date.parse(deployment.finishedAt) - Date.parse(start))
    : "";
  // In a cluster, the instance that runs or ran it; a leading space inside, so a row without one is unchanged.
  const instance = deployment.instance
    ? `<span class="instance"> on ${escapeHtml(deployment.instance)}</span>`
    : "";
  const params = shortParams(paramsText(deployment.params));
  return `<li data-id="${id}" data-status="${status}" data-target="${escapeHtml(deployment.target)}" ` +
    `data-created="${escapeHtml(deployment.createdAt)}">` +
    `<a href="/deployment/${id}"><code>${id.slice(0, 8)}</code>${instance}</a> ` +
    `<span class="target">${escapeHtml(deployment.target)}</span> ` +
    `<span class="params"${params.title}>${params.text}</span> ` +
    `<span class="by">${escapeHtml(deployment.startedBy ?? "")}</span> ` +
    `<span class="badge status-${status}">${status}</span> ${renderTime(deployment)} ` +
    // Not announced: a running duration changes every second, inside the list's live region.
    `<span class="duration" aria-live="off">${duration}</span></li>`;
}

/** What a deployment's page shows besides its record. */
export interface DeploymentPage {
  /** Why it cannot be run again (its target is gone, say), shown by a disabled Run again. Default: it can. */
  rerunRefused?: string;
  /**
   * The target as the config has it now, when it has parameters: beside Run again, a link to its Start form
   * filled with this deployment's values, to change some first. Default: no link.
   */
  rerunTarget?: Target;
}

/**
 * A deployment's details, each in an element `deployment.js` updates by id (`hidden` while it has no value):
 * the target, the parameters, who started and who cancelled it, and the deployment it re-runs.
 */
export function renderDetails(deployment: Deployment): string {
  const detail = (id: string, term: string, value: string, shown: boolean) =>
    `<div class="detail" id="${id}-detail"${shown ? "" : " hidden"}><dt>${term}</dt><dd>${value}</dd></div>`;
  const params = Object.entries(deployment.params).map(([name, value]) =>
    `<li><span class="param-name">${escapeHtml(name)}</span> <code class="param-value">${
      escapeHtml(value)
    }</code></li>`
  ).join("");
  const rerunOf = deployment.rerunOf === null ? "" : escapeHtml(deployment.rerunOf);
  return `<dl id="details" class="details">` +
    detail("target", "Target", `<span id="target">${escapeHtml(deployment.target)}</span>`, true) +
    detail("params", "Parameters", `<ul id="params" class="params">${params}</ul>`, params !== "") +
    detail(
      "started-by",
      "Started by",
      person("started-by", deployment.startedBy),
      deployment.startedBy !== null,
    ) +
    detail(
      "cancelled-by",
      "Cancelled by",
      person("cancelled-by", deployment.cancelledBy),
      deployment.cancelledBy !== null,
    ) +
    detail(
      "rerun",
      "Re-run of",
      `<a id="rerun-of" href="/deployment/${rerunOf}" title="${rerunOf}"><code>${
        rerunOf.slice(0, 8)
      }</code></a>`,
      rerunOf !== "",
    ) +
    "</dl>";
}

function person(id: string, name: string | null): string {
  return `<span id="${id}" class="person">${escapeHtml(name ?? "")}</span>`;
}

/**
 * Run again: a plain form (no JavaScript needed) with a fresh key, so that a double press makes one deployment.
 * Hidden until the deployment has ended; disabled, saying why, when it cannot be run again.
 */
function renderRunAgain(deployment: Deployment, options: DeploymentPage): string {
  const refused = options.rerunRefused;
  const note = refused === undefined
    ? ""
    : `<span id="run-again-refused" class="hint">${escapeHtml(refused)}</span>`;
  const target = options.rerunTarget;
  const change = target === undefined || target.params.size === 0
    ? ""
    : ` <a id="run-again-change" href="${
      escapeHtml(startAddress(target, deployment.params))
    }">Change values…</a>`;
  return `<form id="run-again" class="run-again" method="post" ` +
    `action="/api/deployments/${escapeHtml(deployment.id)}/rerun"${
      isFinal(deployment.status) ? "" : " hidden"
    }>` +
    `<input type="hidden" name="key" value="${crypto.randomUUID()}">` +
    `<button type="submit" class="button primary"` +
    (refused === undefined ? "" : ` disabled aria-describedby="run-again-refused"`) +
    `>Run again</button>${change}${note}</form>`;
}

/** `GET /start` for `target`, its form filled with those of `values` that it still takes. */
function startAddress(target: Target, values: Record<string, string>): string {
  const query = new URLSearchParams({ target: target.name });
  for (const name of target.params.keys()) {
    if (Object.hasOwn(values, name)) query.set(`param.${name}`, values[name]);
  }
  return `/start?${query}`;
}

/** What a start form shows besides its target: the values sent, and why they were refused. */
export interface StartForm {
  /** The values to fill in, by parameter name. Default: the parameters' defaults. */
  values?: Record<string, string>;
  /** Why a Start was refused: each next to its parameter's field (`param` `null`: above the form). */
  errors?: readonly { param: string | null; message: string }[];
}

/**
 * The page a browser gets for an error (an unknown deployment, say): the message, and the way home; its top
 * bar says who is signed in, when someone is.
 */
export function errorPage(status: number, message: string, signedIn?: SignedIn): string {
  const title = `${status} ${STATUS_CODES[status] ?? "Error"}`;
  return pageShell(
    title,
    `<h1>${escapeHtml(title)}</h1>
      <p>${escapeHtml(message)}</p>
      <p><a href="/">&larr; All deployments</a></p>`,
    signedIn,
  );
}

/**
 * What a top bar says of who is signed in: their name (or that the access token is in use), and a sign-out
 * button, a form posting to `/sign-out` that works without JavaScript. Nothing when access is open.
 */
export function signedInBar(signedIn: SignedIn | undefined): string {
  if (!signedIn) return "";
  // On a phone the words go and the name stays: the bar has room for little else.
  const who = signedIn.user === null
    ? `<span class="user"><span class="label">Signed in with the access token</span></span>`
    : `<span class="user"><span class="label">Signed in as </span>` +
      `<strong id="user-name">${escapeHtml(signedIn.user)}</strong></span>`;
  const signOut = signedIn.canSignOut
    ? `<form method="post" action="/sign-out" class="sign-out">` +
      `<button type="submit" class="button" id="sign-out">Sign out</button></form>`
    : "";
  return `<div class="signed-in">${who}${signOut}</div>`;
}

/** A page with the site's head and top bar around `body` (HTML); `title` is text. */
function pageShell(title: string, body: string, signedIn?: SignedIn): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="color-scheme" content="light dark">
    <title>${escapeHtml(title)} · shiplog</title>
    <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/static/style.css">
  </head>
  <body>
    <header class="topbar"><a class="brand" href="/">shiplog</a>${signedInBar(signedIn)}</header>
    <main class="page">
      ${body}
    </main>
  </body>
</html>
`;
}

/** A duration as `42s`, `3m 07s` or `2h 05m` (whole seconds, rounded down), like `static/format.js`. */
export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  const pad = (n: number) => String(n).padStart(2, "0");
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${pad(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${pad(Math.floor(seconds / 60) % 60)}m`;
}

/** A comment in a template that is no marker (`<!--targets-->`), with the line break after it. */
const NOTE = /<!--(?![a-z-]+-->)[^]*?-->\n?/g;

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function html(body: string, status = 200): Response {
  return new Response(body, {
    status,
    headers: { "content-type": CONTENT_TYPES[".html"], "cache-control": "no-cache" },
  });
}
