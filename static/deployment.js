/**
 * @module
 * The live view of one deployment (`/deployment/<id>`): the header (badge, elapsed time, details, the steps
 * and the progress bar, Cancel and Run again, the title and the tab's icon) and the log panel. Lines and
 * statuses come from {@linkcode LogFeed} (the history in bulk, then live); the log panel ({@linkcode LogPanel})
 * holds, folds, searches and draws them. Cancel asks first, in a modal dialog whose safe answer has the focus.
 */

import { showDetails } from "./details.js";
import { showStatusIcon } from "./favicon.js";
import { elapsedMilliseconds, formatDuration, formatTime, isFinal, shortId } from "./format.js";
import { LogFeed } from "./log_feed.js";
import { LogPanel } from "./log_panel.js";
import { showSteps } from "./step_summary.js";

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
  steps: $("steps"),
  progress: $("progress"),
  progressFill: /** @type {HTMLElement} */ ($("progress").firstElementChild),
  progressLabel: $("progress-label"),
  message: $("message"),
  lineCount: $("line-count"),
  log: $("log"),
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
  ended: false,
  /** @type {number | undefined} */
  ticker: undefined,
  /** @type {number | undefined} A redraw of the steps and progress is due (lines arrive in many batches). */
  stepsTimer: undefined,
};

const panel = new LogPanel({ deploymentId, showMessage, hideMessage });

const feed = new LogFeed(deploymentId, {
  lines(batch) {
    panel.append(batch);
    scheduleSteps();
  },
  record: (record) => applyDeployment(record),
  done: (result) => finish(result),
  historyLoaded() {
    panel.historyLoaded();
    renderProgress();
  },
  reset() {
    panel.clear();
    renderProgress();
  },
  connection: (state, text, detail) => setConnection(state, text, detail),
  unavailable(detail) {
    setConnection("reconnecting", UNAVAILABLE, detail);
    // "No output yet" would be wrong: the lines there are cannot be read now.
    if (panel.lines.count === 0) elements.lineCount.textContent = "Output not available yet";
  },
  gone() {
    showMessage("This deployment does not exist (any more).");
    panel.forgetAwaitedLine(); // that message says it all; no second one about a line
    finish(null);
  },
});

init();

function init() {
  elements.cancel.addEventListener("click", askToCancel);
  elements.steps.addEventListener("click", followStepLink);
  elements.cancelDialog.addEventListener("close", () => {
    if (elements.cancelDialog.returnValue === "cancel") cancelDeployment();
  });
  feed.start();
}

/** @param {{status?: string, exitCode?: number | null} | null} result */
async function finish(result) {
  if (view.ended) return;
  view.ended = true;
  feed.stop();
  setConnection("ended", "Ended");
  panel.complete();
  // Every line is in: the steps and the bar say where it ended now, not at the next redraw.
  clearTimeout(view.stepsTimer);
  view.stepsTimer = undefined;
  renderProgress();
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
  if (view.ended && state !== "ended") return;
  elements.connection.dataset.state = state;
  elements.connection.textContent = text;
  elements.connection.title = detail;
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
  showStatusIcon(status);
  panel.setDeployment(record);

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
    view.ticker = setInterval(() => {
      renderElapsed();
      renderProgress(); // the running step's duration
      panel.refreshRunning(); // and in the log, its header
    }, 1000);
  }
  renderProgress();
}

function renderElapsed() {
  const record = view.deployment;
  if (!record) return;
  // A deployment that ended before it started (cancelled while queued) waited; it took nothing.
  const label = record.status === "queued" || (isFinal(record.status) && !record.startedAt)
    ? "Waited"
    : isFinal(record.status)
    ? "Took"
    : "Elapsed";
  elements.elapsedLabel.textContent = label;
  const elapsed = elapsedMilliseconds(record, Date.now());
  elements.elapsed.textContent = elapsed === null ? "–" : formatDuration(elapsed);
}

/** The steps and the progress bar, at most every 200 ms while lines pour in. */
function scheduleSteps() {
  view.stepsTimer ??= setTimeout(() => {
    view.stepsTimer = undefined;
    renderProgress();
  }, 200);
}

/**
 * The bar counts finished steps: while step 4 of 8 runs it shows 3 of 8; a deployment that failed in step 4
 * of 5 shows 3 of 5 in red.
 */
function renderProgress() {
  const bar = elements.progress;
  const status = view.deployment?.status ?? "queued";
  const sections = panel.sections;
  const progress = sections.progress();
  const current = sections.currentStep;
  // Until the last line of an ended deployment is read, where it ended is not known: no step is called failed
  // (or the rest not reached) too soon.
  const reading = panel.loading && isFinal(status);
  showSteps(elements.steps, reading ? [] : sections.summary(Date.now()));
  let state = status;
  let fraction = 0;
  let label;
  if (reading) {
    state = "indeterminate";
    label = "Reading the log…";
  } else if (status === "succeeded") {
    fraction = 1;
    label = progress ? `Done: ${progress.total} of ${progress.total} steps` : "Done";
  } else if (progress && current) {
    fraction = progress.finished / progress.total;
    const step = `step ${current.step} of ${current.total}${current.title ? `: ${current.title}` : ""}`;
    label = isFinal(status)
      ? `${capitalize(status)} in ${step}`
      : `${progress.finished} of ${progress.total} done; ${step}`;
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

/**
 * A step's link goes to its first line, also when the address already ends in that `#L<n>` (the browser then
 * fires no `hashchange`) and when the reader has scrolled away from it since.
 * @param {MouseEvent} event
 */
function followStepLink(event) {
  const link = /** @type {Element} */ (event.target).closest("a[href^='#L']");
  if (
    !(link instanceof HTMLAnchorElement) || event.button !== 0 || event.metaKey || event.ctrlKey ||
    event.shiftKey || event.altKey
  ) {
    return;
  }
  event.preventDefault();
  const hash = link.getAttribute("href") ?? "";
  if (location.hash !== hash) history.pushState(null, "", hash);
  panel.selectLine(Number(hash.slice(2)), true);
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
  panel.forgetMissingLine();
}

/** @param {string} text */
function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
