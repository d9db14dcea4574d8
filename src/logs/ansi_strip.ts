/**
 * @module
 * Takes the terminal escape sequences out of a log line, for the raw log's `?plain=1`: what a terminal would
 * act on rather than show, so that a browser or an editor shows the text without `[36m` in it. CSI sequences
 * (colours, cursor moves, erasing: `ESC [` parameters, intermediates, a final byte), OSC (titles, hyperlinks:
 * `ESC ]` up to BEL or ST), DCS, SOS, PM and APC strings (up to ST), and the other ESC sequences (`ESC (B`,
 * `ESC 7`, `ESC =`, ...). A sequence cut off by the end of the line is taken out to there, as a terminal would
 * swallow it; a lone ESC too. Other control characters (a CR of a progress bar, a tab) stay: they are text.
 * Pure: a line in, a line out.
 */

/**
 * One escape sequence: CSI; OSC (ended by BEL or ST); DCS, SOS, PM, APC (ended by ST); nF (intermediates and a
 * final); the two-byte ones (Fp, Fe, Fs); each also cut off at the end of the line.
 */
const ESCAPE = new RegExp(
  [
    "\\x1b\\[[\\x30-\\x3f]*[\\x20-\\x2f]*(?:[\\x40-\\x7e]|$)",
    "\\x1b\\][\\s\\S]*?(?:\\x07|\\x1b\\\\|$)",
    "\\x1b[PX^_][\\s\\S]*?(?:\\x1b\\\\|$)",
    "\\x1b[\\x20-\\x2f]+(?:[\\x30-\\x7e]|$)",
    "\\x1b[\\x30-\\x7e]?",
  ].join("|"),
  "g",
);

/** `line` without its terminal escape sequences. */
export function stripAnsi(line: string): string {
  // Most lines have none: no regular expression run for them.
  return line.includes("\x1b") ? line.replace(ESCAPE, "") : line;
}
