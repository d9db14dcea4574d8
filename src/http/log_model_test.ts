// Unit tests of the pure log model behind the deployment page: static/log_lines.js (lines, times, stderr),
// static/log_sections.js (steps and groups, folding, durations, the summary, the progress) and
// static/log_search.js (search over the whole log).
import assert from "node:assert/strict";
import { LogLines, terminalText } from "../../static/log_lines.js";
import { END, GROUP, LINE, LogSections, parseMarker, STEP } from "../../static/log_sections.js";
import { LogSearch } from "../../static/log_search.js";

const ESC = "\x1b";

/** A model fed `texts` as lines 1… one second apart from t=1000 s, the lines in `stderr` from stderr. */
function model(texts: string[], stderr: number[] = []) {
  const lines = new LogLines();
  lines.append({ firstLine: 1, lines: texts, times: texts.map((_, i) => 1_000_000 + i * 1000), stderr });
  const sections = new LogSections(lines);
  sections.update();
  const search = new LogSearch(lines, sections);
  return { lines, sections, search };
}

Deno.test("LogLines keeps numbers, times and stderr, and drops lines at or below the last one held", () => {
  const lines = new LogLines();
  assert.equal(lines.append({ firstLine: 1, lines: ["a", "b"], times: [5, 6], stderr: [2] }), 2);
  assert.equal(lines.append({ firstLine: 2, lines: ["b", "c"] }), 1, "line 2 again is a duplicate");
  assert.equal(lines.count, 3);
  assert.deepEqual([lines.text(2), lines.number(2), lines.time(2), lines.isStderr(2)], ["c", 3, 0, false]);
  assert.deepEqual([lines.time(1), lines.isStderr(1), lines.isStderr(0)], [6, true, false]);
  assert.equal(lines.lastNumber, 3);
  assert.deepEqual([lines.indexOf(1), lines.indexOf(3), lines.indexOf(4)], [0, 2, 3]);
});

Deno.test("LogLines grows past its first arrays and reads a line with escape codes as plain text", () => {
  const lines = new LogLines();
  const texts = Array.from({ length: 5000 }, (_, i) => `${ESC}[32mline ${i + 1}${ESC}[0m`);
  lines.append({ firstLine: 1, lines: texts });
  assert.equal(lines.count, 5000);
  assert.equal(lines.number(4999), 5000);
  assert.equal(lines.plain(4999), "line 5000");
  assert.equal(lines.text(4999), texts[4999]);
});

Deno.test("terminalText() keeps what a terminal ends with after a carriage return", () => {
  assert.equal(terminalText("uploading 10%\ruploading 100%"), "uploading 100%");
  assert.equal(terminalText("done\n"), "done");
  assert.equal(terminalText("plain"), "plain");
});

Deno.test("parseMarker() reads steps, groups and group ends, and nothing else", () => {
  assert.deepEqual(parseMarker("[2/5] Build"), { kind: STEP, title: "Build", step: 2, total: 5 });
  assert.deepEqual(parseMarker("::group::Install deps "), {
    kind: GROUP,
    title: "Install deps",
    step: 0,
    total: 0,
  });
  assert.equal(parseMarker("::endgroup::").kind, END);
  assert.equal(parseMarker("a [1/2] b").kind, LINE);
});

Deno.test("LogSections folds finished steps and closed groups by default, and hides end markers", () => {
  const { sections } = model([
    "prelude",
    "[1/3] Build",
    "::group::Compile",
    "cc a.c",
    "::endgroup::",
    "built",
    "[2/3] Push",
    "pushing",
  ]);
  assert.equal(sections.sections.length, 3);
  assert.deepEqual(sections.sections.map((s) => [s.kind, s.title, s.start, s.end]), [
    ["step", "Build", 1, 6],
    ["group", "Compile", 2, 5],
    ["step", "Push", 6, -1],
  ]);
  // Step 1 folded (step 2 started): its first line shows, its lines do not; step 2 runs, open.
  assert.deepEqual([...sections.rows()], [0, 1, 6, 7]);
  sections.setOpen(0, true);
  // The group ended: folded, its marker never shown.
  assert.deepEqual([...sections.rows()], [0, 1, 2, 5, 6, 7]);
  sections.setOpen(1, true);
  assert.deepEqual([...sections.rows()], [0, 1, 2, 3, 5, 6, 7]);
  assert.equal(sections.lineCount(0), 3, "the group's end marker is not counted");
  assert.equal(sections.lineCount(1), 1, "the end marker is not counted");
  assert.equal(sections.duration(0, 0), 5000, "from its line to the next step's");
  assert.equal(sections.duration(1, 0), 2000, "from ::group:: to ::endgroup::");
  assert.equal(sections.duration(2, 10_000_000), 10_000_000 - 1_006_000, "the running step counts to now");
});

Deno.test("LogSections.reveal() opens the folded sections a line is in", () => {
  const { sections } = model(["[1/2] A", "::group::G", "inner", "::endgroup::", "[2/2] B"]);
  assert.equal(sections.isShown(2), false);
  assert.equal(sections.reveal(2), true);
  assert.equal(sections.isShown(2), true);
  assert.deepEqual([...sections.rows()], [0, 1, 2, 4]);
});

Deno.test("LogSections: the step a deployment failed in is marked and stays open; the progress counts finished steps", () => {
  const { sections } = model(["[1/5] A", "a", "[2/5] B", "[3/5] C", "[4/5] D", "boom"]);
  assert.deepEqual(sections.progress(), { finished: 3, total: 5 }, "step 4 runs: 3 of 5 done");
  sections.status = "failed";
  sections.endedAt = 1_010_000;
  assert.deepEqual(sections.progress(), { finished: 3, total: 5 }, "failed in step 4: still 3 of 5");
  assert.equal(sections.isFailed(3), true);
  assert.equal(sections.isOpen(3), true);
  assert.deepEqual(sections.summary(0).map((s) => [s.step, s.state, s.line, s.duration]), [
    [1, "done", 1, 2000],
    [2, "done", 3, 1000],
    [3, "done", 4, 1000],
    [4, "failed", 5, 6000],
    [5, "not reached", null, null],
  ]);
  // Cancelled or interrupted there, the summary says so, not "failed".
  for (const status of ["cancelled", "interrupted"]) {
    sections.status = status;
    assert.equal(sections.summary(0)[3].state, status);
    assert.equal(sections.isFailed(3), true, "marked, and kept open, all the same");
  }
  sections.status = "succeeded";
  assert.deepEqual(sections.progress(), { finished: 5, total: 5 });
});

Deno.test("LogSearch finds every occurrence, folded lines included, case-insensitive unless a capital", () => {
  const { sections, search, lines } = model([
    "[1/2] Build",
    `error: ${ESC}[31mdisk${ESC}[0m full`,
    "[2/2] Deploy",
    "Error again, error",
  ]);
  assert.equal(sections.isShown(1), false, "line 2 is in the folded step 1");
  search.setQuery("error");
  assert.equal(search.count, 3);
  assert.deepEqual(search.in(3), [[0, 1], [13, 2]]);
  assert.equal(search.lineOf(search.current), 1, "the first match is inside the folded step");
  search.setQuery("Error");
  assert.equal(search.count, 1, "a capital makes it case-sensitive");
  search.setQuery("disk full");
  assert.equal(search.count, 1, "text between escape codes reads without them: 'disk full' is there");
  search.setQuery("disk");
  assert.deepEqual(search.in(1), [[7, 0]]);
  search.setQuery("error");
  search.next();
  search.next();
  search.next();
  assert.equal(search.current, 0, "next wraps around");
  search.previous();
  assert.equal(search.current, 2, "previous wraps around");
  assert.deepEqual([...search.matchingLines()], [1, 3]);
  lines.append({ firstLine: 5, lines: ["one more error"] });
  sections.update();
  assert.equal(search.extend(), true);
  assert.equal(search.count, 4, "a new line is searched as it arrives");
  search.setQuery("a.c");
  assert.equal(search.count, 0, "the query is text, not a pattern");
});

Deno.test("LogSearch reads a group's first line as its title and skips end markers", () => {
  const { search } = model(["::group::Install", "x", "::endgroup::"]);
  search.setQuery("group");
  assert.equal(search.count, 0);
  search.setQuery("install");
  assert.deepEqual(search.in(0), [[0, 0]]);
});
