import assert from "node:assert/strict";
import { stripAnsi } from "./ansi_strip.ts";

Deno.test("stripAnsi() takes out colours and other CSI sequences, keeping the text between them", () => {
  assert.equal(stripAnsi("\x1b[36m[1/3]\x1b[0m build"), "[1/3] build");
  assert.equal(stripAnsi("\x1b[1;38;5;208mbold orange\x1b[m"), "bold orange");
  assert.equal(stripAnsi("\x1b[2K\x1b[1Gprogress 50%"), "progress 50%");
  assert.equal(stripAnsi("\x1b[?25lhidden cursor\x1b[?25h"), "hidden cursor");
  assert.equal(stripAnsi("a\x1b[38:2::255:0:0mred"), "ared");
});

Deno.test("stripAnsi() takes out OSC strings ended by BEL or by ST (titles, hyperlinks)", () => {
  assert.equal(stripAnsi("\x1b]0;the title\x07after"), "after");
  assert.equal(
    stripAnsi("see \x1b]8;;https://example.test/x\x1b\\the docs\x1b]8;;\x1b\\ here"),
    "see the docs here",
  );
});

Deno.test("stripAnsi() takes out DCS, APC and the two-byte and charset ESC sequences", () => {
  assert.equal(stripAnsi("\x1bP1$r0m\x1b\\text"), "text");
  assert.equal(stripAnsi("\x1b_application\x1b\\text"), "text");
  assert.equal(stripAnsi("\x1b(Bascii\x1b7saved\x1b8\x1b=\x1bM"), "asciisaved");
  assert.equal(stripAnsi("\x1bcreset"), "reset");
});

Deno.test("stripAnsi() takes out a sequence cut off by the end of the line, and a lone ESC", () => {
  assert.equal(stripAnsi("text\x1b[38;5"), "text");
  assert.equal(stripAnsi("text\x1b]0;no end"), "text");
  assert.equal(stripAnsi("text\x1b"), "text");
});

Deno.test("stripAnsi() leaves text without ESC as it is, other control characters too", () => {
  for (const line of ["", "plain", "tab\there", "cr\rprogress", "[36m looks like one", "ünïcode ✓ 𝄞"]) {
    assert.equal(stripAnsi(line), line);
  }
});
