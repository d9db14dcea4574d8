// Unit tests of the pure helpers behind the pages: static/ansi.js (terminal colours), and beside it
// static/progress.js (the `[n/m]` convention) and static/format.js (durations), which feed the same log view.
import assert from "node:assert/strict";
import { parseAnsi, stripAnsi } from "../../static/ansi.js";
import { parseProgress } from "../../static/progress.js";
import { elapsedMilliseconds, formatDuration, isFinal } from "../../static/format.js";

const ESC = "\x1b";

Deno.test("parseAnsi() returns plain text as one unstyled segment", () => {
  assert.deepEqual(parseAnsi("hello <b>world</b>"), [{ text: "hello <b>world</b>", classes: [], style: {} }]);
});

Deno.test("parseAnsi() returns no segment for an empty line or one made only of escape codes", () => {
  assert.deepEqual(parseAnsi(""), []);
  assert.deepEqual(parseAnsi(`${ESC}[31m${ESC}[0m`), []);
});

Deno.test("parseAnsi() turns the 8 standard and 8 bright colours into palette classes", () => {
  assert.deepEqual(parseAnsi(`a${ESC}[31mred${ESC}[0mb`), [
    { text: "a", classes: [], style: {} },
    { text: "red", classes: ["ansi-fg-1"], style: {} },
    { text: "b", classes: [], style: {} },
  ]);
  assert.deepEqual(parseAnsi(`${ESC}[92;104mx`), [{
    text: "x",
    classes: ["ansi-fg-10", "ansi-bg-12"],
    style: {},
  }]);
  assert.deepEqual(parseAnsi(`${ESC}[44mx`), [{ text: "x", classes: ["ansi-bg-4"], style: {} }]);
});

Deno.test("parseAnsi() combines bold with a colour and resets each attribute on its own", () => {
  assert.deepEqual(parseAnsi(`${ESC}[1;32mok${ESC}[22m done${ESC}[39m.`), [
    { text: "ok", classes: ["ansi-bold", "ansi-fg-2"], style: {} },
    { text: " done", classes: ["ansi-fg-2"], style: {} },
    { text: ".", classes: [], style: {} },
  ]);
});

Deno.test("parseAnsi() reads an empty parameter list and empty parameters as reset", () => {
  assert.deepEqual(parseAnsi(`${ESC}[1mA${ESC}[mB${ESC}[1mC${ESC}[;mD`).map((s) => s.classes), [
    ["ansi-bold"],
    [],
    ["ansi-bold"],
    [],
  ]);
});

Deno.test("parseAnsi() supports dim, italic, underline, strike and their resets", () => {
  assert.deepEqual(parseAnsi(`${ESC}[2;3;4;9mx${ESC}[23;24;29my`).map((s) => s.classes), [
    ["ansi-dim", "ansi-italic", "ansi-underline", "ansi-strike"],
    ["ansi-dim"],
  ]);
  assert.deepEqual(parseAnsi(`${ESC}[4:0mx`), [{ text: "x", classes: [], style: {} }]);
});

Deno.test("parseAnsi() gives 256-colour and 24-bit colours as rgb() styles, the first 16 as classes", () => {
  assert.deepEqual(parseAnsi(`${ESC}[38;5;196mx`), [{
    text: "x",
    classes: [],
    style: { color: "rgb(255, 0, 0)" },
  }]);
  assert.deepEqual(parseAnsi(`${ESC}[38;5;9mx`), [{ text: "x", classes: ["ansi-fg-9"], style: {} }]);
  assert.deepEqual(parseAnsi(`${ESC}[48;5;232mx`), [{
    text: "x",
    classes: [],
    style: { backgroundColor: "rgb(8, 8, 8)" },
  }]);
  assert.deepEqual(parseAnsi(`${ESC}[38;2;10;20;30;1mx`), [{
    text: "x",
    classes: ["ansi-bold"],
    style: { color: "rgb(10, 20, 30)" },
  }]);
  assert.deepEqual(parseAnsi(`${ESC}[38:2::1:2:3mx`), [{
    text: "x",
    classes: [],
    style: { color: "rgb(1, 2, 3)" },
  }]);
  assert.deepEqual(parseAnsi(`${ESC}[38:5:21mx`), [{
    text: "x",
    classes: [],
    style: { color: "rgb(0, 0, 255)" },
  }]);
});

Deno.test("parseAnsi() ignores an out-of-range extended colour without losing the codes after it", () => {
  assert.deepEqual(parseAnsi(`${ESC}[38;2;300;0;0;1mx`), [{ text: "x", classes: ["ansi-bold"], style: {} }]);
});

Deno.test("parseAnsi() swaps colours for inverse video, using theme classes for default colours", () => {
  assert.deepEqual(parseAnsi(`${ESC}[31;7mx${ESC}[27my`), [
    { text: "x", classes: ["ansi-inverse-fg", "ansi-bg-1"], style: {} },
    { text: "y", classes: ["ansi-fg-1"], style: {} },
  ]);
});

Deno.test("parseAnsi() strips cursor moves, erase codes, OSC titles and hyperlinks, keeping the link text", () => {
  const line = `${ESC}[2K${ESC}[1A${ESC}]0;title${ESC}\\` +
    `${ESC}]8;;https://example.com${ESC}\\link${ESC}]8;;${ESC}\\ ${ESC}(Bdone${ESC}7${ESC}=`;
  assert.equal(stripAnsi(line), "link done");
  assert.equal(stripAnsi(`${ESC}]2;title\x07text`), "text");
  assert.equal(stripAnsi(`${ESC}[?25lhidden cursor${ESC}[?25h`), "hidden cursor");
});

Deno.test("parseAnsi() drops an escape code cut off at the end of the line and a lone ESC", () => {
  assert.equal(stripAnsi(`text${ESC}[31`), "text");
  assert.equal(stripAnsi(`text${ESC}`), "text");
  assert.equal(stripAnsi(`a${ESC}\u00e9b`), "a\u00e9b");
  assert.equal(stripAnsi(`text${ESC}]0;unterminated title`), "text");
});

Deno.test("parseAnsi() drops control characters but keeps tabs and all other Unicode", () => {
  assert.equal(stripAnsi("a\x00b\x07c\bd\te\x7ff\u009b1mg\u0085h"), "abcd\tefgh");
  assert.equal(stripAnsi("caf\u00e9 \u{1f680} \ud800 \u2028"), "caf\u00e9 \u{1f680} \ud800 \u2028");
});

Deno.test("parseAnsi() leaves HTML as text: the page inserts segments with textContent", () => {
  const line = `${ESC}[31m<img src=x onerror=alert(1)>${ESC}[0m<script>alert(1)</script>`;
  assert.deepEqual(parseAnsi(line).map((s) => s.text), [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
  ]);
});

Deno.test("parseAnsi() does not carry styles from one line to the next", () => {
  assert.deepEqual(parseAnsi(`${ESC}[31mred`)[0].classes, ["ansi-fg-1"]);
  assert.deepEqual(parseAnsi("plain")[0].classes, []);
});

Deno.test("parseAnsi() handles a long line with many codes in linear time", () => {
  const line = `${ESC}[1;31mx${ESC}[0m `.repeat(50_000);
  const started = performance.now();
  const segments = parseAnsi(line);
  assert.equal(segments.length, 100_000);
  assert.ok(performance.now() - started < 2000, "parsing 100,000 codes took over 2 s");
});

Deno.test("parseProgress() reads [n/m] at the start of a line and the step's label", () => {
  assert.deepEqual(parseProgress("[3/8] Building image"), { step: 3, total: 8, label: "Building image" });
  assert.deepEqual(parseProgress("  [ 1 / 2 ]   Pushing  "), { step: 1, total: 2, label: "Pushing" });
  assert.deepEqual(parseProgress("[0/4]"), { step: 0, total: 4, label: "" });
});

Deno.test("parseAnsi() reads a line of 60,000 extended-colour parameters in linear time", () => {
  // 38 (extended colour) over and over: each used to copy every parameter after it, which froze the page
  // for 21 s on a line this long (minutes at 1 MiB). Linear, it takes milliseconds; the bound catches only
  // the quadratic.
  const line = `${ESC}[${"38;".repeat(60_000)}mX`;
  const started = performance.now();
  assert.deepEqual(parseAnsi(line), [{ text: "X", classes: [], style: {} }]);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
});

Deno.test("parseProgress() clamps a step beyond the total and ignores a total of 0", () => {
  assert.deepEqual(parseProgress("[9/8] extra"), { step: 8, total: 8, label: "extra" });
  assert.equal(parseProgress("[1/0] nothing"), null);
});

Deno.test("parseProgress() ignores lines without a leading [n/m]", () => {
  for (const line of ["Building [3/8]", "[3] Building", "[a/b] x", "[-1/8] x", "[3/8", "", "3/8 Building"]) {
    assert.equal(parseProgress(line), null, line);
  }
});

Deno.test("parseProgress() reads a coloured step once the escape codes are stripped", () => {
  assert.deepEqual(parseProgress(stripAnsi(`${ESC}[1;34m[2/5]${ESC}[0m Testing`)), {
    step: 2,
    total: 5,
    label: "Testing",
  });
});

Deno.test("formatDuration() writes seconds, then minutes and seconds, then hours and minutes", () => {
  assert.equal(formatDuration(-5), "0s");
  assert.equal(formatDuration(999), "0s");
  assert.equal(formatDuration(42_000), "42s");
  assert.equal(formatDuration(187_000), "3m 07s");
  assert.equal(formatDuration(7_500_000), "2h 05m");
});

Deno.test("elapsedMilliseconds() measures a run, a running deployment and a queued one", () => {
  const createdAt = "2026-01-01T00:00:00.000Z";
  const startedAt = "2026-01-01T00:00:10.000Z";
  const now = Date.parse("2026-01-01T00:01:00.000Z");
  const finished = { status: "succeeded", createdAt, startedAt, finishedAt: "2026-01-01T00:00:40.000Z" };
  assert.equal(elapsedMilliseconds(finished, now), 30_000);
  assert.equal(
    elapsedMilliseconds({ status: "running", createdAt, startedAt, finishedAt: null }, now),
    50_000,
  );
  assert.equal(
    elapsedMilliseconds({ status: "queued", createdAt, startedAt: null, finishedAt: null }, now),
    60_000,
  );
  assert.equal(elapsedMilliseconds({ status: "failed", createdAt, startedAt, finishedAt: null }, now), null);
  assert.ok(isFinal("interrupted") && !isFinal("running"));
});
