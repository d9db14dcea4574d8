/**
 * @module
 * Search over the whole log, folded sections included: every occurrence of the query in the lines as they read
 * (escape codes removed; a group's first line reads as its title), case-insensitive unless the query has a
 * capital letter. Lines that arrive later are searched as they come (`extend`). A current match moves with
 * `next` and `previous`, wrapping around. Pure: no DOM, tested without a browser.
 */

import { END, GROUP } from "./log_sections.js";

/** How a line reads for search and for the view. */
export function displayText(
  /** @type {import("./log_lines.js").LogLines} */ lines,
  /** @type {import("./log_sections.js").LogSections} */ sections,
  /** @type {number} */ index,
) {
  const kind = sections.kind(index);
  if (kind === GROUP) return sections.sections[sections.sectionAt(index)].title;
  return lines.plain(index);
}

/** The occurrences of one query in a {@linkcode import("./log_lines.js").LogLines}. */
export class LogSearch {
  #lines;
  #sections;
  query = "";
  /** @type {RegExp | null} */
  #pattern = null;
  #searched = 0;
  /** Per occurrence: the line index, and where in the text as it reads it starts. */
  #matchLines = new Int32Array(1024);
  #matchStarts = new Int32Array(1024);
  /** How many occurrences there are. */
  count = 0;
  /** The current occurrence, -1 when there is none. */
  current = -1;

  /**
   * @param {import("./log_lines.js").LogLines} lines
   * @param {import("./log_sections.js").LogSections} sections
   */
  constructor(lines, sections) {
    this.#lines = lines;
    this.#sections = sections;
  }

  /**
   * Searches the whole log for `query` (an empty one clears the search). The current match becomes the first
   * one at or after line index `from` (or the first).
   * @param {string} query
   * @param {number} [from]
   */
  setQuery(query, from = 0) {
    this.query = query;
    this.#pattern = query === ""
      ? null
      : new RegExp(query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), query === query.toLowerCase() ? "gi" : "g");
    this.#searched = 0;
    this.count = 0;
    this.current = -1;
    this.extend();
    if (this.count > 0) {
      const at = this.#firstAtOrAfter(from);
      this.current = at < this.count ? at : 0;
    }
  }

  /** Searches the lines appended since the last search. Returns whether any match was found. */
  extend() {
    const pattern = this.#pattern;
    const lines = this.#lines;
    const before = this.count;
    if (pattern === null) {
      this.#searched = lines.count;
      return false;
    }
    for (let index = this.#searched; index < lines.count; index++) {
      if (this.#sections.kind(index) === END) continue;
      const text = displayText(lines, this.#sections, index);
      pattern.lastIndex = 0;
      for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
        this.#push(index, match.index);
      }
    }
    this.#searched = lines.count;
    if (this.current === -1 && this.count > 0) this.current = 0;
    return this.count > before;
  }

  /** The length of every occurrence (the query's, as case folding keeps it). */
  get length() {
    return this.query.length;
  }

  /** The line index of occurrence `match`. @param {number} match */
  lineOf(match) {
    return this.#matchLines[match];
  }

  /**
   * The occurrences in line `index`, as `[start, occurrence]` pairs in order.
   * @param {number} index
   * @returns {Array<[number, number]>}
   */
  in(index) {
    /** @type {Array<[number, number]>} */
    const found = [];
    for (let match = this.#firstAtOrAfter(index); match < this.count; match++) {
      if (this.#matchLines[match] !== index) break;
      found.push([this.#matchStarts[match], match]);
    }
    return found;
  }

  /**
   * The distinct line indices with a match, in order (for "Only matching lines").
   * @returns {Int32Array}
   */
  matchingLines() {
    const rows = new Int32Array(this.count);
    let length = 0;
    for (let match = 0; match < this.count; match++) {
      const line = this.#matchLines[match];
      if (length === 0 || rows[length - 1] !== line) rows[length++] = line;
    }
    return rows.subarray(0, length);
  }

  /** Moves to the next occurrence, wrapping around. */
  next() {
    if (this.count > 0) this.current = (this.current + 1) % this.count;
  }

  /** Moves to the previous occurrence, wrapping around. */
  previous() {
    if (this.count > 0) this.current = (this.current - 1 + this.count) % this.count;
  }

  /** Forgets every match (the log was replaced); the query stays. */
  clear() {
    this.#searched = 0;
    this.count = 0;
    this.current = -1;
  }

  /** The first occurrence in a line at or after `index`. @param {number} index */
  #firstAtOrAfter(index) {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#matchLines[middle] < index) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /**
   * @param {number} line
   * @param {number} start
   */
  #push(line, start) {
    if (this.count === this.#matchLines.length) {
      const lines = new Int32Array(this.count * 2);
      lines.set(this.#matchLines);
      this.#matchLines = lines;
      const starts = new Int32Array(this.count * 2);
      starts.set(this.#matchStarts);
      this.#matchStarts = starts;
    }
    this.#matchLines[this.count] = line;
    this.#matchStarts[this.count] = start;
    this.count++;
  }
}
