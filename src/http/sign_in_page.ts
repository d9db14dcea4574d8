/**
 * @module
 * The sign-in page, shown with `401` to a browser that has no session. It is self-contained (it must render
 * before any asset can be fetched with credentials): its one inline style and its one line of script are
 * allowed by their hashes in the page's own Content-Security-Policy. The page works without the script.
 */

import { createHash } from "node:crypto";
import { escapeHtml } from "./pages.ts";

const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; display: grid; place-items: center; min-height: 90vh; margin: 0;
  color: #1f2328; background: #f6f8fa; }
form { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 2rem; width: min(22rem, 90vw); }
h1 { font-size: 1.25rem; margin: 0 0 1rem; }
input, button { font: inherit; width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .5rem; }
button { background: #1f6feb; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
.error { color: #cf222e; }
@media (prefers-color-scheme: dark) { body { color: #e6edf3; background: #0d1117; }
  form { background: #161b22; border-color: #30363d; } input { background: #0d1117; color: #e6edf3; } }
`;

/**
 * Keeps the fragment of the page asked for (a `#L<n>` link to a log line) through signing in. The server never
 * sees a fragment, so `next` lacks it; but a redirect without one keeps the fragment of the URL it answered,
 * so the form is posted to `/sign-in#L<n>` and its redirect to `next` arrives at `next#L<n>`.
 */
const SCRIPT = `if (location.hash) document.forms[0].action += location.hash;`;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64");

/** The Content-Security-Policy of the sign-in page: nothing but its own inline style, script and form. */
export const SIGN_IN_CSP = `default-src 'none'; style-src 'sha256-${sha256(STYLE)}'; script-src 'sha256-${
  sha256(SCRIPT)
}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

/** The sign-in form, returning to `next` (a local path) after signing in. */
export function signInPage(next: string, message?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · shiplog</title>
<style>${STYLE}</style>
</head>
<body>
<form method="post" action="/sign-in">
<h1>shiplog</h1>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ""}
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Sign in</button>
</form>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/**
 * `next` when it is a path on this server, else `/`: a sign-in link must not send anyone elsewhere. Visible
 * ASCII only, as a request path is: it becomes a `Location` header, where a control character is a 500 (NUL,
 * CR, LF) or worse (other C0 characters make Deno 2.9.6 panic while writing the response).
 */
export function safeNext(next: string | null): string {
  return next !== null && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : "/";
}
