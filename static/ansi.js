/**
 * @module
 * Terminal colours for the log view, as data: {@linkcode parseAnsi} turns one log line into styled segments.
 * SGR codes (`ESC [ … m`: bold, dim, italic, underline, inverse, strike, the 16 standard colours, 256 colours
 * and 24-bit colour) become classes and colours; every other escape sequence (cursor moves, erase, OSC titles
 * and hyperlinks, …) and control character is dropped. Pure: no DOM here, so the page decides how a segment is
 * drawn (with `textContent`, never HTML) and the rules are tested without a browser. Styles do not carry over
 * from one line to the next; each line starts plain.
 */

/**
 * A run of text drawn one way.
 * @typedef {object} Segment
 * @property {string} text The characters, with every escape sequence removed.
 * @property {string[]} classes CSS classes: `ansi-bold`, `ansi-dim`, `ansi-italic`, `ansi-underline`,
 *   `ansi-strike`, `ansi-fg-N` / `ansi-bg-N` for the 16 standard colours (N = 0…15), and `ansi-inverse-fg` /
 *   `ansi-inverse-bg` when inverse video swaps a default colour.
 * @property {{color?: string, backgroundColor?: string}} style Colours outside the 16-colour palette, as
 *   `rgb(r, g, b)`.
 */

// One token: an escape sequence of a kind we know, or a run of plain text. The sticky flag walks the line.
// CSI: ESC [ params intermediates final. OSC: ESC ] … (BEL | ESC \). DCS/SOS/PM/APC: ESC P|X|^|_ … ESC \.
// A C1 CSI (U+009B). A CSI or string cut off by the line end. Any other ESC plus its intermediates and final
// byte. A stray ESC or U+009B alone (dropped, the text after it kept). Then a run of plain text.
const TOKEN = new RegExp(
  [
    "\\x1b\\[([0-?]*)[ -/]*([@-~])",
    "\\x1b\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\)",
    "\\x1b[PX^_][^\\x1b]*\\x1b\\\\",
    "\\x9b[0-?]*[ -/]*[@-~]",
    "(?:\\x1b\\[|\\x9b)[0-?]*[ -/]*$",
    "\\x1b[\\]PX^_][^\\x07\\x1b]*$",
    "\\x1b[ -/]*[0-~]",
    "[\\x1b\\x9b]",
    "[^\\x1b\\x9b]+",
  ].join("|"),
  "gy",
);

// Control characters other than TAB draw nothing in a browser (or draw a box); a terminal would not show them.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Splits one log line into styled segments. Adjacent segments drawn the same way are merged; empty ones are
 * left out, so a line with only escape codes gives `[]`.
 * @param {string} line One line of log text, without its line break.
 * @returns {Segment[]}
 */
export function parseAnsi(line) {
  /** @type {Segment[]} */
  const segments = [];
  const state = plainState();
  TOKEN.lastIndex = 0;
  let match;
  while (TOKEN.lastIndex < line.length && (match = TOKEN.exec(line)) !== null) {
    const token = match[0];
    if (token.charCodeAt(0) === 0x1b || token.charCodeAt(0) === 0x9b) {
      if (match[2] === "m") applySgr(state, match[1]);
      continue;
    }
    const text = token.replace(CONTROL, "");
    if (text === "") continue;
    const { classes, style } = describe(state);
    const last = segments.at(-1);
    if (last && sameLook(last, classes, style)) last.text += text;
    else segments.push({ text, classes, style });
  }
  return segments;
}

/**
 * The text of a line as it reads, without escape sequences or control characters.
 * @param {string} line
 * @returns {string}
 */
export function stripAnsi(line) {
  return parseAnsi(line).map((segment) => segment.text).join("");
}

/**
 * @typedef {object} SgrState
 * @property {boolean} bold
 * @property {boolean} dim
 * @property {boolean} italic
 * @property {boolean} underline
 * @property {boolean} inverse
 * @property {boolean} strike
 * @property {number | string | null} fg A palette index 0…15, an `rgb(…)` string, or null for the default.
 * @property {number | string | null} bg Same as `fg`.
 */

/** @returns {SgrState} */
function plainState() {
  return {
    bold: false,
    dim: false,
    italic: false,
    underline: false,
    inverse: false,
    strike: false,
    fg: null,
    bg: null,
  };
}

/**
 * Applies the parameters of one `ESC [ … m` sequence. Parameters are separated by `;`; a parameter may carry
 * `:`-separated sub-parameters (ITU T.416 form, e.g. `38:2::255:0:0`). An empty parameter means 0.
 * @param {SgrState} state
 * @param {string} params
 */
function applySgr(state, params) {
  const list = params.split(";");
  for (let i = 0; i < list.length; i++) {
    const parts = list[i].split(":").map((part) => part === "" ? 0 : Number(part));
    if (parts.some((part) => !Number.isInteger(part))) continue;
    const code = parts[0];
    if (code === 38 || code === 48) {
      let color;
      if (parts.length > 1) {
        color = extendedColor(parts.slice(1), true);
      } else {
        // Semicolon form: 38;5;N or 38;2;R;G;B — the colour's numbers are the next parameters.
        // At most the four numbers of 2;R;G;B: copying all the rest for every 38 made a long line quadratic.
        const rest = list.slice(i + 1, i + 5).map(Number);
        color = extendedColor(rest, false);
        i += rest[0] === 5 ? 2 : rest[0] === 2 ? 4 : 0;
      }
      if (color !== undefined) state[code === 38 ? "fg" : "bg"] = color;
      continue;
    }
    applyCode(state, code, parts);
  }
}

/**
 * @param {SgrState} state
 * @param {number} code
 * @param {number[]} parts
 */
function applyCode(state, code, parts) {
  if (code === 0) Object.assign(state, plainState());
  else if (code === 1) state.bold = true;
  else if (code === 2) state.dim = true;
  else if (code === 3) state.italic = true;
  else if (code === 4) state.underline = parts.length < 2 || parts[1] !== 0;
  else if (code === 7) state.inverse = true;
  else if (code === 9) state.strike = true;
  else if (code === 21 || code === 22) state.bold = state.dim = false;
  else if (code === 23) state.italic = false;
  else if (code === 24) state.underline = false;
  else if (code === 27) state.inverse = false;
  else if (code === 29) state.strike = false;
  else if (code >= 30 && code <= 37) state.fg = code - 30;
  else if (code === 39) state.fg = null;
  else if (code >= 40 && code <= 47) state.bg = code - 40;
  else if (code === 49) state.bg = null;
  else if (code >= 90 && code <= 97) state.fg = code - 90 + 8;
  else if (code >= 100 && code <= 107) state.bg = code - 100 + 8;
  // Anything else (blink, fonts, overline, …) is not drawn.
}

/**
 * Reads `5;N` (256 colours) or `2;R;G;B` (24-bit). In the colon form, `2` may be followed by a colour-space id
 * before R, G, B (`38:2::R:G:B`).
 * @param {number[]} numbers
 * @param {boolean} colonForm
 * @returns {number | string | undefined}
 */
function extendedColor(numbers, colonForm) {
  const byte = (/** @type {number} */ n) => Number.isInteger(n) && n >= 0 && n <= 255;
  if (numbers[0] === 5) {
    const index = numbers[1];
    if (!byte(index)) return undefined;
    return index < 16 ? index : rgb(...palette256(index));
  }
  if (numbers[0] === 2) {
    const channels = colonForm && numbers.length >= 5 ? numbers.slice(2, 5) : numbers.slice(1, 4);
    if (channels.length !== 3 || !channels.every(byte)) return undefined;
    return rgb(channels[0], channels[1], channels[2]);
  }
  return undefined;
}

/**
 * The xterm colours 16…255: a 6×6×6 cube, then 24 greys.
 * @param {number} index
 * @returns {[number, number, number]}
 */
function palette256(index) {
  if (index >= 232) {
    const grey = 8 + (index - 232) * 10;
    return [grey, grey, grey];
  }
  const cube = index - 16;
  const level = (/** @type {number} */ n) => n === 0 ? 0 : 55 + n * 40;
  return [level(Math.floor(cube / 36)), level(Math.floor(cube / 6) % 6), level(cube % 6)];
}

/**
 * @param {number} r
 * @param {number} g
 * @param {number} b
 */
function rgb(r, g, b) {
  return `rgb(${r}, ${g}, ${b})`;
}

/**
 * @param {SgrState} state
 * @returns {{classes: string[], style: {color?: string, backgroundColor?: string}}}
 */
function describe(state) {
  /** @type {string[]} */
  const classes = [];
  /** @type {{color?: string, backgroundColor?: string}} */
  const style = {};
  if (state.bold) classes.push("ansi-bold");
  if (state.dim) classes.push("ansi-dim");
  if (state.italic) classes.push("ansi-italic");
  if (state.underline) classes.push("ansi-underline");
  if (state.strike) classes.push("ansi-strike");
  const fg = state.inverse ? state.bg : state.fg;
  const bg = state.inverse ? state.fg : state.bg;
  if (typeof fg === "number") classes.push(`ansi-fg-${fg}`);
  else if (typeof fg === "string") style.color = fg;
  else if (state.inverse) classes.push("ansi-inverse-fg");
  if (typeof bg === "number") classes.push(`ansi-bg-${bg}`);
  else if (typeof bg === "string") style.backgroundColor = bg;
  else if (state.inverse) classes.push("ansi-inverse-bg");
  return { classes, style };
}

/**
 * @param {Segment} segment
 * @param {string[]} classes
 * @param {{color?: string, backgroundColor?: string}} style
 */
function sameLook(segment, classes, style) {
  return segment.classes.join(" ") === classes.join(" ") && segment.style.color === style.color &&
    segment.style.backgroundColor === style.backgroundColor;
}
