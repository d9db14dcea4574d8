/**
 * @module
 * Keeps the home page live and opens each target's parameter form in place. The server renders the cards and
 * the page of the history (so the page works without JavaScript); this script opens one `/events` stream with
 * the page's own query: `deployments` (the page, at connect) reconciles the list, `latest` (each target's latest,
 * at connect) the cards, `deployment` (one created or changed that the page shows, would show, or a card shows)
 * updates its row and its target's card, `removed`
 * (the id of a shown one deleted as too old to keep) removes its row. Rows and cards are written with the same
 * markup the server uses (see the comment at the top of index.html), with `textContent` only.
 *
 * A target with parameters has a Start link to its form page; here it opens the card's dialog instead, which
 * sends the form as JSON and shows each of the server's reasons for refusing it next to its field.
 */

import { elapsedMilliseconds, formatDuration, formatTime, shortId } from "./format.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** What the connection says while the server cannot reach the store that its cluster shares. */
const UNAVAILABLE = "Reconnecting… (the server cannot reach its store)";
/** How long a second press of Start is taken for a double click rather than meant. */
const RESUBMIT_AFTER_MS = 10_000;
/** The longest parameters text shown, and the longest tooltip: as the server cuts them (pages.ts). */
const SHORT_PARAMS = 80;
const LONG_PARAMS = 500;
/** The home page's title, after how many run (kept live from `event: counts`). */
const TITLE = "Deployments · shiplog";

/**
 * @typedef {object} Deployment
 * @property {string} id
 * @property {string} status
 * @property {string} target
 * @property {Record<string, string>} params
 * @property {string | null} startedBy
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 * @property {string | null} [instance] In a cluster, the instance that runs or ran it.
 */

const list = /** @type {HTMLUListElement} */ (document.getElementById("deployments"));
const connection = /** @type {HTMLElement} */ (document.getElementById("connection"));
const older = /** @type {HTMLAnchorElement | null} */ (document.getElementById("older"));

/** What the page lists: its query, as the server read it. */
const query = new URLSearchParams(location.search);
const filter = { target: query.get("target") || null, status: query.get("status") || null };
/** A later page (a cursor) takes no new deployment: only the first page grows at the top. */
const paged = Boolean(query.get("before"));
const limit = Number(list.dataset.limit) || 50;

/** The record behind each row, once the stream has sent it. @type {Map<string, Deployment>} */
const records = new Map();
/** Each deployment's row: one lookup per event, not a walk of the list. */
const rows = new Map(
  [...list.querySelectorAll("li[data-id]")].map((row) => [/** @type {HTMLElement} */ (row).dataset.id, row]),
);
/** Each target's card, by its name. */
const cards = new Map(
  [...document.querySelectorAll("#targets > li.card")].map((card) => [
    /** @type {HTMLElement} */ (card).dataset.target,
    /** @type {HTMLElement} */ (card),
  ]),
);
let retryDelay = RETRY_MIN_MS;
/** The stream of the moment. @type {EventSource | undefined} */
let source;

localizeServerTimes();
for (const form of document.querySelectorAll("form.start-now")) {
  guardStart(/** @type {HTMLFormElement} */ (form));
}
for (const link of document.querySelectorAll("a.start-link[data-dialog]")) {
  setUpDialog(/** @type {HTMLAnchorElement} */ (link));
}
// A filter chosen is a filter applied: the button is for a reader without JavaScript.
document.getElementById("filters")?.addEventListener("change", (event) => {
  /** @type {HTMLFormElement} */ (event.currentTarget).requestSubmit();
});
document.querySelector("#filters button[type=submit]")?.setAttribute("hidden", "");
setInterval(tick, 1000);
connect();
// A page left for another (Older, a filter) may be kept for Back with its stream open: each one kept would hold
// one of the six connections a browser opens to a server over HTTP/1.1, and the seventh page would wait.
globalThis.addEventListener("pagehide", () => source?.close());
globalThis.addEventListener("pageshow", (event) => {
  if (event.persisted) connect();
});

/** A fresh start key: 32 hex digits. */
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/**
 * One press, one deployment: a second press (a double click, or impatience while the answer is slow) is ignored
 * until the page is shown again, say by going back to it.
 * @param {HTMLFormElement} form
 */
function guardStart(form) {
  const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
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
    key.value = newKey();
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

/**
 * The Start link of a target with parameters opens its dialog; the form in it is sent as JSON, and a refusal
 * (400) shows each reason next to its field; a deployment started opens its page.
 * @param {HTMLAnchorElement} link
 */
function setUpDialog(link) {
  const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById(link.dataset.dialog ?? ""));
  const form = /** @type {HTMLFormElement | null} */ (dialog?.querySelector("form") ?? null);
  if (!dialog || !form) return;
  const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
  const label = button.textContent;
  const key = /** @type {HTMLInputElement} */ (form.elements.namedItem("key"));
  link.addEventListener("click", (event) => {
    event.preventDefault();
    dialog.showModal();
  });
  dialog.querySelector(".close-dialog")?.addEventListener("click", () => dialog.close());
  globalThis.addEventListener("pageshow", () => {
    key.value = newKey();
    button.removeAttribute("aria-disabled");
    button.textContent = label;
    delete form.dataset.submitted;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.submitted === "true") return;
    form.dataset.submitted = "true";
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Starting…";
    showErrors(form, []);
    /** @type {Record<string, string>} */
    const params = {};
    for (const [name, value] of new FormData(form)) {
      if (name.startsWith("param.")) params[name.slice("param.".length)] = String(value);
    }
    const target = /** @type {HTMLInputElement} */ (form.elements.namedItem("target")).value;
    let errors = [{ param: null, message: "Cannot reach shiplog: try again" }];
    try {
      const response = await fetch("/start", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "idempotency-key": key.value,
        },
        // The key in its header: the body is the Start's own fields (the server refuses any other).
        body: JSON.stringify({ target, params }),
      });
      if (response.status === 201) {
        const deployment = await response.json();
        // Not back to a form that would start it again: its key is spent.
        return location.assign(`/deployment/${encodeURIComponent(deployment.id)}`);
      }
      errors = refusal(response.status, await response.text());
    } catch {
      // Unreachable: the message above.
    }
    showErrors(form, errors);
    // Refused: a new try is a new press.
    key.value = newKey();
    delete form.dataset.submitted;
    button.removeAttribute("aria-disabled");
    button.textContent = label;
  });
}

/**
 * Why the server refused a Start: its `errors` (`{param, message}`, `param` null for the form as a whole),
 * else its `error`, else its text.
 * @param {number} status
 * @param {string} body
 * @returns {{param: string | null, message: string}[]}
 */
function refusal(status, body) {
  const json = parseJson(body);
  if (json && Array.isArray(json.errors) && json.errors.length > 0) {
    return json.errors.map((/** @type {any} */ error) => ({
      param: typeof error?.param === "string" ? error.param : null,
      message: String(error?.message ?? ""),
    }));
  }
  const message = json && typeof json.error === "string" ? json.error : body.trim();
  return [{ param: null, message: message || `Cannot start a deployment (${status})` }];
}

/**
 * Shows each error next to its parameter's field, as the start page does (`<span class="error">` after the
 * field, which names it in `aria-describedby`); one for no field above the fields. Clears the earlier ones.
 * @param {HTMLFormElement} form
 * @param {{param: string | null, message: string}[]} errors
 */
function showErrors(form, errors) {
  for (const old of form.querySelectorAll(".error")) old.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
  for (const { param, message } of errors) {
    const field = param === null ? null : form.elements.namedItem(`param.${param}`);
    const element = document.createElement(field instanceof HTMLElement ? "span" : "p");
    element.className = "error";
    element.textContent = message;
    if (field instanceof HTMLElement) {
      element.id = `${field.id}-error`;
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", element.id);
      // After the field and its hint, as the server renders it.
      /** @type {HTMLElement} */ (field.parentElement).append(" ", element);
    } else {
      element.setAttribute("role", "alert");
      const first = form.querySelector(".field") ?? form.querySelector("button[type=submit]");
      form.insertBefore(element, first);
    }
  }
  const invalid = /** @type {HTMLElement | null} */ (form.querySelector("[aria-invalid]"));
  invalid?.focus();
}

function connect() {
  const current = source = new EventSource(`/events${location.search}`);
  /** The server said it cannot reach its store: the stream ends, and EventSource comes back after a while. */
  let unavailable = false;
  setConnection("connecting", "Connecting…");
  current.addEventListener("open", () => {
    retryDelay = RETRY_MIN_MS;
  });
  // Live once the list arrives, not at `open`: a server that cannot reach its store opens, says so, and ends.
  current.addEventListener("unavailable", (event) => {
    unavailable = true;
    setConnection("reconnecting", UNAVAILABLE, event.data);
  });
  current.addEventListener("deployments", (event) => {
    unavailable = false;
    setConnection("live", "Live");
    const page = parseJson(event.data);
    if (Array.isArray(page)) replaceAll(page);
  });
  // Each target's latest, at connect: the cards as they are now, whatever was missed while away.
  current.addEventListener("latest", (event) => {
    const latest = parseJson(event.data);
    if (Array.isArray(latest)) { for (const record of latest) renderCard(record); }
  });
  current.addEventListener("deployment", (event) => {
    const record = parseJson(event.data);
    if (record && typeof record.id === "string") upsert(record);
  });
  current.addEventListener("removed", (event) => removeRow(event.data));
  current.addEventListener("counts", (event) => {
    const running = parseJson(event.data)?.running;
    // The rule of the server's title (pages.ts): "2 running · " first while any run.
    if (typeof running === "number") document.title = `${running > 0 ? `${running} running · ` : ""}${TITLE}`;
  });
  current.addEventListener("error", () => {
    if (current.readyState === EventSource.CONNECTING) {
      if (!unavailable) setConnection("reconnecting", "Reconnecting…");
      return;
    }
    // EventSource gave up (a non-200 answer): try again ourselves, waiting longer each time.
    current.close();
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
    return (await fetch("/api/deployments?limit=1", { method: "HEAD" })).status === 401;
  } catch {
    return false; // Unreachable: just try the stream again.
  }
}

/** @param {Deployment[]} page Newest first: the page as the server has it now. */
function replaceAll(page) {
  const keep = new Set(page.map((record) => record.id));
  for (const row of [...list.querySelectorAll("li[data-id]")]) {
    const id = /** @type {HTMLElement} */ (row).dataset.id ?? "";
    if (!keep.has(id)) removeRow(id);
  }
  // In the server's order, moving only rows out of place: the list is a live region, and every row re-appended
  // at each (re)connection would be a row announced again.
  let next = list.firstElementChild;
  for (const record of page) {
    records.set(record.id, record);
    const row = rowFor(record);
    if (row === next) next = row.nextElementSibling;
    else list.insertBefore(row, next);
    renderCard(record);
  }
}

/** @param {Deployment} record */
function upsert(record) {
  renderCard(record);
  const shown = rows.has(record.id);
  // Sent for its card, or no longer in the filter (a status filter): not a row of this page.
  if (!matches(record)) return removeRow(record.id);
  if (!shown && paged) return;
  // Older than every row of a full page: it belongs to a later page.
  const last = /** @type {HTMLElement | null} */ (list.lastElementChild);
  if (!shown && last && list.children.length >= limit && !createdBefore(last, record)) return;
  records.set(record.id, record);
  const row = rowFor(record);
  if (!shown) {
    // Newest first: before the first row created earlier than this one, found from the top, where a new
    // deployment belongs.
    let next = /** @type {HTMLElement | null} */ (list.firstElementChild);
    while (next !== null && !createdBefore(next, record)) {
      next = /** @type {HTMLElement | null} */ (next.nextElementSibling);
    }
    list.insertBefore(row, next);
    flash(row);
    // The page keeps its length: the oldest row goes to the next page, which "Older" now starts after it.
    if (list.children.length > limit) {
      while (list.children.length > limit) {
        removeRow(/** @type {HTMLElement} */ (list.lastElementChild).dataset.id ?? "");
      }
      setOlder();
    }
  }
}

/**
 * True when the row was created before `record` (ids break ties, as the server orders them).
 * @param {HTMLElement} row
 * @param {Deployment} record
 */
function createdBefore(row, record) {
  const created = row.dataset.created ?? "";
  return created < record.createdAt || (created === record.createdAt && (row.dataset.id ?? "") < record.id);
}

/** @param {Deployment} record */
function matches(record) {
  return (filter.target === null || record.target === filter.target) &&
    (filter.status === null || record.status === filter.status);
}

/** @param {string} id */
function removeRow(id) {
  rows.get(id)?.remove();
  rows.delete(id);
  records.delete(id);
}

/** Points "Older" after the last row shown: rows came in at the top and pushed some on to the next page. */
function setOlder() {
  const last = /** @type {HTMLElement | null} */ (list.lastElementChild);
  if (!older || !last) return;
  const next = new URLSearchParams(location.search);
  next.set("before", `${last.dataset.created}_${last.dataset.id}`);
  older.href = `/?${next}`;
  older.hidden = false;
}

/**
 * Finds or makes the row of `record` and brings it up to date.
 * @param {Deployment} record
 * @returns {HTMLElement}
 */
function rowFor(record) {
  const row = rows.get(record.id) ?? createRow(record);
  const previous = row.dataset.status;
  row.dataset.status = record.status;
  const badge = /** @type {HTMLElement} */ (row.querySelector(".badge"));
  badge.className = `badge status-${record.status}`;
  badge.textContent = record.status;
  renderInstance(row, record.instance);
  setText(/** @type {HTMLElement} */ (row.querySelector(".by")), record.startedBy ?? "");
  renderTime(/** @type {HTMLTimeElement} */ (row.querySelector("time")), record);
  renderDuration(row, record);
  if (previous !== undefined && previous !== record.status) flash(row);
  return row;
}

/**
 * The same markup as the server's rows; what never changes (id, target, parameters) is written once.
 * @param {Deployment} record
 */
function createRow(record) {
  const row = document.createElement("li");
  row.dataset.id = record.id;
  row.dataset.target = record.target;
  row.dataset.created = record.createdAt;
  const link = document.createElement("a");
  link.href = `/deployment/${encodeURIComponent(record.id)}`;
  const code = document.createElement("code");
  code.textContent = shortId(record.id);
  link.append(code);
  const target = span("target", record.target);
  const params = span("params", "");
  setParams(params, paramsText(record.params));
  const by = span("by", "");
  const badge = span("badge", "");
  const time = document.createElement("time");
  const duration = span("duration", "");
  // Not announced: it changes every second while the deployment runs, inside the list's live region.
  duration.setAttribute("aria-live", "off");
  row.append(link, " ", target, " ", params, " ", by, " ", badge, " ", time, " ", duration);
  rows.set(record.id, row);
  return row;
}

/**
 * Brings `record`'s target card up to date: its latest deployment when `record` is (or is newer than what it
 * shows), its deployed one when `record` succeeded and is newer than that; the same markup as the server's.
 * @param {Deployment} record
 */
function renderCard(record) {
  const card = cards.get(record.target);
  const latest = /** @type {HTMLElement | null} */ (card?.querySelector(".card-latest") ?? null);
  const deployed = /** @type {HTMLElement | null} */ (card?.querySelector(".card-deployed") ?? null);
  if (!card || !latest || !deployed) return;
  if (isNewest(latest, record)) renderCardLine(card, latest, record, { badge: true });
  if (record.status === "succeeded" && isNewest(deployed, record)) {
    renderCardLine(card, deployed, record, { badge: false });
  }
  // Deployed says what the latest does not: hidden when they are one.
  const deployedId = deployed.querySelector("a[data-id]")?.getAttribute("data-id");
  deployed.hidden = !deployedId || deployedId === latest.querySelector("a[data-id]")?.getAttribute("data-id");
}

/**
 * True when `record` is the deployment `line` shows, or newer (created later; the id breaks a tie).
 * @param {HTMLElement} line
 * @param {Deployment} record
 */
function isNewest(line, record) {
  const shown = /** @type {HTMLAnchorElement | null} */ (line.querySelector("a[data-id]"));
  if (!shown || shown.dataset.id === record.id) return true;
  const created = shown.dataset.created ?? "";
  return created < record.createdAt || (created === record.createdAt && (shown.dataset.id ?? "") < record.id);
}

/**
 * Writes `record` into a card's line: the latest (with its status badge) or the deployed one.
 * @param {HTMLElement} card
 * @param {HTMLElement} line
 * @param {Deployment} record
 * @param {{badge: boolean}} options
 */
function renderCardLine(card, line, record, { badge }) {
  const shown = /** @type {HTMLAnchorElement | null} */ (line.querySelector("a[data-id]"));
  if (!shown || shown.dataset.id !== record.id) {
    const link = document.createElement("a");
    link.href = `/deployment/${encodeURIComponent(record.id)}`;
    link.dataset.id = record.id;
    link.dataset.created = record.createdAt;
    if (badge) link.append(span("badge", ""), " ");
    link.append(span("version", ""));
    // The deployed line keeps its label.
    line.replaceChildren(
      ...badge ? [] : ["Deployed: "],
      link,
      " ",
      span("by", ""),
      " ",
      document.createElement("time"),
    );
  }
  const status = /** @type {HTMLElement | null} */ (line.querySelector(".badge"));
  if (status) {
    status.className = `badge status-${record.status}`;
    setText(status, record.status);
  }
  const param = card.dataset.versionParam;
  // Own keys only: a parameter may be named `constructor`.
  const version = param !== undefined && Object.hasOwn(record.params, param)
    ? record.params[param]
    : paramsText(record.params);
  setParams(/** @type {HTMLElement} */ (line.querySelector(".version")), version);
  setText(/** @type {HTMLElement} */ (line.querySelector(".by")), record.startedBy ?? "");
  renderTime(/** @type {HTMLTimeElement} */ (line.querySelector("time")), record);
}

/**
 * @param {string} className
 * @param {string} text
 */
function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

/**
 * @param {HTMLElement} element
 * @param {string} text
 */
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/**
 * Every parameter as `name=value`, space-separated, as the server writes them.
 * @param {Record<string, string> | undefined} params
 */
function paramsText(params) {
  return Object.entries(params ?? {}).map(([name, value]) => `${name}=${value}`).join(" ");
}

/**
 * Parameters text, cut as the server cuts it, with more of it in the tooltip.
 * @param {HTMLElement} element
 * @param {string} text
 */
function setParams(element, text) {
  const cut = text.length > SHORT_PARAMS;
  setText(element, cut ? `${text.slice(0, SHORT_PARAMS)}…` : text);
  if (cut) element.title = text.length > LONG_PARAMS ? `${text.slice(0, LONG_PARAMS)}…` : text;
  else element.removeAttribute("title");
}

/**
 * @param {HTMLTimeElement} time
 * @param {Deployment} record
 */
function renderTime(time, record) {
  time.dateTime = record.startedAt ?? record.createdAt;
  setText(time, formatTime(time.dateTime, Date.now()));
  time.title = new Date(time.dateTime).toLocaleString();
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

/** Server rows and cards say times in UTC; say them in the reader's time zone until the stream sends records. */
function localizeServerTimes() {
  for (const time of document.querySelectorAll("main time")) {
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
