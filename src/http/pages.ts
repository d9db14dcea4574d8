/**
 * @module
 * The pages and their assets, read once from `static/` next to the source (embedded in the binary by
 * `deno compile --include static`, so nothing depends on source paths at run time). The home page gets the
 * deployment list rendered into it on the server, so it works without JavaScript; every dynamic value is
 * HTML-escaped.
 */

import { STATUS_CODES } from "node:http";
import type { Deployment } from "../logs/deployment.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".png": "image/png",
};

const LIST_MARKER = "<!--deployments-->";

/** The pages and static assets, in memory. */
export class Pages {
  #assets: Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>;
  #home: string;
  #deployment: string;

  private constructor(assets: Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>) {
    this.#assets = assets;
    this.#home = new TextDecoder().decode(assets.get("index.html")!.body);
    this.#deployment = new TextDecoder().decode(assets.get("deployment.html")!.body);
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
    return new Pages(assets);
  }

  /** The home page with `deployments` listed, newest first. */
  home(deployments: Deployment[]): Response {
    const rows = deployments.map(renderRow).join("\n");
    const page = html(this.#home.replace(LIST_MARKER, rows).replace("__START_KEY__", crypto.randomUUID()));
    // Never kept for Back: a page shown again must carry a new start key (and the list as it is now).
    page.headers.set("cache-control", "no-store");
    return page;
  }

  /** The page of `deployment`, with its id and status filled in; its script keeps them up to date. */
  deployment(deployment: Deployment): Response {
    const id = escapeHtml(deployment.id);
    return html(
      this.#deployment.replaceAll("__ID__", id).replaceAll("__SHORT_ID__", id.slice(0, 8))
        .replaceAll("__STATUS__", escapeHtml(deployment.status)),
    );
  }

  /** A static asset by file name, or `undefined`. */
  asset(name: string): Response | undefined {
    const asset = this.#assets.get(name);
    if (!asset) return undefined;
    return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
  }
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
  return `<li data-id="${id}" data-status="${status}">` +
    `<a href="/deployment/${id}"><code>${id.slice(0, 8)}</code>${instance}</a> ` +
    `<span class="badge status-${status}">${status}</span> ` +
    `<time datetime="${escapeHtml(start)}">${escapeHtml(start.replace("T", " ").slice(0, 19))} UTC</time> ` +
    // Not announced: a running duration changes every second, inside the list's live region.
    `<span class="duration" aria-live="off">${duration}</span></li>`;
}

/** The page a browser gets for an error (an unknown deployment, say): the message, and the way home. */
export function errorPage(status: number, message: string): string {
  const title = escapeHtml(`${status} ${STATUS_CODES[status] ?? "Error"}`);
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="color-scheme" content="light dark">
    <title>${title} · shiplog</title>
    <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/static/style.css">
  </head>
  <body>
    <header class="topbar"><a class="brand" href="/">shiplog</a></header>
    <main class="page">
      <h1>${title}</h1>
      <p>${escapeHtml(message)}</p>
      <p><a href="/">&larr; All deployments</a></p>
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

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function html(body: string): Response {
  return new Response(body, {
    headers: { "content-type": CONTENT_TYPES[".html"], "cache-control": "no-cache" },
  });
}
