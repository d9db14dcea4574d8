/**
 * @module
 * Keeps the home page's list live. The server renders the rows (so the page works without JavaScript); this
 * script opens one `/events` stream for the whole list: `deployments` (all of them, at connect) reconciles the
 * list, `deployment` (one that was created or changed) updates or inserts its row, `removed` (the id of one
 * deleted as too old to keep) removes its row. Rows are written with the
 * same markup the server uses (see the comment at the top of index.html), with `textContent` only.
 */

import { elapsedMilliseconds, formatDuration, formatTime, shortId } from "./format.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** What the connection says while the server cannot reach the store that its cluster shares. */
const UNAVAILABLE = "Reconnecting… (the server cannot reach its store)";
/** How long a second press of Start is taken for a double click rather than meant. */
const RESUBMIT_AFTER_MS = 10_000;

/**
 * @typedef {object} Deployment
 * @property {string} id
 * @property {string} status
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 * @property {string | null} [instance] In a cluster, the instance that runs or ran it.
 */

const list = /** @type {HTMLUListElement} */ (document.getElementById("deployments"));
const connection = /** @type {HTMLElement} */ (document.getElementById("connection"));

/** The record behind each row, once the stream has sent it. @type {Map<string, Deployment>} */
const records = new Map();
/** Each deployment's row: one lookup per event, not a walk of a list that may hold thousands. */
const rows = new Map(
  [...list.querySelectorAll("li[data-id]")].map((row) => [/** @type {HTMLElement} */ (row).dataset.id, row]),
);
let retryDelay = RETRY_MIN_MS;

localizeServerRows();
guardStart();
setInterval(tick, 1000);
connect();

/**
 * One press, one deployment: a second press (a double click, or impatience while the answer is slow) is ignored
 * until the page is shown again, say by going back to it.
 */
function guardStart() {
  const button = /** @type {HTMLButtonElement} */ (document.getElementById("start"));
  const form = /** @type {HTMLFormElement} */ (button.form);
  const label = button.textContent;
  const key = /** @type {HTMLInputElement} */ (form.elements.namedItem("key"));
  /** @type {number | undefined} */
  let rearm;
  const ready = () => {
    // A timer of a press before the page was last hidden (the back/forward cache freezes it) must not fire later.
    clearTimeout(rearm);
    delete form.dataset.submitted;
    button.removeAttribute("aria-disabled");
    button.textContent = label;
    // A new press, a new key: a page shown again (going back to it) must not repeat the last start.
    key.value = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  };
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitted === "true") return event.preventDefault();
    form.dataset.submitted = "true";
    // Not `disabled`: a disabled button would drop out of the keyboard's focus, and it says nothing.
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Starting…";
    // A press after this long is meant (the reader may have stopped the first one, which no event tells).
    rearm = setTimeout(ready, RESUBMIT_AFTER_MS);
  });
  globalThis.addEventListener("pageshow", ready);
}

function connect() {
  const source = new EventSource("/events");
  /** The server said it cannot reach its store: the stream ends, and EventSource comes back after a while. */
  let unavailable = false;
  setConnection("connecting", "Connecting…");
  source.addEventListener("open", () => {
    retryDelay = RETRY_MIN_MS;
  });
  // Live once the list arrives, not at `open`: a server that cannot reach its store opens, says so, and ends.
  source.addEventListener("unavailable", (event) => {
    unavailable = true;
    setConnection("reconnecting", UNAVAILABLE, event.data);
  });
  source.addEventListener("deployments", (event) => {
    unavailable = false;
    setConnection("live", "Live");
    const all = parseJson(event.data);
    if (Array.isArray(all)) replaceAll(all);
  });
  source.addEventListener("deployment", (event) => {
    const record = parseJson(event.data);
    if (record && typeof record.id === "string") upsert(record);
  });
  source.addEventListener("removed", (event) => {
    rows.get(event.data)?.remove();
    rows.delete(event.data);
    records.delete(event.data);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CONNECTING) {
      if (!unavailable) setConnection("reconnecting", "Reconnecting…");
      return;
    }
    // EventSource gave up (a non-200 answer): try again ourselves, waiting longer each time.
    source.close();
    const delay = retryDelay * (0.8 + Math.random() * 0.4);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    setConnection("reconnecting", `Reconnecting in ${Math.round(delay / 1000)}s…`);
    setTimeout(async () => {
      // Signed out (the token changed): reloading shows the sign-in form, which comes back here after.
      if (await signedOut()) return location.reload();
      connect();
    }, delay);
  });
}

/** True when the server asks this browser to sign in again. */
async function signedOut() {
  try {
    return (await fetch("/api/deployments", { method: "HEAD" })).status === 401;
  } catch {
    return false; // Unreachable: just try the stream again.
  }
}

/** @param {Deployment[]} all Newest first. */
function replaceAll(all) {
  const keep = new Set(all.map((record) => record.id));
  for (const row of [...list.querySelectorAll("li[data-id]")]) {
    const id = /** @type {HTMLElement} */ (row).dataset.id ?? "";
    if (!keep.has(id)) {
      row.remove();
      rows.delete(id);
      records.delete(id);
    }
  }
  // In the server's order, moving only rows out of place: the list is a live region, and every row re-appended
  // at each (re)connection would be a row announced again.
  let next = list.firstElementChild;
  for (const record of all) {
    records.set(record.id, record);
    const row = rowFor(record);
    if (row === next) next = row.nextElementSibling;
    else list.insertBefore(row, next);
  }
}

/** @param {Deployment} record */
function upsert(record) {
  const isNew = !records.has(record.id) && !rows.has(record.id);
  records.set(record.id, record);
  const row = rowFor(record);
  if (isNew) {
    // Newest first: before the first row created earlier than this one, found from the top, where a new
    // deployment belongs.
    const created = Date.parse(record.createdAt);
    let next = /** @type {HTMLElement | null} */ (list.firstElementChild);
    while (next !== null) {
      const known = records.get(next.dataset.id ?? "");
      if (known === undefined || Date.parse(known.createdAt) < created) break;
      next = /** @type {HTMLElement | null} */ (next.nextElementSibling);
    }
    list.insertBefore(row, next);
    flash(row);
  }
}

/**
 * Finds or makes the row of `record` and brings it up to date.
 * @param {Deployment} record
 * @returns {HTMLElement}
 */
function rowFor(record) {
  const row = rows.get(record.id) ?? createRow(record.id);
  const previous = row.dataset.status;
  row.dataset.status = record.status;
  const badge = /** @type {HTMLElement} */ (row.querySelector(".badge"));
  badge.className = `badge status-${record.status}`;
  badge.textContent = record.status;
  renderInstance(row, record.instance);
  const time = /** @type {HTMLTimeElement} */ (row.querySelector("time"));
  time.dateTime = record.startedAt ?? record.createdAt;
  time.textContent = formatTime(time.dateTime, Date.now());
  time.title = new Date(time.dateTime).toLocaleString();
  renderDuration(row, record);
  if (previous !== undefined && previous !== record.status) flash(row);
  return row;
}

/**
 * The same markup as the server's rows.
 * @param {string} id
 */
function createRow(id) {
  const row = document.createElement("li");
  row.dataset.id = id;
  const link = document.createElement("a");
  link.href = `/deployment/${encodeURIComponent(id)}`;
  const code = document.createElement("code");
  code.textContent = shortId(id);
  link.append(code);
  const badge = document.createElement("span");
  badge.className = "badge";
  const time = document.createElement("time");
  const duration = document.createElement("span");
  duration.className = "duration";
  // Not announced: it changes every second while the deployment runs, inside the list's live region.
  duration.setAttribute("aria-live", "off");
  row.append(link, " ", badge, " ", time, " ", duration);
  rows.set(id, row);
  return row;
}

/**
 * The instance that runs or ran it, inside the link after the short id (see index.html); none without one.
 * @param {HTMLElement} row
 * @param {string | null | undefined} instance
 */
function renderInstance(row, instance) {
  const link = /** @type {HTMLElement} */ (row.querySelector("a"));
  let element = link.querySelector(".instance");
  if (!instance) return element?.remove();
  if (element === null) {
    element = document.createElement("span");
    element.className = "instance";
    link.append(element);
  }
  const text = ` on ${instance}`;
  if (element.textContent !== text) element.textContent = text;
}

/**
 * @param {HTMLElement} row
 * @param {Deployment} record
 */
function renderDuration(row, record) {
  const element = /** @type {HTMLElement | null} */ (row.querySelector(".duration"));
  if (element === null) return;
  const elapsed = record.status === "queued" ? null : elapsedMilliseconds(record, Date.now());
  element.textContent = elapsed === null ? "" : formatDuration(elapsed);
}

/** Server rows say times in UTC; say them in the reader's time zone until the stream sends the records. */
function localizeServerRows() {
  for (const time of list.querySelectorAll("time")) {
    const moment = /** @type {HTMLTimeElement} */ (time).dateTime;
    const text = formatTime(moment, Date.now());
    if (text) {
      time.textContent = text;
      /** @type {HTMLElement} */ (time).title = new Date(moment).toLocaleString();
    }
  }
}

/** Running durations tick; rows known only from the server's HTML tick from their start time. */
function tick() {
  for (const child of list.children) {
    const row = /** @type {HTMLElement} */ (child);
    if (row.dataset.status !== "running") continue;
    const record = records.get(row.dataset.id ?? "");
    if (record) {
      renderDuration(row, record);
    } else {
      const time = row.querySelector("time");
      const duration = row.querySelector(".duration");
      const start = Date.parse(time?.dateTime ?? "");
      if (duration && !Number.isNaN(start)) duration.textContent = formatDuration(Date.now() - start);
    }
  }
}

/** @param {HTMLElement} row */
function flash(row) {
  row.classList.remove("flash");
  // Restart the animation: reading layout between removing and adding the class makes it run again.
  void row.offsetWidth;
  row.classList.add("flash");
}

/**
 * @param {"connecting" | "live" | "reconnecting"} state
 * @param {string} text
 * @param {string} [detail] Shown on hover: the server's reason.
 */
function setConnection(state, text, detail = "Live updates") {
  connection.dataset.state = state;
  connection.textContent = text;
  connection.title = detail;
}

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
