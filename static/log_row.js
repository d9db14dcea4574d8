/**
 * @module
 * One row of the log view as DOM: its line number (a link to `#L<n>`, drawn by CSS so copies leave it out), its
 * time when the reader asked for timestamps, its text with terminal colours and the search's occurrences
 * marked, a mark when it came from stderr, and for the first line of a step or group a disclosure button
 * (`aria-expanded`) with the section's line count and duration. Text reaches the DOM only through text nodes
 * and `textContent`.
 */

import { parseAnsi } from "./ansi.js";
import { formatDuration } from "./format.js";
import { displayText } from "./log_search.js";
import { GROUP, STEP } from "./log_sections.js";

/**
 * What a row is drawn from.
 * @typedef {object} RowContext
 * @property {import("./log_lines.js").LogLines} lines
 * @property {import("./log_sections.js").LogSections} sections
 * @property {import("./log_search.js").LogSearch} search
 * @property {boolean} timestamps Whether each row shows its time.
 * @property {number} startedAt The time of the log's first line (epoch ms), for "from the start"; 0 if unknown.
 * @property {number} highlighted The line index `#L<n>` selected, -1 for none.
 * @property {number} now For the duration of a running section.
 */

const CLOCK = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});

/**
 * Draws line `index`.
 * @param {number} index
 * @param {RowContext} context
 * @returns {HTMLElement}
 */
export function renderRow(index, context) {
  const { lines, sections, search } = context;
  const number = lines.number(index);
  const row = document.createElement("div");
  row.className = "line";
  row.id = `L${number}`;
  row.dataset.index = String(index);
  if (lines.isStderr(index)) row.classList.add("stderr");
  if (index === context.highlighted) row.classList.add("highlight");
  const link = document.createElement("a");
  link.className = "ln";
  link.href = `#L${number}`;
  // Clickable, but not a Tab stop each: Tab goes past the log in one step, not through every line of it.
  link.tabIndex = -1;
  link.dataset.line = String(number);
  row.append(link);
  if (context.timestamps) row.append(renderTime(lines.time(index), context.startedAt));

  const content = document.createElement("span");
  content.className = "text";
  const kind = sections.kind(index);
  const marks = search.in(index).map(([start, match]) => ({
    start,
    end: start + search.length,
    current: match === search.current,
  }));
  if (kind === GROUP) {
    appendSegments(content, [{ text: displayText(lines, sections, index), classes: [], style: {} }], marks);
  } else {
    appendSegments(content, parseAnsi(lines.text(index)), marks);
  }
  // An empty line copies as nothing at all: a line break keeps the blank lines of copied text.
  if (content.childNodes.length === 0) content.append(document.createElement("br"));

  if (kind !== STEP && kind !== GROUP) {
    row.append(content);
    return row;
  }
  const section = sections.sectionAt(index);
  const open = sections.isOpen(section);
  row.classList.add(kind === STEP ? "step-head" : "group-head");
  if (sections.isFailed(section)) row.classList.add("failed");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "fold";
  button.dataset.section = String(section);
  button.setAttribute("aria-expanded", String(open));
  button.append(content);
  const meta = document.createElement("span");
  meta.className = "section-meta";
  const count = sections.lineCount(section);
  const duration = sections.duration(section, context.now);
  const parts = [`${count.toLocaleString()} ${count === 1 ? "line" : "lines"}`];
  if (duration !== null) parts.push(formatDuration(duration));
  if (sections.isFailed(section)) parts.push(sections.status);
  meta.textContent = parts.join(" · ");
  row.append(button, meta);
  return row;
}

/**
 * @param {number} time
 * @param {number} startedAt
 */
function renderTime(time, startedAt) {
  const element = document.createElement("time");
  element.className = "ts";
  if (!time) {
    element.textContent = "–";
    element.title = "Time not known (a line from before shiplog kept times)";
    return element;
  }
  const date = new Date(time);
  element.dateTime = date.toISOString();
  element.textContent = CLOCK.format(date);
  const offset = startedAt ? `, ${formatDuration(time - startedAt)} after the start` : "";
  element.title = `${date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "long" })}${offset}`;
  return element;
}

/**
 * Appends the segments' text to `parent`, the parts inside a mark wrapped in `<mark>`.
 * @param {HTMLElement} parent
 * @param {import("./ansi.js").Segment[]} segments
 * @param {Array<{start: number, end: number, current: boolean}>} marks In order, not overlapping.
 */
function appendSegments(parent, segments, marks) {
  let offset = 0;
  let next = 0;
  for (const segment of segments) {
    const end = offset + segment.text.length;
    let at = offset;
    while (at < end) {
      while (next < marks.length && marks[next].end <= at) next++;
      const mark = marks[next];
      let stop = end;
      let inside = false;
      if (mark && mark.start <= at) {
        inside = true;
        stop = Math.min(end, mark.end);
      } else if (mark && mark.start < end) {
        stop = mark.start;
      }
      const text = segment.text.slice(at - offset, stop - offset);
      let node = styled(segment, text);
      if (inside) {
        const wrapper = document.createElement("mark");
        wrapper.className = mark.current ? "match current" : "match";
        wrapper.append(node);
        node = wrapper;
      }
      parent.append(node);
      at = stop;
    }
    offset = end;
  }
}

/**
 * @param {import("./ansi.js").Segment} segment
 * @param {string} text
 * @returns {Node}
 */
function styled(segment, text) {
  if (segment.classes.length === 0 && !segment.style.color && !segment.style.backgroundColor) {
    return document.createTextNode(text);
  }
  const span = document.createElement("span");
  span.className = segment.classes.join(" ");
  if (segment.style.color) span.style.color = segment.style.color;
  if (segment.style.backgroundColor) span.style.backgroundColor = segment.style.backgroundColor;
  span.textContent = text;
  return span;
}
