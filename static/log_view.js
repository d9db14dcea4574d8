/**
 * @module
 * The virtualised log: of the rows to show (line indices, from the steps' folding or the search filter), only
 * those near the viewport are in the document, between two spacers that stand for the rest, so the page's cost
 * does not grow with the log (a million lines keep about a hundred row elements). Row heights are estimated
 * (one line, or as many as the text wraps to in a monospace font) and replaced by the measured ones once drawn.
 * Follow mode keeps the end in view; scrolling up pauses it. Rows still in the window across a redraw are kept,
 * so a selection inside them survives scrolling; the row a selection starts in stays in the document however
 * far the reader scrolls (just outside the window, where it is not seen), and a copy of a selection whose rows
 * are not all in the document is made from the log itself. Drawing happens once per animation frame.
 */

import { renderRow } from "./log_row.js";
import { displayText } from "./log_search.js";

/** Pixels drawn above and below the viewport, so a scroll shows rows already there. */
const OVERSCAN_PX = 600;
/** How close to the bottom (in pixels) still counts as "at the bottom" for follow mode. */
const FOLLOW_SLACK_PX = 32;

/**
 * @typedef {object} LogViewOptions
 * @property {() => import("./log_row.js").RowContext} context What rows are drawn from, asked at each draw.
 * @property {(following: boolean) => void} [onFollowChange]
 * @property {(section: number) => void} [onToggle] A step's or group's disclosure button was pressed.
 * @property {(line: number) => void} [onLineClick] A line number was clicked (plain left click).
 */

export class LogView {
  #scroller;
  #options;
  #before = document.createElement("div");
  #body = document.createElement("div");
  #after = document.createElement("div");
  /** @type {Int32Array} The line index of each row. */
  #rows = new Int32Array(1024);
  #rowCount = 0;
  /** Measured heights, by line index; 0 when not measured at the current width. */
  #heights = new Float32Array(1024);
  /** `#offsets[r]`: the top of row r; valid up to `#offsetsValid`. */
  #offsets = new Float64Array(1025);
  #offsetsValid = 0;
  /** @type {Map<number, HTMLElement>} The rows in the document, by line index. */
  #rendered = new Map();
  #rowHeight = 20;
  #columns = 0;
  #wrap = true;
  #frame = 0;
  following = true;
  /** The scroll position after the last scroll: moving up from it is the reader's doing. */
  #scrollTop = 0;
  /** @type {{line: number, center: boolean} | null} A line to bring into view at the next draw. */
  #reveal = null;
  /**
   * Where this view last scrolled to itself (following, revealing, keeping an anchor): the scroll event that
   * follows is not the reader's. Without this, the event of a follow's scroll to the end, dispatched after a
   * reveal had paused following, took the view for at the end and followed again.
   */
  #ownScrollTop = -1;
  /** The line index of the row a selection in the log starts from (kept in the document), -1 for none. */
  #anchorLine = -1;
  /**
   * The row that had the focus when it was taken out to be drawn anew (a running step's header, redrawn with
   * each batch): its new element gets the focus back.
   * @type {{line: number, selector: string} | null}
   */
  #lostFocus = null;

  /**
   * @param {HTMLElement} scroller The scrolling element the rows go in.
   * @param {LogViewOptions} options
   */
  constructor(scroller, options) {
    this.#scroller = scroller;
    this.#options = options;
    this.#before.className = "log-spacer";
    this.#after.className = "log-spacer";
    this.#body.className = "log-rows";
    scroller.append(this.#before, this.#body, this.#after);
    scroller.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    scroller.addEventListener("click", (event) => this.#onClick(event));
    // On the document: a copy is fired where the selection starts or where the focus is, not at the log.
    document.addEventListener("copy", (event) => this.#onCopy(event));
    document.addEventListener("selectionchange", () => this.#onSelectionChange());
    // The panel shrinks when the header grows (a failure's reason appears): a following view goes back to the
    // end; a new width changes how lines wrap.
    new ResizeObserver(() => this.#onResize()).observe(scroller);
    this.#measureFont();
  }

  /** How many row elements are in the document. */
  get renderedCount() {
    return this.#rendered.size;
  }

  /** How many rows there are to show. */
  get rowCount() {
    return this.#rowCount;
  }

  /** The line index of the first row in view, -1 when there is none. */
  get firstVisibleLine() {
    if (this.#rowCount === 0) return -1;
    this.#updateOffsets(this.#rowCount);
    return this.#rows[this.#rowAt(this.#scroller.scrollTop)];
  }

  /**
   * Shows these rows instead (folding or filtering changed), keeping `anchor` (a line index; by default the
   * first row in view) where it was on screen.
   * @param {Int32Array} rows Line indices, ascending.
   * @param {number} [anchor]
   */
  setRows(rows, anchor) {
    const top = this.#scroller.scrollTop;
    const anchorRow = anchor === undefined ? this.#rowAt(top) : this.#rowOf(anchor);
    const anchorLine = anchorRow < this.#rowCount ? this.#rows[anchorRow] : -1;
    const shift = anchorLine === -1 ? 0 : this.#top(anchorRow) - top;
    this.#ensureRows(rows.length);
    this.#rows.set(rows);
    this.#rowCount = rows.length;
    this.#offsetsValid = 0;
    this.#clearRendered();
    if (!this.following && anchorLine !== -1) {
      const row = this.#rowOf(anchorLine);
      this.#updateOffsets(row + 1);
      this.#scroller.scrollTop = this.#offsets[row] - shift;
      this.#scrollTop = this.#ownScrollTop = this.#scroller.scrollTop;
    }
    this.draw();
  }

  /**
   * Adds rows at the end (new lines in open sections).
   * @param {ArrayLike<number>} lines Line indices, after every row there is.
   */
  appendRows(lines) {
    if (lines.length === 0) return;
    this.#ensureRows(this.#rowCount + lines.length);
    for (let i = 0; i < lines.length; i++) this.#rows[this.#rowCount++] = lines[i];
    this.draw();
  }

  /**
   * Replaces the rows of line `from` and after (a section there began or ended, so its folding changed).
   * @param {number} from A line index.
   * @param {ArrayLike<number>} lines Line indices from `from` on, ascending.
   */
  spliceRows(from, lines) {
    const row = this.#rowOf(from);
    for (let r = row; r < this.#rowCount; r++) {
      const element = this.#rendered.get(this.#rows[r]);
      if (element) this.#remove(this.#rows[r], element);
      this.#rendered.delete(this.#rows[r]);
    }
    this.#rowCount = row;
    this.#offsetsValid = Math.min(this.#offsetsValid, row);
    this.#ensureRows(row + lines.length);
    for (let i = 0; i < lines.length; i++) this.#rows[this.#rowCount++] = lines[i];
    this.draw();
  }

  /** Forgets every row and every measured height (the log was replaced: its line indices are other lines). */
  clear() {
    this.#heights.fill(0);
    this.setRows(new Int32Array(0));
  }

  /** Draws every row in view anew (a match moved, timestamps toggled, a section's count grew). */
  refresh() {
    this.#clearRendered();
    this.draw();
  }

  /**
   * Draws again one line, if it is in the document. A section's header whose count or duration alone changed
   * keeps its element (a screen reader on its button hears nothing new); anything else is a new element.
   * @param {number} line
   */
  refreshLine(line) {
    const element = this.#rendered.get(line);
    if (!element) return;
    const row = renderRow(line, this.#options.context());
    const meta = element.querySelector(".section-meta");
    const fold = element.querySelector("button.fold");
    if (
      meta !== null && fold !== null && row.className === element.className &&
      fold.isEqualNode(row.querySelector("button.fold"))
    ) {
      const text = row.querySelector(".section-meta")?.textContent ?? "";
      if (meta.textContent !== text) meta.textContent = text;
      return;
    }
    const focus = focusSelector(element);
    element.replaceWith(row);
    this.#rendered.set(line, row);
    if (focus !== null) focusIn(row, focus);
  }

  /** @param {boolean} wrap */
  setWrap(wrap) {
    this.#wrap = wrap;
    this.#scroller.classList.toggle("nowrap", !wrap);
    this.#heights.fill(0);
    this.#offsetsValid = 0;
    this.#measureFont();
    this.refresh();
  }

  /**
   * Scrolls line `line` (an index, which must be a row) into view at the next draw, and stops following.
   * @param {number} line
   * @param {{center?: boolean}} [options] Centred, or only as far as needed.
   */
  reveal(line, { center = true } = {}) {
    this.#reveal = { line, center };
    this.setFollowing(false);
    this.draw();
  }

  /** @param {boolean} following */
  setFollowing(following) {
    if (this.following === following) return;
    this.following = following;
    this.#options.onFollowChange?.(following);
    if (following) this.draw();
  }

  /** Whether line `line` (an index) is one of the rows. @param {number} line */
  hasRow(line) {
    const row = this.#rowOf(line);
    return row < this.#rowCount && this.#rows[row] === line;
  }

  /** Asks for a draw at the next animation frame. */
  draw() {
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  #draw() {
    const scroller = this.#scroller;
    const viewport = scroller.clientHeight;
    this.#updateOffsets(this.#rowCount);
    const total = this.#offsets[this.#rowCount];
    let top = scroller.scrollTop;
    if (this.#reveal !== null) {
      const row = this.#rowOf(this.#reveal.line);
      const rowTop = this.#offsets[row];
      const height = this.#offsets[row + 1] - rowTop;
      if (this.#reveal.center) top = rowTop - (viewport - height) / 2;
      else if (rowTop < top) top = rowTop;
      else if (rowTop + height > top + viewport) top = rowTop + height - viewport;
    } else if (this.following) {
      top = total - viewport;
    }
    top = Math.max(0, Math.min(top, total - viewport));
    const first = this.#rowAt(top - OVERSCAN_PX);
    const last = Math.min(this.#rowCount, this.#rowAt(top + viewport + OVERSCAN_PX) + 1);
    const anchor = this.#fill(first, last);
    // Measure what was drawn: the rows below the first drawn one move by what their estimates were off.
    let changedFrom = -1;
    for (let row = first; row < last; row++) {
      const line = this.#rows[row];
      const element = /** @type {HTMLElement} */ (this.#rendered.get(line));
      const height = element.offsetHeight;
      if (height > 0 && Math.abs(height - (this.#offsets[row + 1] - this.#offsets[row])) > 0.5) {
        this.#heights[line] = height;
        if (changedFrom === -1) changedFrom = row;
      } else if (height > 0) {
        this.#heights[line] = height;
      }
    }
    if (changedFrom !== -1) {
      this.#offsetsValid = Math.min(this.#offsetsValid, changedFrom);
      this.#updateOffsets(this.#rowCount);
    }
    const height = (/** @type {number} */ n) => `${Math.max(0, n)}px`;
    // A selection's first row kept outside the window takes its height from the spacer on its side.
    const anchorHeight = anchor === -1 ? 0 : this.#offsets[anchor + 1] - this.#offsets[anchor];
    this.#before.style.height = height(
      this.#offsets[first] - (anchor !== -1 && anchor < first ? anchorHeight : 0),
    );
    this.#after.style.height = height(
      this.#offsets[this.#rowCount] - this.#offsets[last] - (anchor >= last ? anchorHeight : 0),
    );
    if (this.#reveal !== null) {
      const row = this.#rowOf(this.#reveal.line);
      const rowTop = this.#offsets[row];
      const rowHeight = this.#offsets[row + 1] - rowTop;
      if (this.#reveal.center) scroller.scrollTop = rowTop - (viewport - rowHeight) / 2;
      else if (rowTop < scroller.scrollTop) scroller.scrollTop = rowTop;
      else if (rowTop + rowHeight > scroller.scrollTop + viewport) {
        scroller.scrollTop = rowTop + rowHeight - viewport;
      }
      this.#reveal = null;
    } else if (this.following) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (Math.abs(scroller.scrollTop - top) > 1 && top < scroller.scrollTop) {
      // The log got shorter than where the view was (rows folded away): stay within it.
      scroller.scrollTop = top;
    }
    if (scroller.scrollTop !== this.#scrollTop) this.#ownScrollTop = scroller.scrollTop;
    this.#scrollTop = scroller.scrollTop;
  }

  /**
   * Puts rows `first` to `last` (exclusive) in the document: the ones there already stay, the others come.
   * Returns the row of a selection's first line kept outside them, -1 for none.
   * @param {number} first
   * @param {number} last
   */
  #fill(first, last) {
    const context = this.#options.context();
    /** @type {Map<number, HTMLElement>} */
    const next = new Map();
    /** @type {HTMLElement[]} */
    const ordered = [];
    const get = (/** @type {number} */ line) =>
      (!this.#stale && this.#rendered.get(line)) || renderRow(line, context);
    for (let row = first; row < last; row++) {
      const line = this.#rows[row];
      const element = get(line);
      next.set(line, element);
      ordered.push(element);
    }
    let anchor = -1;
    if (this.#anchorLine !== -1 && this.hasRow(this.#anchorLine)) {
      const row = this.#rowOf(this.#anchorLine);
      if (row < first || row >= last) {
        anchor = row;
        // Its own element, not a new one: a new one would not hold the selection.
        const element = this.#rendered.get(this.#anchorLine) ?? get(this.#anchorLine);
        next.set(this.#anchorLine, element);
        if (row < first) ordered.unshift(element);
        else ordered.push(element);
      }
    }
    for (const [line, element] of this.#rendered) if (next.get(line) !== element) this.#remove(line, element);
    this.#stale = false;
    let cursor = this.#body.firstChild;
    for (const element of ordered) {
      if (element === cursor) cursor = cursor.nextSibling;
      else this.#body.insertBefore(element, cursor);
    }
    this.#rendered = next;
    const lost = this.#lostFocus;
    this.#lostFocus = null;
    // Unless the reader has put the focus somewhere else meanwhile.
    if (lost !== null && (document.activeElement === null || document.activeElement === document.body)) {
      const element = next.get(lost.line);
      // Its row scrolled out of the window: the log itself, so that the keys go on scrolling it.
      if (element) focusIn(element, lost.selector);
      else this.#scroller.focus({ preventScroll: true });
    }
    return anchor;
  }

  /** Keeps the row a selection in the log starts from, so that the selection survives scrolling. */
  #onSelectionChange() {
    const selection = getSelection();
    const row = selection === null || selection.isCollapsed ? null : this.#rowElement(selection.anchorNode);
    const line = row === null ? -1 : Number(row.dataset.index);
    if (line !== this.#anchorLine) this.#anchorLine = line;
  }

  /**
   * A copy of a selection whose rows are not all in the document (it began far above or below the view): the
   * rows between its ends come from the log, the ends from what is selected in them.
   * @param {ClipboardEvent} event
   */
  #onCopy(event) {
    const selection = getSelection();
    if (selection === null || selection.rangeCount === 0 || selection.isCollapsed || !event.clipboardData) {
      return;
    }
    const range = selection.getRangeAt(0);
    const startRow = this.#rowElement(range.startContainer);
    const endRow = this.#rowElement(range.endContainer);
    if (startRow === null || endRow === null) return;
    const first = this.#rowOf(Number(startRow.dataset.index));
    const last = this.#rowOf(Number(endRow.dataset.index));
    let whole = true;
    for (let row = first; row <= last && whole; row++) whole = this.#rendered.has(this.#rows[row]);
    if (whole) return; // the browser's own copy is right
    const part = (/** @type {HTMLElement} */ row, /** @type {boolean} */ start) => {
      const content = row.querySelector(".text");
      if (content === null) return "";
      const piece = document.createRange();
      piece.selectNodeContents(content);
      if (start && piece.comparePoint(range.startContainer, range.startOffset) === 0) {
        piece.setStart(range.startContainer, range.startOffset);
      }
      if (!start && piece.comparePoint(range.endContainer, range.endOffset) === 0) {
        piece.setEnd(range.endContainer, range.endOffset);
      }
      return piece.toString();
    };
    const { lines, sections } = this.#options.context();
    const texts = [part(startRow, true)];
    for (let row = first + 1; row < last; row++) texts.push(displayText(lines, sections, this.#rows[row]));
    texts.push(part(endRow, false));
    event.clipboardData.setData("text/plain", texts.join("\n"));
    event.preventDefault();
  }

  /** The row element of this log that `node` is in, or null. @param {Node | null} node */
  #rowElement(node) {
    const element = node instanceof Element ? node : node?.parentElement ?? null;
    const row = element?.closest(".line") ?? null;
    return row instanceof HTMLElement && this.#body.contains(row) ? row : null;
  }

  /** Takes row element `element` of line `line` out of the document, noting whether it had the focus. */
  #remove(/** @type {number} */ line, /** @type {HTMLElement} */ element) {
    const selector = focusSelector(element);
    if (selector !== null) this.#lostFocus = { line, selector };
    element.remove();
  }

  /** Every row is drawn anew at the next draw; until then the old ones stay (no empty frame). */
  #clearRendered() {
    this.#stale = true;
  }

  #stale = false;

  /** The row whose box holds `y` (clamped to the rows). @param {number} y */
  #rowAt(y) {
    let low = 0;
    let high = this.#rowCount;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#offsets[middle + 1] <= y) low = middle + 1;
      else high = middle;
    }
    return Math.min(low, Math.max(0, this.#rowCount - 1));
  }

  /** The row of line `line`, or the first row after it. @param {number} line */
  #rowOf(line) {
    let low = 0;
    let high = this.#rowCount;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#rows[middle] < line) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** @param {number} row */
  #top(row) {
    this.#updateOffsets(row);
    return this.#offsets[row];
  }

  /** Computes the offsets up to row `until`. @param {number} until */
  #updateOffsets(until) {
    const context = this.#options.context();
    for (let row = this.#offsetsValid; row < until; row++) {
      const line = this.#rows[row];
      this.#offsets[row + 1] = this.#offsets[row] + (this.#heights[line] || this.#estimate(line, context));
    }
    this.#offsetsValid = Math.max(this.#offsetsValid, until);
  }

  /**
   * @param {number} line
   * @param {import("./log_row.js").RowContext} context
   */
  #estimate(line, context) {
    if (!this.#wrap || this.#columns === 0) return this.#rowHeight;
    const length = context.lines.plain(line).length;
    return this.#rowHeight * Math.max(1, Math.ceil(length / this.#columns));
  }

  /** @param {number} count */
  #ensureRows(count) {
    if (count + 1 > this.#offsets.length) {
      let size = this.#offsets.length;
      while (size < count + 1) size *= 2;
      const offsets = new Float64Array(size);
      offsets.set(this.#offsets.subarray(0, this.#offsetsValid + 1));
      this.#offsets = offsets;
      const rows = new Int32Array(size);
      rows.set(this.#rows.subarray(0, this.#rowCount));
      this.#rows = rows;
    }
    const lines = this.#options.context().lines.count;
    if (lines > this.#heights.length) {
      let size = this.#heights.length;
      while (size < lines) size *= 2;
      const heights = new Float32Array(size);
      heights.set(this.#heights);
      this.#heights = heights;
    }
  }

  /** The row height and, when lines wrap, how many characters fit on one. */
  #measureFont() {
    const probe = document.createElement("div");
    probe.className = "line";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = "0".repeat(100);
    probe.append(text);
    this.#body.append(probe);
    const box = probe.getBoundingClientRect();
    const characterWidth = text.getBoundingClientRect().width / 100;
    probe.remove();
    if (box.height > 0) this.#rowHeight = box.height;
    // The text column: the row minus the line number (about 8 characters with its padding) and the time.
    const width = this.#scroller.clientWidth - 10 * characterWidth;
    this.#columns = characterWidth > 0 ? Math.max(10, Math.floor(width / characterWidth)) : 0;
  }

  #lastWidth = 0;

  #onResize() {
    const width = this.#scroller.clientWidth;
    if (width !== this.#lastWidth) {
      this.#lastWidth = width;
      if (this.#wrap) {
        this.#heights.fill(0);
        this.#offsetsValid = 0;
      }
      this.#measureFont();
    }
    this.draw();
  }

  /**
   * Reaching the end follows it; moving up from it pauses. Content that grows under the view (rows laid out
   * taller than estimated) scrolls without moving up: while following, that goes back to the end.
   */
  #onScroll() {
    const scroller = this.#scroller;
    const top = scroller.scrollTop;
    const movedUp = top < this.#scrollTop - 1;
    this.#scrollTop = top;
    const own = Math.abs(top - this.#ownScrollTop) < 1;
    this.#ownScrollTop = -1;
    if (own) return this.draw();
    const atBottom = scroller.scrollHeight - top - scroller.clientHeight <= FOLLOW_SLACK_PX;
    if (atBottom) {
      if (!this.following) this.setFollowing(true);
    } else if (this.following && movedUp) {
      this.setFollowing(false);
    }
    this.draw();
  }

  /** @param {MouseEvent} event */
  #onClick(event) {
    const target = /** @type {Element} */ (event.target);
    const fold = target.closest("button.fold");
    if (fold instanceof HTMLButtonElement) {
      this.#options.onToggle?.(Number(fold.dataset.section));
      return;
    }
    const link = target.closest("a.ln");
    if (!(link instanceof HTMLAnchorElement) || event.button !== 0 || event.metaKey || event.ctrlKey) return;
    // Select the line without the browser's jump to it: the reader clicked it, so it is already in view.
    event.preventDefault();
    this.#options.onLineClick?.(Number(link.dataset.line));
  }
}

/**
 * What in row element `row` has the focus, as a selector to find its like in a new element of the row; null when
 * nothing in it has.
 * @param {HTMLElement} row
 * @returns {string | null}
 */
function focusSelector(row) {
  const focused = document.activeElement;
  if (focused === null || !row.contains(focused)) return null;
  if (focused.matches("button.fold")) return "button.fold";
  if (focused.matches("a.ln")) return "a.ln";
  return null;
}

/** @param {HTMLElement} row @param {string} selector */
function focusIn(row, selector) {
  const target = row.querySelector(selector);
  if (target instanceof HTMLElement) target.focus({ preventScroll: true });
}
