/**
 * @module
 * The tab's icon says how a deployment stands, so a tab in the background tells it: shiplog's icon with a dot
 * in the corner, grey while it waits, blue while it runs, green once it succeeded, red once it failed (or was
 * interrupted), darker grey once cancelled. The icon is an SVG `data:` URL (the pages' Content-Security-Policy
 * allows `img-src data:`), so no request is made for it.
 */

/** The dot's colour by status; a status not listed keeps the plain icon. */
const DOT = {
  queued: "#8b93a1",
  running: "#2563eb",
  succeeded: "#1a7f37",
  failed: "#cf222e",
  interrupted: "#cf222e",
  cancelled: "#6e7781",
};

/**
 * The icon for `status`, as an SVG document.
 * @param {string} status
 * @returns {string}
 */
export function faviconSvg(status) {
  const dot = DOT[/** @type {keyof DOT} */ (status)];
  const mark = dot ? `<circle cx="24" cy="24" r="8" fill="${dot}" stroke="#fff" stroke-width="2.5"/>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
    `<rect width="32" height="32" rx="7" fill="#2563eb"/>` +
    `<path d="M7 9h12M7 16h18M7 23h9" stroke="#fff" stroke-width="3.2" stroke-linecap="round"/>${mark}</svg>`;
}

/**
 * Points the page's icon at the one for `status` (only when it changes: every status event carries it).
 * @param {string} status
 */
export function showStatusIcon(status) {
  let link = /** @type {HTMLLinkElement | null} */ (document.querySelector('link[rel="icon"]'));
  if (link === null) {
    link = document.createElement("link");
    link.rel = "icon";
    document.head.append(link);
  }
  if (link.dataset.status === status) return;
  link.dataset.status = status;
  link.type = "image/svg+xml";
  link.href = `data:image/svg+xml,${encodeURIComponent(faviconSvg(status))}`;
}
