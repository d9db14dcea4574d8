/**
 * @module
 * The live view of one deployment (`/deployment/<id>`). It subscribes to `/events/<id>`: `status` events drive
 * the header (badge, elapsed time, details, Cancel and Run again, title), log lines (`id: N`, `data: text`) go to the log, and `done`
 * ends the stream. Lines are queued and drawn once per animation frame within a time budget, in chunks the
 * browser may skip rendering while off screen, so a 100,000-line log does not freeze the tab. Line numbers come
 * from the event ids; a line at or below the last one shown is a duplicate (a resumed stream) and is dropped.
 * Cancel asks first, in a modal dialog whose safe answer has the focus. Log text reaches the DOM only through
 * text nodes and `textContent`.
 */

import { parseAnsi } from "./ansi.js";
import { showDetails } from "./details.js";
import { elapsedMilliseconds, formatDuration, formatTime, isFinal, shortId } from "./format.js";
import { parseProgress } from "./progress.js";

/** Lines per chunk element; chunks off screen are skipped by `content-visibility: auto`. */
const CHUNK_LINES = 500;
/** Time per frame spent drawing lines, so input and scrolling stay responsive while a large log arrives. */
const FRAME_BUDGET_MS = 10;
/** How close to the bottom (in pixels) still counts as "at the bottom" for follow mode. */
const FOLLOW_SLACK_PX = 32;
/** Backoff when the stream failed for good (non-200 answer, e.g. a restarting server): 1 s doubling to 30 s. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** What the connection says while the server cannot reach the store that its cluster shares. */
const UNAVAILABLE = "Reconnecting… (the server cannot reach its store)";

const TITLE_MARK = {
  queued: "\u25cb", // ○
  running: "\u25b6", // ▶
  succeeded: "\u2714", // ✔
  failed: "\u2716", // ✖
  cancelled: "\u25a0", // ■
  interrupted: "\u26a0", // ⚠
};

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`Missing element #${id}`);
  return element;
}

const elements = {
  cancel: /** @type {HTMLButtonElement} */ ($("cancel")),
  cancelDialog: /** @type {HTMLDialogElement} */ ($("cancel-dialog")),
  runAgain: /** @type {HTMLFormElement} */ ($("run-again")),
  status: $("status"),
  startedFact: $("started-fact"),
  started: /** @type {HTMLTimeElement} */ ($("started")),
  instanceFact: $("instance-fact"),
  instance: $("instance"),
  elapsed: $("elapsed"),
  elapsedLabel: $("elapsed-label"),
  exitFact: $("exit-fact"),
  exitCode: $("exit-code"),
  connection: $("connection"),
  reason: $("reason"),
  progress: $("progress"),
  progressFill: /** @type {HTMLElement} */ ($("progress").firstElementChild),
  progressLabel: $("progress-label"),
  message: $("message"),
  lineCount: $("line-count"),
  followState: $("follow-state"),
  log: $("log"),
  jump: /** @type {HTMLButtonElement} */ ($("jump")),
};

const deploymentId = decodeURIComponent(location.pathname.split("/").filter(Boolean).at(-1) ?? "");

/**
 * @typedef {object} Deployment
 * @property {string} id
 * @property {string} status
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 * @property {number | null} exitCode
 * @property {string | null} reason
 * @property {string | null} [instance] In a cluster, the instance that runs or ran it.
 * @property {string} [target]
 * @property {Record<string, string>} [params]
 * @property {string | null} [startedBy]
 * @property {string | null} [cancelledBy]
 * @property {string | null} [rerunOf]
 */

const view = {
  /** @type {Deployment | null} */
  deployment: null,
  /** The highest line number received; anything at or below it is a duplicate. */
  lastLine: 0,
  /** The highest line number drawn. */
  drawnLine: 0,
  /** How many lines are drawn (line numbers may skip if the log was cut, so this is counted). */
  drawnCount: 0,
  /** @type {Array<[number, string]>} Lines received and not drawn yet. */
  pending: [],
  /** Index of the next pending line to draw, so a large backlog is not shifted one line at a time. */
  pendingStart: 0,
  frameRequested: false,
  /** @type {HTMLElement | null} The chunk new lines go into. */
  chunk: null,
  following: true,
  /** The log's scroll position after the last scroll: moving up from it is the reader's doing. */
  scrollTop: 0,
  /** @type {import("./progress.js").Progress | null} */
  progress: null,
  /** @type {EventSource | null} */
  source: null,
  ended: false,
  retryDelay: RETRY_MIN_MS,
  /** Reconnections made after the deployment was known to be over; a second failure then means "nothing left". */
  retriesAfterEnd: 0,
  /** The server said it cannot reach its store: its stream ends, and EventSource comes back after a while. */
  unavailable: false,
  /** @type {number | undefined} */
  ticker: undefined,
  /** The line named by `#L<n>` that has not arrived yet. @type {number | null} */
  awaitedLine: null,
  /** @type {HTMLElement | null} */
  highlighted: null,
};

init();

function init() {
  elements.log.addEventListener("scroll", onScroll, { passive: true });
  elements.log.addEventListener("click", onLogClick);
  elements.jump.addEventListener("click", () => {
    // The button hides itself: focus goes to the log it jumped in, not to the page's start.
    elements.log.focus({ preventScroll: true });
    setFollowing(true);
    scrollToBottom();
  });
  elements.cancel.addEventListener("click", askToCancel);
  elements.cancelDialog.addEventListener("close", () => {
    if (elements.cancelDialog.returnValue === "cancel") cancelDeployment();
  });
  globalThis.addEventListener("hashchange", () => {
    const line = lineFromHash();
    if (line !== null) selectLine(line, true);
  });

  const line = lineFromHash();
  if (line !== null) {
    view.awaitedLine = line;
    setFollowing(false);
  }
  connect();
}

// ---------------------------------------------------------------------------------------------------------------
// The stream

function connect() {
  const base = `/events/${encodeURIComponent(deploymentId)}`;
  // EventSource resumes by itself (Last-Event-ID) while it is reconnecting; a new one must say where to resume.
  const url = view.lastLine > 0 ? `${base}?lastEventId=${view.lastLine}` : base;
  const source = new EventSource(url);
  view.source = source;
  setConnection("connecting", "Connecting…");

  source.addEventListener("open", () => {
    view.retryDelay = RETRY_MIN_MS;
  });
  // Live once the first status arrives, not at `open`: a server that cannot reach its store opens, says so, and
  // ends, and EventSource resumes after the delay it was given (Last-Event-ID), as after any end of the stream.
  source.addEventListener("unavailable", (event) => {
    view.unavailable = true;
    setConnection("reconnecting", UNAVAILABLE, event.data);
    // "No output yet" would be wrong: the lines there are cannot be read now.
    if (view.drawnCount === 0) elements.lineCount.textContent = "Output not available yet";
  });
  source.addEventListener("message", (event) => receiveLine(event));
  // The log was truncated, replaced or deleted: the server ends the stream and the reconnection (resuming
  // after id 0) replays the new log from line 1, so what is shown goes.
  source.addEventListener("reset", () => clearLog());
  source.addEventListener("status", (event) => {
    if (elements.connection.dataset.state !== "live") {
      view.unavailable = false;
      setConnection("live", "Live");
    }
    const record = parseJson(event.data);
    if (record) applyDeployment(record);
  });
  source.addEventListener("done", (event) => {
    source.close();
    finish(parseJson(event.data));
  });
  source.addEventListener("error", () => {
    if (view.ended || view.source !== source) return;
    if (source.readyState === EventSource.CONNECTING) {
      if (!view.unavailable) setConnection("reconnecting", "Reconnecting…");
    } else {
      source.close();
      retryLater();
    }
  });
}

/** @param {MessageEvent} event */
function receiveLine(event) {
  const number = Number(event.lastEventId);
  if (!Number.isSafeInteger(number) || number <= view.lastLine) return;
  view.lastLine = number;
  // A CR inside a line (a terminal progress overwrite) arrives as LF: show what a terminal would end with.
  const parts = event.data.split("\n");
  let text = parts[parts.length - 1];
  for (let i = parts.length - 1; i >= 0 && text === ""; i--) text = parts[i];
  view.pending.push([number, text]);
  requestDraw();
}

function clearLog() {
  elements.log.replaceChildren();
  Object.assign(view, {
    lastLine: 0,
    drawnLine: 0,
    drawnCount: 0,
    pending: [],
    pendingStart: 0,
    chunk: null,
    progress: null,
    highlighted: null,
  });
  elements.lineCount.textContent = "0 lines";
  renderProgress();
}

/** The stream failed for good: ask whether the deployment still exists, then reconnect after a backoff. */
function retryLater() {
  const delay = view.retryDelay * (0.8 + Math.random() * 0.4);
  view.retryDelay = Math.min(view.retryDelay * 2, RETRY_MAX_MS);
  setConnection("reconnecting", `Reconnecting in ${Math.round(delay / 1000)}s…`);
  setTimeout(async () => {
    if (view.ended) return;
    try {
      const response = await fetch(`/api/deployments/${encodeURIComponent(deploymentId)}`, {
        headers: { accept: "application/json" },
      });
      // Signed out (the token changed): reloading shows the sign-in form, which comes back here after.
      if (response.status === 401) return location.reload();
      if (response.status === 404) {
        showMessage("This deployment does not exist (any more).");
        view.awaitedLine = null; // that message says it all; no second one about a line
        finish(null);
        return;
      }
      if (response.ok) {
        const record = await response.json();
        applyDeployment(record);
        // Once the deployment is over, the server answers a resume past its last line with 204, which
        // EventSource reports as a failure: one reconnection fetches any lines we missed, a second means none.
        if (isFinal(record.status) && view.retriesAfterEnd++ >= 1) {
          finish({ status: record.status, exitCode: record.exitCode });
          return;
        }
      }
    } catch {
      // The server is unreachable; try the stream again anyway, with a longer wait next time.
    }
    connect();
  }, delay);
}

/** @param {{status?: string, exitCode?: number | null} | null} result */
async function finish(result) {
  view.ended = true;
  setConnection("ended", "Ended");
  reportMissingLine();
  if (result?.status && view.deployment && view.deployment.status !== result.status) {
    applyDeployment({ ...view.deployment, status: result.status, exitCode: result.exitCode ?? null });
  }
  // The `status` event normally carries the final record; fetch it when times are still missing.
  if (view.deployment && !view.deployment.finishedAt) {
    try {
      const response = await fetch(`/api/deployments/${encodeURIComponent(deploymentId)}`);
      if (response.ok) applyDeployment(await response.json());
    } catch {
      // Keep what we have.
    }
  }
}

/**
 * @param {"connecting" | "live" | "reconnecting" | "ended"} state
 * @param {string} text
 * @param {string} [detail] Shown on hover: the server's reason.
 */
function setConnection(state, text, detail = "") {
  elements.connection.dataset.state = state;
  elements.connection.textContent = text;
  elements.connection.title = detail;
}

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The header

/** @param {Deployment} record */
function applyDeployment(record) {
  view.deployment = record;
  const { status } = record;
  const final = isFinal(status);

  elements.status.textContent = status;
  elements.status.className = `badge status-${status}`;
  document.title = `${TITLE_MARK[/** @type {keyof TITLE_MARK} */ (status)] ?? ""} ${capitalize(status)} · ` +
    `${shortId(record.id ?? deploymentId)} · shiplog`;
  document.body.dataset.status = status;

  elements.cancel.hidden = final;
  if (final && elements.cancelDialog.open) {
    // Ended meanwhile: nothing is left to cancel (closed without an answer, so nothing is sent), and the button
    // that focus would go back to is hidden.
    elements.cancelDialog.close("");
    elements.log.focus({ preventScroll: true });
  }
  elements.runAgain.hidden = !final;
  showDetails(record);
  elements.reason.hidden = !record.reason;
  elements.reason.textContent = record.reason ?? "";
  elements.startedFact.hidden = !record.startedAt;
  if (record.startedAt && elements.started.dateTime !== record.startedAt) {
    elements.started.dateTime = record.startedAt;
    elements.started.textContent = formatTime(record.startedAt, Date.now());
    elements.started.title = new Date(record.startedAt).toLocaleString();
  }
  elements.instanceFact.hidden = !record.instance;
  elements.instance.textContent = record.instance ?? "";
  elements.exitFact.hidden = record.exitCode === null || record.exitCode === undefined;
  elements.exitCode.textContent = String(record.exitCode ?? "");

  renderElapsed();
  if (final) {
    clearInterval(view.ticker);
    view.ticker = undefined;
  } else if (view.ticker === undefined) {
    view.ticker = setInterval(renderElapsed, 1000);
  }
  renderProgress();
}

function renderElapsed() {
  const record = view.deployment;
  if (!record) return;
  const label = record.status === "queued" ? "Waiting" : isFinal(record.status) ? "Took" : "Elapsed";
  elements.elapsedLabel.textContent = label;
  const elapsed = elapsedMilliseconds(record, Date.now());
  elements.elapsed.textContent = elapsed === null ? "–" : formatDuration(elapsed);
}

function renderProgress() {
  const bar = elements.progress;
  const status = view.deployment?.status ?? "queued";
  const progress = view.progress;
  let state = status;
  let fraction = 0;
  let label;
  if (status === "succeeded") {
    fraction = 1;
    label = progress ? `Done: ${progress.total} of ${progress.total} steps` : "Done";
  } else if (progress) {
    fraction = progress.step / progress.total;
    label = `Step ${progress.step} of ${progress.total}${progress.label ? `: ${progress.label}` : ""}`;
  } else if (status === "running") {
    state = "indeterminate";
    label = "Working…";
  } else {
    label = status === "queued" ? "Waiting to start" : "No steps reported";
  }
  bar.dataset.state = state;
  if (state === "indeterminate") {
    bar.removeAttribute("aria-valuenow");
    bar.setAttribute("aria-valuemax", "1");
  } else {
    const total = progress?.total ?? 1;
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuenow", String(Math.round(fraction * total)));
  }
  bar.setAttribute("aria-valuetext", label);
  elements.progressFill.style.width = state === "indeterminate" ? "" : `${(fraction * 100).toFixed(2)}%`;
  elements.progressLabel.textContent = label;
}

/** Opens the confirmation; its answer arrives as the dialog's `close` event. */
function askToCancel() {
  elements.cancelDialog.returnValue = "";
  elements.cancelDialog.showModal();
}

async function cancelDeployment() {
  const button = elements.cancel;
  // Disabled, then hidden once the deployment ends: focus goes to the log rather than to the page's start.
  if (document.activeElement === button) elements.log.focus({ preventScroll: true });
  button.disabled = true;
  button.textContent = "Cancelling…";
  hideMessage();
  try {
    const url = `/api/deployments/${encodeURIComponent(deploymentId)}/cancel`;
    const response = await fetch(url, { method: "POST", headers: { accept: "application/json" } });
    if (response.ok) {
      applyDeployment(await response.json());
    } else if (response.status === 409) {
      // It ended on its own meanwhile; the stream brings the final status.
      const current = await fetch(`/api/deployments/${encodeURIComponent(deploymentId)}`);
      if (current.ok) applyDeployment(await current.json());
    } else {
      showMessage(`Could not cancel: the server answered ${response.status} ${response.statusText}.`);
    }
  } catch {
    showMessage("Could not cancel: the server is unreachable.");
  } finally {
    button.disabled = false;
    button.textContent = "Cancel";
  }
}

/** @param {string} text */
function showMessage(text) {
  elements.message.textContent = text;
  elements.message.hidden = false;
}

function hideMessage() {
  elements.message.hidden = true;
}

/** @param {string} text */
function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------------------------------------------------------
// The log

function requestDraw() {
  if (view.frameRequested) return;
  view.frameRequested = true;
  requestAnimationFrame(draw);
}

function draw() {
  view.frameRequested = false;
  const started = performance.now();
  const log = elements.log;
  const before = view.drawnLine;
  while (view.pendingStart < view.pending.length) {
    let chunk = view.chunk;
    if (chunk === null || chunk.childElementCount >= CHUNK_LINES) {
      chunk = document.createElement("div");
      chunk.className = "chunk";
      log.append(chunk);
      view.chunk = chunk;
    }
    const fragment = document.createDocumentFragment();
    const room = CHUNK_LINES - chunk.childElementCount;
    let overBudget = false;
    for (let i = 0; i < room && view.pendingStart < view.pending.length; i++) {
      const [number, text] = view.pending[view.pendingStart++];
      fragment.append(renderLine(number, text));
      view.drawnLine = number;
      view.drawnCount++;
      if (i % 64 === 63 && performance.now() - started > FRAME_BUDGET_MS) {
        overBudget = true;
        break;
      }
    }
    chunk.append(fragment);
    if (overBudget || performance.now() - started > FRAME_BUDGET_MS) break;
  }
  if (view.pendingStart >= view.pending.length) {
    view.pending = [];
    view.pendingStart = 0;
  } else {
    requestDraw();
  }
  reportMissingLine();
  if (view.drawnLine === before) return;

  // Only on a change: setting it restyles every line.
  const digits = String(String(view.drawnLine).length);
  if (log.style.getPropertyValue("--line-digits") !== digits) log.style.setProperty("--line-digits", digits);
  elements.lineCount.textContent = linesText(view.drawnCount);
  renderProgress();
  if (view.awaitedLine !== null && view.awaitedLine <= view.drawnLine) {
    const line = view.awaitedLine;
    view.awaitedLine = null;
    selectLine(line, true);
  } else if (view.following) {
    scrollToBottom();
  } else {
    elements.jump.hidden = false;
  }
}

/** Once the whole log is drawn, a line that `#L<n>` asked for and never came is said to be missing. */
function reportMissingLine() {
  const line = view.awaitedLine;
  if (line === null || line <= view.drawnLine || !view.ended || view.pendingStart < view.pending.length) {
    return;
  }
  view.awaitedLine = null;
  showMessage(`There is no line ${line.toLocaleString()}: this log has ${linesText(view.drawnCount)}.`);
}

/** `1 line`, `2,500 lines`. @param {number} count */
function linesText(count) {
  return `${count.toLocaleString()} ${count === 1 ? "line" : "lines"}`;
}

/**
 * @param {number} number
 * @param {string} text
 */
function renderLine(number, text) {
  const row = document.createElement("div");
  row.className = "line";
  row.id = `L${number}`;
  const link = document.createElement("a");
  link.className = "ln";
  link.href = `#L${number}`;
  // Clickable, but not a Tab stop each: Tab goes past the log in one step, not through every line of it.
  link.tabIndex = -1;
  link.dataset.line = String(number);
  const content = document.createElement("span");
  content.className = "text";
  let plain = "";
  for (const segment of parseAnsi(text)) {
    plain += segment.text;
    if (segment.classes.length === 0 && !segment.style.color && !segment.style.backgroundColor) {
      content.append(document.createTextNode(segment.text));
      continue;
    }
    const span = document.createElement("span");
    span.className = segment.classes.join(" ");
    if (segment.style.color) span.style.color = segment.style.color;
    if (segment.style.backgroundColor) span.style.backgroundColor = segment.style.backgroundColor;
    span.textContent = segment.text;
    content.append(span);
  }
  // An empty line copies as nothing at all: a line break keeps the blank lines of copied text.
  if (plain === "") content.append(document.createElement("br"));
  const progress = parseProgress(plain);
  if (progress) view.progress = progress;
  row.append(link, content);
  return row;
}

/**
 * Reaching the end follows it; moving up from it pauses. Content that grows under the view (a chunk laid out
 * taller than estimated, lines wrapping) scrolls without moving up: while following, that goes back to the end.
 */
function onScroll() {
  const log = elements.log;
  const top = log.scrollTop;
  const movedUp = top < view.scrollTop;
  view.scrollTop = top;
  const atBottom = log.scrollHeight - top - log.clientHeight <= FOLLOW_SLACK_PX;
  if (atBottom) {
    if (!view.following) setFollowing(true);
  } else if (view.following) {
    if (movedUp) setFollowing(false);
    else scrollToBottom();
  }
}

/** @param {boolean} following */
function setFollowing(following) {
  view.following = following;
  elements.jump.hidden = following || view.drawnLine === 0;
  elements.followState.textContent = following ? "Following" : "Paused";
  elements.followState.dataset.following = String(following);
}

function scrollToBottom() {
  const log = elements.log;
  log.scrollTop = log.scrollHeight;
  view.scrollTop = log.scrollTop;
}

/** @param {MouseEvent} event */
function onLogClick(event) {
  const link = /** @type {Element} */ (event.target).closest("a.ln");
  if (!(link instanceof HTMLAnchorElement) || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  // Select the line without the browser's jump to it: the reader clicked it, so it is already in view.
  event.preventDefault();
  const line = Number(link.dataset.line);
  history.replaceState(null, "", `#L${line}`);
  selectLine(line, false);
}

/** @returns {number | null} */
function lineFromHash() {
  const match = /^#L(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

/**
 * Highlights line `number`; scrolls to it when asked. A line that has not arrived yet is selected when it does.
 * @param {number} number
 * @param {boolean} scroll
 */
function selectLine(number, scroll) {
  view.highlighted?.classList.remove("highlight");
  view.highlighted = null;
  const row = document.getElementById(`L${number}`);
  if (row === null) {
    view.awaitedLine = number;
    reportMissingLine(); // at once, if the log is complete already
    return;
  }
  row.classList.add("highlight");
  view.highlighted = row;
  setFollowing(false);
  if (scroll) row.scrollIntoView({ block: "center" });
}
