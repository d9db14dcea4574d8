/**
 * @module
 * The lines of one deployment's log as the page holds them: the text of each, its line number, when shiplog
 * first saw it (epoch ms, 0 when not known) and whether the command wrote it to stderr, in flat growable
 * arrays so a million lines cost a few typed arrays and the strings themselves. Lines arrive in batches shaped
 * like the `/api/deployments/<id>/lines` answer; a line at or below the last one held is a duplicate (a resumed
 * stream) and is dropped. Pure: no DOM, tested without a browser.
 */

import { stripAnsi } from "./ansi.js";

// Any escape or control character (other than TAB) means the text as read differs from the text as written.
// deno-lint-ignore no-control-regex
const NOT_PLAIN = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/**
 * A run of consecutive lines, as `/api/deployments/<id>/lines` answers and the `times` event describes.
 * @typedef {object} LineBatch
 * @property {number} firstLine The number of `lines[0]`.
 * @property {string[]} lines
 * @property {number[]} [times] When shiplog first saw each line, epoch ms; 0 or missing when not known.
 * @property {number[]} [stderr] The numbers of the lines among these that came from stderr.
 */

/** The lines of a log, append-only until {@linkcode LogLines.clear}. */
export class LogLines {
  /** @type {string[]} */
  #texts = [];
  /** @type {string[]} The text as it reads; the same string as in `#texts` when that has no escape codes. */
  #plain = [];
  #numbers = new Float64Array(1024);
  #times = new Float64Array(1024);
  #stderr = new Uint8Array(1024);

  /** How many lines are held. */
  get count() {
    return this.#texts.length;
  }

  /** The number of the last line held, 0 when there is none. */
  get lastNumber() {
    const count = this.#texts.length;
    return count === 0 ? 0 : this.#numbers[count - 1];
  }

  /**
   * Appends the lines of `batch` after the last one held; lines at or below it are dropped.
   * @param {LineBatch} batch
   * @returns {number} How many lines were added.
   */
  append(batch) {
    const { firstLine, lines } = batch;
    const stderr = new Set(batch.stderr ?? []);
    const skip = Math.max(0, this.lastNumber - firstLine + 1);
    if (skip >= lines.length) return 0;
    this.#reserve(this.#texts.length + lines.length - skip);
    for (let i = skip; i < lines.length; i++) {
      const index = this.#texts.length;
      const number = firstLine + i;
      const text = terminalText(lines[i]);
      this.#texts.push(text);
      this.#plain.push(NOT_PLAIN.test(text) ? stripAnsi(text) : text);
      this.#numbers[index] = number;
      this.#times[index] = batch.times?.[i] ?? 0;
      this.#stderr[index] = stderr.has(number) ? 1 : 0;
    }
    return lines.length - skip;
  }

  /** Forgets every line (the log was replaced). */
  clear() {
    this.#texts = [];
    this.#plain = [];
  }

  /** @param {number} index */
  text(index) {
    return this.#texts[index];
  }

  /** The text as it reads, without escape codes. @param {number} index */
  plain(index) {
    return this.#plain[index];
  }

  /** @param {number} index */
  number(index) {
    return this.#numbers[index];
  }

  /** When shiplog first saw the line (epoch ms), 0 when not known. @param {number} index */
  time(index) {
    return this.#times[index];
  }

  /** @param {number} index */
  isStderr(index) {
    return this.#stderr[index] === 1;
  }

  /**
   * The index of line `number`, or of the first line after it when it is not held (the log was cut), or
   * `count` when it is past the end.
   * @param {number} number
   */
  indexOf(number) {
    let low = 0;
    let high = this.#texts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#numbers[middle] < number) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** @param {number} count */
  #reserve(count) {
    if (count <= this.#numbers.length) return;
    let size = this.#numbers.length;
    while (size < count) size *= 2;
    this.#numbers = grow(this.#numbers, new Float64Array(size));
    this.#times = grow(this.#times, new Float64Array(size));
    this.#stderr = grow(this.#stderr, new Uint8Array(size));
  }
}

/**
 * A copy of `from` at the start of `to`.
 * @template {Float64Array | Uint8Array} T
 * @param {T} from
 * @param {T} to
 * @returns {T}
 */
function grow(from, to) {
  to.set(from);
  return to;
}

/**
 * What a terminal would end with: a CR inside a line (a progress overwrite; over SSE it arrives as LF) keeps
 * the last text written after it.
 * @param {string} text
 */
export function terminalText(text) {
  if (!text.includes("\r") && !text.includes("\n")) return text;
  const parts = text.split(/\r\n?|\n/);
  for (let i = parts.length - 1; i >= 0; i--) if (parts[i] !== "") return parts[i];
  return "";
}
