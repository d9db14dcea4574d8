/**
 * @module
 * The log panel of a deployment's page: it joins the log model (lines, steps and groups, search) to the
 * virtualised view and to the panel's controls — the search box (`/` focuses it, Escape leaves it, Enter and
 * Shift+Enter or the buttons move between matches, "3 of 17"), "Only matching lines", "Wrap lines" and
 * "Timestamps" (both remembered), the Download links, the line count, follow and "Jump to latest", and `#L<n>`
 * (a line inside a folded step opens it). A match or a linked line inside a folded section opens it.
 */

import { isFinal } from "./format.js";
import { LogLines } from "./log_lines.js";
import { LogSearch } from "./log_search.js";
import { LogSections } from "./log_sections.js";
import { LogView } from "./log_view.js";
import { readSwitch, writeSwitch } from "./preferences.js";

/** How long typing may pause before the log is searched. */
const SEARCH_DELAY_MS = 80;

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`Missing element #${id}`);
  return element;
}

/**
 * @typedef {object} LogPanelOptions
 * @property {string} deploymentId
 * @property {(text: string) => void} showMessage Says something in the page's message area.
 * @property {() => void} hideMessage Empties it.
 */

export class LogPanel {
  lines = new LogLines();
  sections = new LogSections(this.lines);
  search = new LogSearch(this.lines, this.sections);
  #options;
  #elements = {
    log: $("log"),
    empty: $("log-empty"),
    lineCount: $("line-count"),
    followState: $("follow-state"),
    jump: /** @type {HTMLButtonElement} */ ($("jump")),
    searchInput: /** @type {HTMLInputElement} */ ($("search-input")),
    searchCount: $("search-count"),
    searchStatus: $("search-status"),
    previous: /** @type {HTMLButtonElement} */ ($("search-previous")),
    next: /** @type {HTMLButtonElement} */ ($("search-next")),
    onlyMatching: /** @type {HTMLInputElement} */ ($("only-matching")),
    wrap: /** @type {HTMLInputElement} */ ($("wrap")),
    timestamps: /** @type {HTMLInputElement} */ ($("timestamps")),
    download: /** @type {HTMLAnchorElement} */ ($("download-log")),
    downloadPlain: /** @type {HTMLAnchorElement} */ ($("download-plain")),
  };
  /** @type {LogView} */
  view;
  /** The line index `#L<n>` selected, -1 for none. */
  #highlighted = -1;
  /** The line named by `#L<n>` that has not arrived yet. @type {number | null} */
  #awaitedLine = null;
  /** The deployment is over and every line is in. */
  #complete = false;
  /** The history is loading: the last step read so far may not be the last there is. */
  #loading = true;
  /** @type {{status: string, startedAt: string | null, finishedAt: string | null} | null} The last record. */
  #record = null;
  /** It ended before it started (cancelled while queued): there is no output to wait for. */
  #neverRan = false;
  /** @type {number | undefined} */
  #searchTimer = undefined;
  /** Whether the current match was gone to (a first match that comes with new lines is only marked). */
  #visited = false;
  /** Whether the message area says a line is missing (the next line found takes that back). */
  #saidMissing = false;

  /** @param {LogPanelOptions} options */
  constructor(options) {
    this.#options = options;
    const elements = this.#elements;
    this.view = new LogView(elements.log, {
      context: () => ({
        lines: this.lines,
        sections: this.sections,
        search: this.search,
        timestamps: elements.timestamps.checked,
        startedAt: this.lines.count > 0 ? this.lines.time(0) : 0,
        highlighted: this.#highlighted,
        now: Date.now(),
      }),
      onFollowChange: (following) => this.#showFollowing(following),
      onToggle: (section) => this.#toggle(section),
      onLineClick: (number) => {
        history.replaceState(null, "", `#L${number}`);
        this.selectLine(number, false);
      },
    });
    elements.wrap.checked = readSwitch("wrap", true);
    elements.timestamps.checked = readSwitch("timestamps", false);
    this.view.setWrap(elements.wrap.checked);
    this.#showDownloads();
    elements.wrap.addEventListener("change", () => {
      writeSwitch("wrap", elements.wrap.checked);
      this.view.setWrap(elements.wrap.checked);
    });
    elements.timestamps.addEventListener("change", () => {
      writeSwitch("timestamps", elements.timestamps.checked);
      elements.log.classList.toggle("with-times", elements.timestamps.checked);
      this.#showDownloads();
      this.view.refresh();
    });
    elements.log.classList.toggle("with-times", elements.timestamps.checked);
    elements.jump.addEventListener("click", () => {
      // The button hides itself: focus goes to the log it jumped in, not to the page's start.
      elements.log.focus({ preventScroll: true });
      this.view.setFollowing(true);
    });
    this.#wireSearch();
    globalThis.addEventListener("hashchange", () => {
      const line = lineFromHash();
      if (line !== null) this.selectLine(line, true);
    });
    const line = lineFromHash();
    if (line === 0) this.#reportMissing(0);
    else if (line !== null) {
      this.#awaitedLine = line;
      this.view.setFollowing(false);
    }
    this.#showCount();
  }

  /**
   * Adds lines (history or live).
   * @param {import("./log_lines.js").LineBatch} batch
   */
  append(batch) {
    const before = this.lines.count;
    const reading = this.#sectionsBeingRead();
    if (this.lines.append(batch) === 0) return;
    const changed = this.sections.update();
    for (const section of reading) this.sections.setOpen(section, true);
    const hadMatch = this.search.current >= 0;
    const matched = this.search.extend();
    if (this.#filtering()) {
      const rows = [];
      for (let index = before; index < this.lines.count; index++) {
        if (this.search.in(index).length > 0) rows.push(index);
      }
      this.view.appendRows(rows);
    } else if (changed < before) {
      this.view.spliceRows(changed, this.sections.rowsFrom(changed));
    } else {
      this.view.appendRows(this.sections.rowsFrom(before));
    }
    this.refreshRunning();
    if (matched || this.search.query !== "") this.#showSearchCount();
    if (!hadMatch && this.search.current >= 0) this.#firstMatchArrived();
    this.#showCount();
    if (this.#awaitedLine !== null && this.#awaitedLine <= this.lines.lastNumber) {
      const line = this.#awaitedLine;
      this.#awaitedLine = null;
      this.selectLine(line, true);
    }
  }

  /** Whether the history is still loading. */
  get loading() {
    return this.#loading;
  }

  /** The open sections' first lines say how many lines they have and how long they have taken so far. */
  refreshRunning() {
    for (const section of this.sections.openSections) {
      this.view.refreshLine(this.sections.sections[section].start);
    }
  }

  /** The history is in: from now on lines are live, and the deployment's status applies to its last step. */
  historyLoaded() {
    this.#loading = false;
    if (this.#record !== null) this.#applyStatus(this.#record);
  }

  /**
   * Forgets every line: the log was replaced and comes again from line 1. The search stays, with no matches
   * until the new lines come; a `#L<n>` is looked for in them.
   */
  clear() {
    this.lines.clear();
    this.sections.clear();
    this.sections.status = "running";
    this.sections.endedAt = 0;
    this.search.clear();
    this.#highlighted = -1;
    this.#visited = false;
    this.#loading = true;
    const line = lineFromHash();
    this.#awaitedLine = line !== null && line > 0 ? line : null;
    this.view.clear();
    this.#showSearchCount();
    this.#showCount();
  }

  /**
   * The deployment's record changed: a failed one marks its last step; an ended one gives the last section its
   * end.
   * @param {{status: string, startedAt: string | null, finishedAt: string | null}} record
   */
  setDeployment(record) {
    this.#record = record;
    this.#neverRan = isFinal(record.status) && !record.startedAt;
    this.#showCount();
    // While the history loads, the last step read so far is not (yet) the one a failed deployment failed in.
    if (!this.#loading) this.#applyStatus(record);
  }

  /** @param {{status: string, finishedAt: string | null}} record */
  #applyStatus(record) {
    const sections = this.sections;
    const endedAt = record.finishedAt ? Date.parse(record.finishedAt) || 0 : 0;
    if (sections.status === record.status && sections.endedAt === endedAt) return;
    sections.status = record.status;
    sections.endedAt = endedAt;
    // Filtered, the rows stay the matching lines; a failed step's header among them is marked anew.
    if (this.#filtering()) this.view.refresh();
    else this.view.setRows(sections.rows());
  }

  /** Every line is in (the stream said `done`): a `#L<n>` past the end is said to be missing. */
  complete() {
    this.#complete = true;
    this.#reportMissingLine();
    this.#showCount();
  }

  /**
   * Highlights line `number`; scrolls to it when asked, opening the sections it is in. A line that has not
   * arrived yet is selected when it does.
   * @param {number} number
   * @param {boolean} scroll
   */
  selectLine(number, scroll) {
    const index = this.lines.indexOf(number);
    if (index >= this.lines.count || this.lines.number(index) !== number) {
      this.#highlighted = -1;
      this.view.refresh();
      // Past the last line: it may yet come. Else (line 0, or a line the log no longer holds) it never will.
      if (index >= this.lines.count && number > 0) {
        this.#awaitedLine = number;
        this.#reportMissingLine();
      } else {
        this.#awaitedLine = null;
        this.#reportMissing(number);
      }
      return;
    }
    if (this.#saidMissing) {
      this.#saidMissing = false;
      this.#options.hideMessage();
    }
    this.#highlighted = index;
    this.#bringIntoRows(index);
    this.view.refresh();
    if (scroll) this.view.reveal(index);
    else this.view.setFollowing(false);
  }

  /** The search box, its buttons and keys, and the filter. */
  #wireSearch() {
    const elements = this.#elements;
    elements.searchInput.addEventListener("input", () => {
      clearTimeout(this.#searchTimer);
      this.#searchTimer = setTimeout(() => this.#runSearch(), SEARCH_DELAY_MS);
    });
    elements.searchInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        // Enter before the pause ends searches at once and stays on the first match; after it, moves on.
        const searched = this.#searchTimer !== undefined && this.#runSearch();
        if (!searched) this.#move(event.shiftKey ? -1 : 1);
      } else if (event.key === "Escape") {
        event.preventDefault();
        elements.log.focus({ preventScroll: true });
      }
    });
    elements.next.addEventListener("click", () => this.#move(1));
    elements.previous.addEventListener("click", () => this.#move(-1));
    elements.onlyMatching.addEventListener("change", () => this.#showRows());
    document.addEventListener("keydown", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
      if (
        target.closest("input, textarea, select, [contenteditable]") || document.querySelector("dialog[open]")
      ) {
        return;
      }
      event.preventDefault();
      elements.searchInput.focus();
      elements.searchInput.select();
    });
  }

  /** Searches for what the box holds; returns whether that was a new query. */
  #runSearch() {
    clearTimeout(this.#searchTimer);
    this.#searchTimer = undefined;
    const query = this.#elements.searchInput.value;
    if (query === this.search.query) return false;
    // The first match at or after what is in view.
    this.search.setQuery(query, Math.max(0, this.view.firstVisibleLine));
    this.#visited = false;
    this.#showSearchCount();
    this.#announceSearch();
    if (this.#filtering() || this.#elements.onlyMatching.checked) this.#showRows();
    if (this.search.current >= 0) this.#goToMatch();
    else this.view.refresh();
    return true;
  }

  /** @param {number} step 1 for the next match, -1 for the previous. */
  #move(step) {
    if (this.search.count === 0) return;
    // A match marked but not gone to (it arrived while following) is the first one Enter goes to.
    if (this.#visited) {
      if (step > 0) this.search.next();
      else this.search.previous();
    }
    this.#goToMatch();
    this.#announceSearch();
  }

  #goToMatch() {
    const line = this.search.lineOf(this.search.current);
    this.#visited = true;
    this.#bringIntoRows(line);
    this.#showSearchCount();
    this.view.refresh();
    this.view.reveal(line);
  }

  /**
   * The first match of a search that had none came with new lines (the history still loading, or a live
   * line): it is marked and said; Enter goes to it (not past it).
   */
  #firstMatchArrived() {
    this.view.refresh();
    this.#announceSearch();
  }

  /** Says the count to a screen reader: on the reader's own moves, not each time new lines change it. */
  #announceSearch() {
    this.#elements.searchStatus.textContent = this.#elements.searchCount.textContent ?? "";
  }

  /** Makes line `index` one of the rows: opens the sections it is in. @param {number} index */
  #bringIntoRows(index) {
    if (this.#filtering()) {
      if (this.view.hasRow(index)) return;
      this.#elements.onlyMatching.checked = false;
    }
    const opened = this.sections.reveal(index);
    if (opened || !this.view.hasRow(index)) this.view.setRows(this.sections.rows(), index);
  }

  /** @param {number} section */
  #toggle(section) {
    const sections = this.sections;
    sections.setOpen(section, !sections.isOpen(section));
    const header = sections.sections[section].start;
    // The header pressed stays where it is on screen (and its button keeps the focus through the redraw).
    this.view.setFollowing(false);
    // Filtered, the rows stay the matching lines; the header's button says its new state.
    if (this.#filtering()) this.view.refresh();
    else this.view.setRows(sections.rows(), header);
  }

  /**
   * The open step and group that the reader is reading (the first row in view is in them), to keep them open
   * when the next one begins; none while following the end, or while the view waits at the top for a `#L<n>`
   * that has not come.
   */
  #sectionsBeingRead() {
    if (this.view.following || this.#awaitedLine !== null) return [];
    const line = this.view.firstVisibleLine;
    return this.sections.openSections.filter((section) =>
      this.sections.isOpen(section) && line >= this.sections.sections[section].start
    );
  }

  #filtering() {
    return this.#elements.onlyMatching.checked && this.search.query !== "";
  }

  #showRows() {
    this.view.setRows(this.#filtering() ? this.search.matchingLines() : this.sections.rows());
  }

  #showSearchCount() {
    const { searchCount, previous, next } = this.#elements;
    const { count, current, query } = this.search;
    const text = query === ""
      ? ""
      : count === 0
      ? "No matches"
      : `${(current + 1).toLocaleString()} of ${count.toLocaleString()}`;
    // Only on a change: a write restyles it.
    if (searchCount.textContent !== text) searchCount.textContent = text;
    previous.disabled = next.disabled = count === 0;
  }

  #showCount() {
    const { lineCount, empty, followState } = this.#elements;
    const count = this.lines.count;
    if (this.#neverRan) {
      lineCount.textContent = "It never ran";
      empty.textContent = "No output: it ended before it started.";
    } else {
      lineCount.textContent = count === 0 && !this.#complete ? "No output yet" : linesText(count);
      empty.textContent = this.#complete ? "No output." : "Waiting for output…";
    }
    empty.hidden = count > 0;
    followState.hidden = this.#neverRan || (this.#complete && count === 0);
    // Only on a change: setting it restyles every line.
    const digits = String(String(this.lines.lastNumber).length);
    const log = this.#elements.log;
    if (log.style.getPropertyValue("--line-digits") !== digits) {
      log.style.setProperty("--line-digits", digits);
    }
    this.#elements.jump.hidden = this.view.following || count === 0;
  }

  /** @param {boolean} following */
  #showFollowing(following) {
    const { followState, jump } = this.#elements;
    followState.textContent = following ? "Following" : "Paused";
    followState.dataset.following = String(following);
    jump.hidden = following || this.lines.count === 0;
  }

  #showDownloads() {
    const { download, downloadPlain, timestamps } = this.#elements;
    const base = `/deployments/${encodeURIComponent(this.#options.deploymentId)}/log?download=1`;
    const times = timestamps.checked ? "&timestamps=1" : "";
    download.href = `${base}${times}`;
    downloadPlain.href = `${base}&plain=1${times}`;
  }

  /** Once the whole log is in, a line that `#L<n>` asked for and never came is said to be missing. */
  #reportMissingLine() {
    const line = this.#awaitedLine;
    if (line === null || line <= this.lines.lastNumber || !this.#complete) return;
    this.#awaitedLine = null;
    this.#reportMissing(line);
  }

  /** @param {number} line */
  #reportMissing(line) {
    this.#saidMissing = true;
    this.#options.showMessage(
      line < 1
        ? `There is no line ${line}: lines are numbered from 1.`
        : `There is no line ${line.toLocaleString()}: this log has ${linesText(this.lines.count)}.`,
    );
  }

  /** The message area was emptied: what it said of a missing line is gone too. */
  forgetMissingLine() {
    this.#saidMissing = false;
  }

  /** Forgets a `#L<n>` still awaited (the page says something else). */
  forgetAwaitedLine() {
    this.#awaitedLine = null;
  }
}

/** `1 line`, `2,500 lines`. @param {number} count */
function linesText(count) {
  return `${count.toLocaleString()} ${count === 1 ? "line" : "lines"}`;
}

/** @returns {number | null} */
function lineFromHash() {
  const match = /^#L(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}
