/**
 * @module
 * Steps and groups of a log, read from its lines as they arrive: a line `[n/m] title` starts step n (and ends
 * the step before), GitHub Actions' `::group::title` … `::endgroup::` make a group inside the step they are in
 * (a new group or step ends an open one; groups do not nest). Each section knows its lines, its duration from
 * the line times, its state, and whether it is open: a reader's choice wins; by default a step folds once a
 * later one started (unless it failed), and a group once it ended. From that it lists the rows a view shows
 * (the marker `::endgroup::` never, the lines of a folded section not). Pure: no DOM, tested without a browser.
 */

import { parseProgress } from "./progress.js";

/** What a line is, for the view: text, the first line of a step or of a group, or a hidden end marker. */
export const LINE = 0;
export const STEP = 1;
export const GROUP = 2;
export const END = 3;

const GROUP_START = /^\s*::group::(.*)$/;
const GROUP_END = /^\s*::endgroup::\s*$/;

/**
 * @typedef {object} Section
 * @property {"step" | "group"} kind
 * @property {number} start The index of its first line (the `[n/m]` or `::group::` line).
 * @property {number} end The index after its last line; -1 while it is the open one.
 * @property {boolean} closedByMarker A group ended by `::endgroup::` (that line is hidden).
 * @property {number} hidden How many of its lines are hidden end markers (its own and its groups').
 * @property {string} title
 * @property {number} step For a step: n of `[n/m]`; 0 for a group.
 * @property {number} total For a step: m; 0 for a group.
 * @property {number} parent The section (index) a group is in, -1 for a step or a group outside any.
 * @property {boolean | null} userOpen What the reader chose, or null for the default.
 */

/**
 * How one step reads in the summary.
 * @typedef {object} StepSummary
 * @property {number} step
 * @property {number} total
 * @property {string} title
 * @property {"done" | "running" | "failed" | "interrupted" | "cancelled" | "not reached"} state The one it
 *   ended in says how the deployment ended there.
 * @property {number | null} line The number of its first line, null when not reached.
 * @property {number | null} duration Milliseconds, null when the times are not known.
 */

/**
 * Reads what a line marks.
 * @param {string} plain The line as it reads, without escape codes.
 * @returns {{kind: number, title: string, step: number, total: number}}
 */
export function parseMarker(plain) {
  const progress = parseProgress(plain);
  if (progress) return { kind: STEP, title: progress.label, step: progress.step, total: progress.total };
  const group = GROUP_START.exec(plain);
  if (group) return { kind: GROUP, title: group[1].trim(), step: 0, total: 0 };
  if (GROUP_END.test(plain)) return { kind: END, title: "", step: 0, total: 0 };
  return { kind: LINE, title: "", step: 0, total: 0 };
}

/** The steps and groups of one {@linkcode import("./log_lines.js").LogLines}, kept up to date by `update`. */
export class LogSections {
  /** @type {import("./log_lines.js").LogLines} */
  #lines;
  /** @type {Section[]} */
  sections = [];
  #kinds = new Uint8Array(1024);
  /** The innermost section a line is in; a first line belongs to the one outside the section it starts. */
  #owners = new Int32Array(1024);
  #read = 0;
  #step = -1;
  #group = -1;
  /** The deployment's status: a failed one marks its last step. */
  status = "running";
  /** When the deployment ended (epoch ms), for the duration of its last section; 0 while it runs. */
  endedAt = 0;

  /** @param {import("./log_lines.js").LogLines} lines */
  constructor(lines) {
    this.#lines = lines;
  }

  /**
   * Reads the lines appended since the last call.
   * @returns {number} The first line index whose row may have changed (a section began or ended there, so
   *   its default folding may have changed), or the first new line; `count` when nothing was new.
   */
  update() {
    let changed = this.#read;
    const mark = (/** @type {number} */ section) => {
      if (section >= 0) changed = Math.min(changed, this.sections[section].start);
    };
    const lines = this.#lines;
    if (lines.count > this.#kinds.length) {
      let size = this.#kinds.length;
      while (size < lines.count) size *= 2;
      const kinds = new Uint8Array(size);
      kinds.set(this.#kinds);
      this.#kinds = kinds;
      const owners = new Int32Array(size);
      owners.set(this.#owners);
      this.#owners = owners;
    }
    for (let index = this.#read; index < lines.count; index++) {
      const marker = parseMarker(lines.plain(index));
      this.#kinds[index] = marker.kind;
      if (marker.kind === STEP) {
        mark(this.#group);
        mark(this.#step);
        this.#close(this.#group, index, false);
        this.#close(this.#step, index, false);
        this.#group = -1;
        this.#owners[index] = -1;
        this.#step = this.#open("step", index, marker, -1);
      } else if (marker.kind === GROUP) {
        mark(this.#group);
        this.#close(this.#group, index, false);
        this.#owners[index] = this.#step;
        this.#group = this.#open("group", index, marker, this.#step);
      } else if (marker.kind === END && this.#group >= 0) {
        mark(this.#group);
        this.#owners[index] = this.#group;
        this.sections[this.#group].hidden++;
        if (this.#step >= 0) this.sections[this.#step].hidden++;
        this.#close(this.#group, index + 1, true);
        this.#group = -1;
      } else {
        // An `::endgroup::` outside a group is a line like any other.
        this.#kinds[index] = LINE;
        this.#owners[index] = this.#group >= 0 ? this.#group : this.#step;
      }
    }
    this.#read = lines.count;
    return changed;
  }

  /** Forgets every section (the log was replaced). */
  clear() {
    this.sections = [];
    this.#read = 0;
    this.#step = -1;
    this.#group = -1;
  }

  /** @param {number} index */
  kind(index) {
    return this.#kinds[index];
  }

  /** The section line `index` starts, or -1. @param {number} index */
  sectionAt(index) {
    const kind = this.#kinds[index];
    if (kind !== STEP && kind !== GROUP) return -1;
    // Sections are in the order of their first lines.
    let low = 0;
    let high = this.sections.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.sections[middle].start <= index) low = middle;
      else high = middle - 1;
    }
    return this.sections[low]?.start === index ? low : -1;
  }

  /** @param {number} section */
  isOpen(section) {
    const { userOpen, kind, end } = this.sections[section];
    if (userOpen !== null) return userOpen;
    if (kind === "group") return end === -1;
    return end === -1 || this.isFailed(section);
  }

  /**
   * Opens or folds a section, as the reader asked.
   * @param {number} section
   * @param {boolean} open
   */
  setOpen(section, open) {
    this.sections[section].userOpen = open;
  }

  /** Opens every section line `index` is in, so that it is shown. Returns whether any was folded. */
  reveal(/** @type {number} */ index) {
    let changed = false;
    for (let section = this.#owners[index]; section >= 0; section = this.sections[section].parent) {
      if (!this.isOpen(section)) changed = true;
      this.sections[section].userOpen = true;
    }
    return changed;
  }

  /** Whether the section is the step the deployment failed in (its last step, when it failed). */
  isFailed(/** @type {number} */ section) {
    return this.sections[section].kind === "step" && section === this.#step && failedStatus(this.status);
  }

  /** Lines in the section, its first line and a hidden end marker not counted. @param {number} section */
  lineCount(section) {
    const { start, end, hidden } = this.sections[section];
    return (end === -1 ? this.#lines.count : end) - start - 1 - hidden;
  }

  /**
   * From the time of its first line to that of the line after it (or the end of the deployment, or `now`
   * while it runs); null when a time is not known.
   * @param {number} section
   * @param {number} now
   */
  duration(section, now) {
    const { start, end, closedByMarker } = this.sections[section];
    const began = this.#lines.time(start);
    // A section ended by the next one lasts until that one's first line; by `::endgroup::`, until the marker.
    const until = end !== -1 ? this.#lines.time(closedByMarker ? end - 1 : end) : this.endedAt || now;
    if (!began || !until) return null;
    return Math.max(0, until - began);
  }

  /**
   * The indices of the lines a view shows, in order: every line except end markers and the lines of folded
   * sections (a folded section's first line is shown).
   * @returns {Int32Array}
   */
  rows() {
    const count = this.#lines.count;
    const rows = new Int32Array(count);
    const open = this.sections.map((_, section) => this.isOpen(section));
    let length = 0;
    for (let index = 0; index < count; index++) {
      if (this.#kinds[index] === END) continue;
      const owner = this.#owners[index];
      if (owner >= 0) {
        if (!open[owner]) continue;
        const parent = this.sections[owner].parent;
        if (parent >= 0 && !open[parent]) continue;
      }
      rows[length++] = index;
    }
    return rows.subarray(0, length);
  }

  /**
   * The indices of the lines shown from line `from` on (what {@linkcode rows} has after it).
   * @param {number} from
   * @returns {number[]}
   */
  rowsFrom(from) {
    /** @type {number[]} */
    const rows = [];
    for (let index = from; index < this.#lines.count; index++) if (this.isShown(index)) rows.push(index);
    return rows;
  }

  /** The first line of the open step and group, to keep them open once they end (the reader is in them). */
  get openSections() {
    return [this.#step, this.#group].filter((section) => section >= 0);
  }

  /**
   * Whether line `index` is shown by {@linkcode rows} as it stands (for lines appended to an open end).
   * @param {number} index
   */
  isShown(index) {
    if (this.#kinds[index] === END) return false;
    for (let section = this.#owners[index]; section >= 0; section = this.sections[section].parent) {
      if (!this.isOpen(section)) return false;
    }
    return true;
  }

  /** The step shown by the progress bar: the last `[n/m]`, or null. */
  get currentStep() {
    return this.#step >= 0 ? this.sections[this.#step] : null;
  }

  /**
   * How many steps are finished: all of them once the deployment succeeded, else those before the current.
   * @returns {{finished: number, total: number} | null}
   */
  progress() {
    const step = this.currentStep;
    if (step === null) return null;
    return { finished: this.status === "succeeded" ? step.total : step.step - 1, total: step.total };
  }

  /**
   * The steps 1…m of the last `[n/m]` seen, each with its state and duration; a step announced more than once
   * reads as its last run.
   * @param {number} now
   * @returns {StepSummary[]}
   */
  summary(now) {
    const current = this.currentStep;
    if (current === null) return [];
    /** @type {Map<number, number>} */
    const byStep = new Map();
    this.sections.forEach((section, index) => {
      if (section.kind === "step") byStep.set(section.step, index);
    });
    /** @type {StepSummary[]} */
    const steps = [];
    for (let step = 1; step <= current.total; step++) {
      const index = byStep.get(step);
      if (index === undefined || step > current.step) {
        steps.push({
          step,
          total: current.total,
          title: "",
          state: "not reached",
          line: null,
          duration: null,
        });
        continue;
      }
      const section = this.sections[index];
      /** @type {StepSummary["state"]} */
      let state = "done";
      if (index === this.#step && this.status !== "succeeded") {
        state = failedStatus(this.status)
          ? /** @type {"failed" | "interrupted" | "cancelled"} */ (this.status)
          : "running";
      }
      steps.push({
        step,
        total: current.total,
        title: section.title,
        state,
        line: this.#lines.number(section.start),
        duration: this.duration(index, now),
      });
    }
    return steps;
  }

  /**
   * @param {"step" | "group"} kind
   * @param {number} start
   * @param {{title: string, step: number, total: number}} marker
   * @param {number} parent
   */
  #open(kind, start, marker, parent) {
    this.sections.push({
      kind,
      start,
      end: -1,
      closedByMarker: false,
      hidden: 0,
      title: marker.title,
      step: marker.step,
      total: marker.total,
      parent,
      userOpen: null,
    });
    return this.sections.length - 1;
  }

  /**
   * @param {number} section
   * @param {number} end
   * @param {boolean} byMarker
   */
  #close(section, end, byMarker) {
    if (section < 0) return;
    this.sections[section].end = end;
    this.sections[section].closedByMarker = byMarker;
  }
}

/** @param {string} status */
function failedStatus(status) {
  return status === "failed" || status === "interrupted" || status === "cancelled";
}
