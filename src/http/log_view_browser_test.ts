/// <reference lib="dom" />
// The deployment page's log in a real browser: Debian's Chromium, driven by puppeteer-core, against the real
// HTTP side (`serveHttp`: real files, real deploy commands). What is checked: a finished 100,000-line log shown
// to its last line with fewer than 5,000 line elements, with no stream; steps and groups that fold and unfold,
// with their line counts and durations; search over the whole log (the count, next and previous by key and
// button, a match inside a folded step opening it, `/` and Escape, new lines searched as they come, "Only
// matching lines"); `#L<n>` into a folded step, and missing lines; copy of a selection, also one that began far
// out of the document; the Wrap lines and Timestamps switches, remembered; a run with times: durations, stderr
// marks, the step summary, the progress bar counting finished steps and the tab's icon; focus kept through
// redraws; Download links; a failed run's last line in view when its reason appears; deployments cancelled in
// a step and while queued; one that ends while its history loads; a phone; a live log followed. The speed
// targets of a million lines are measured by the benchmark (bench/bench.ts), not here.
//
// Without /usr/bin/chromium the test is skipped with a loud notice, except under CI=true, where a missing
// browser fails it.
import assert from "node:assert/strict";
import { join } from "node:path";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, HTTPRequest, Page, Viewport } from "npm:puppeteer-core@25.16.0";
import {
  chromium,
  launchChromium,
  requireChromium,
  SCREENSHOTS,
  screenshots,
  textOf as text,
  WAIT_MS,
  waitInPage as waitFor,
} from "../testing/chromium.ts";
import { type HttpTestServer, serveHttp } from "../testing/http_test_server.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";

const CHROMIUM = chromium("log_view_browser_test.ts");
/** A backstop for the whole test (alone it takes about 20 s), after which the browser is torn down. */
const DEADLINE_MS = 180_000;
/** Lines of the finished log: enough that a page drawing every line would hold 100,000 elements. */
const BIG_LINES = 100_000;

/**
 * The big log: a prelude, step 1 (short), step 2 with groups of 5,000 lines and one "disk full" inside the
 * third, step 3 of ticks, and step 4 that failed.
 */
function bigLog(): { lines: string[]; error: number; step2: number; step3: number } {
  const lines = ["Deploying", "[1/4] Prepare", "prepared"];
  const step2 = lines.length + 1;
  lines.push("[2/4] Build");
  let error = 0;
  for (let group = 1; group <= 8; group++) {
    lines.push(`::group::Chunk ${group}`);
    for (let i = 1; i <= 5000; i++) {
      if (group === 3 && i === 2500) {
        lines.push("\x1b[31mERROR\x1b[0m: disk full");
        error = lines.length;
      } else {
        lines.push(`compile unit ${group}.${i}`);
      }
    }
    lines.push("::endgroup::");
  }
  const step3 = lines.length + 1;
  lines.push("[3/4] Test");
  while (lines.length < BIG_LINES - 2) lines.push(`tick ${lines.length}`);
  lines.push("[4/4] Deploy", "deploy failed: the end");
  return { lines, error, step2, step3 };
}

Deno.test({
  name:
    "deployment log in Chromium: 100,000 lines virtualised, folding, search, #L<n>, copy, switches, times",
  ignore: CHROMIUM.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    const dir = await Deno.makeTempDir({ prefix: "shiplog_log_view_" });
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    const big = bigLog();
    const finished = deploymentRecord({
      status: "failed",
      startedAt: "2026-11-24T08:00:01.000Z",
      finishedAt: "2026-11-24T08:03:01.000Z",
      exitCode: 1,
      reason: "exited with code 1",
    });
    const neverRan = deploymentRecord({
      status: "cancelled",
      finishedAt: "2026-11-24T08:00:01.000Z",
      cancelledBy: "alice",
      createdAt: "2026-11-24T08:00:00.000Z",
    });
    await Deno.writeTextFile(join(dir, `${finished.id}.json`), JSON.stringify(finished));
    await Deno.writeTextFile(join(dir, `${finished.id}.log`), big.lines.join("\n") + "\n");
    await Deno.writeTextFile(join(dir, `${neverRan.id}.json`), JSON.stringify(neverRan));
    // Cancelled in step 2 of 3.
    const cancelled = deploymentRecord({
      status: "cancelled",
      startedAt: "2026-11-24T08:00:01.000Z",
      finishedAt: "2026-11-24T08:00:09.000Z",
      cancelledBy: "alice",
    });
    await Deno.writeTextFile(join(dir, `${cancelled.id}.json`), JSON.stringify(cancelled));
    await Deno.writeTextFile(join(dir, `${cancelled.id}.log`), "[1/3] Build\nbuilt\n[2/3] Test\ntesting\n");
    // The deploy command: with the file `live` in its directory, lines for a while; else three timed steps,
    // a line to stderr, step 2 waiting (up to 10 s) for the file `go`, and a failure.
    const live = join(dir, "live");
    const go = join(dir, "go");
    const command =
      `if [ -e '${live}' ]; then rm '${live}'; i=1; while [ $i -le 3000 ]; do echo "live $i"; ` +
      `[ $((i % 100)) -eq 0 ] && sleep 0.05; i=$((i+1)); done; echo "needle at the end"; exit 0; fi; ` +
      `echo "[1/3] Build"; echo "::group::Compile"; echo "cc a.c"; echo "::endgroup::"; sleep 1.1; ` +
      `echo "[2/3] Test"; echo "oops on stderr" >&2; ` +
      `n=0; while [ ! -e '${go}' ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; rm -f '${go}'; ` +
      `echo "[3/3] Ship"; echo "ship failed"; exit 3`;

    let server: HttpTestServer | undefined;
    let browser: Browser | undefined;
    const deadline = setTimeout(() => {
      console.error(`log_view_browser_test: deadline of ${DEADLINE_MS} ms passed; tearing down`);
      browser?.close().catch(() => {});
    }, DEADLINE_MS);
    try {
      server = await serveHttp(dir, { command });
      const base = server.url;
      browser = await launchChromium(CHROMIUM, profile);
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      const errors: string[] = [];
      /**
       * Opens `path`; `onRequest` gets every request the page makes, to continue or answer it; `script` runs in
       * the page before its own.
       */
      const open = async (
        path: string,
        viewport: Viewport = { width: 1280, height: 800 },
        { onRequest, script }: { onRequest?: (request: HTTPRequest) => void; script?: string } = {},
      ) => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        if (onRequest) {
          await page.setRequestInterception(true);
          page.on("request", onRequest);
        }
        if (script) await page.evaluateOnNewDocument(script);
        await page.setViewport(viewport);
        await page.goto(new URL(path, base).href);
        return page;
      };
      const lineElements = (page: Page) => page.evaluate(`document.querySelectorAll("#log .line").length`);
      const ended = (page: Page) =>
        waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
      /** The number of the last line in view, and how far the view is from the end. */
      const atEnd = (page: Page) =>
        page.$eval("#log", (log) => log.scrollHeight - log.scrollTop - log.clientHeight < 40);
      const start = async (): Promise<string> => {
        const response = await fetch(new URL("start", base), {
          method: "POST",
          headers: { accept: "application/json" },
        });
        assert.equal(response.status, 201);
        return (await response.json()).id;
      };

      const page = await open(`deployment/${finished.id}`);
      /** A step, after which any page it left open is closed: a page left behind holds up the next steps. */
      const step = async (name: string, fn: () => Promise<void>) => {
        await t.step(name, fn);
        for (const other of await browser!.pages()) {
          if (other !== page && !other.isClosed()) await other.close().catch(() => {});
        }
      };
      await step(
        `a finished ${BIG_LINES.toLocaleString("en")}-line log shows its last line, virtualised`,
        async () => {
          await ended(page);
          await waitFor(page, `document.getElementById("L${BIG_LINES}") !== null`);
          await waitFor(
            page,
            `(() => { const log = document.getElementById("log");
          return log.scrollHeight - log.scrollTop - log.clientHeight < 40; })()`,
          );
          assert.equal(await text(page, "#line-count"), `${BIG_LINES.toLocaleString("en")} lines`);
          assert.equal(await text(page, `#L${BIG_LINES} .text`), "deploy failed: the end");
          // Every finished step is folded: a handful of rows. Opened, step 3 has 59,977 lines to show.
          assert.equal(Number(await lineElements(page)), 6);
          await page.click(`#L${big.step3} .fold`);
          await waitFor(page, `document.getElementById("L${big.step3 + 1}") !== null`);
          const count = Number(await lineElements(page));
          assert.ok(count > 10 && count < 5000, `${count} line elements`);
          await page.click("#jump");
          await waitFor(page, `document.getElementById("L${BIG_LINES - 2}") !== null`);
          assert.ok(await atEnd(page));
          // The last step failed: marked, and open; the steps before it are folded.
          assert.equal(await page.$eval("#L99999", (row) => row.classList.contains("failed")), true);
          assert.equal(await page.$eval("#L99999 .fold", (b) => b.getAttribute("aria-expanded")), "true");
          assert.equal(await text(page, "#L99999 .section-meta"), "1 line · failed");
          // The progress bar counts the finished steps: 3 of 4, in the failed state.
          assert.equal(await page.$eval("#progress", (bar) => bar.getAttribute("aria-valuenow")), "3");
          assert.equal(await page.$eval("#progress", (bar) => (bar as HTMLElement).dataset.state), "failed");
          assert.deepEqual(
            await page.$$eval(
              "#steps li",
              (items) => items.map((item) => (item as HTMLElement).dataset.state),
            ),
            ["done", "done", "done", "failed"],
          );
          // Scrolled to the top and back, the document still holds only rows near the view.
          await page.$eval("#log", (log) => log.scrollTo({ top: 0 }));
          await waitFor(page, `document.getElementById("L1") !== null`);
          assert.ok(Number(await lineElements(page)) < 5000);
          assert.equal(await text(page, "#follow-state"), "Paused");
          await page.click("#jump");
          await waitFor(page, `document.getElementById("L${BIG_LINES}") !== null`);
        },
      );

      await step(
        "a finished log is complete without a stream; a #L<n> it does not have is said at once",
        async () => {
          const requests: string[] = [];
          // The history comes in two pages, the second 600 ms after the first (the server's own answers, held
          // back), as a long one would: the page shows where it is meanwhile.
          const onRequest = async (request: HTTPRequest) => {
            const url = new URL(request.url());
            requests.push(url.pathname);
            if (url.pathname !== `/api/deployments/${finished.id}/lines`) return void request.continue();
            if (url.searchParams.get("after") !== "0") {
              await new Promise((resolve) => setTimeout(resolve, 600));
              return void request.continue();
            }
            const first = await fetch(new URL(`${url.pathname}?after=0&limit=50000`, base));
            request.respond({ status: 200, contentType: "application/json", body: await first.text() });
          };
          // Every state the steps summary shows while the page loads.
          const script = `document.addEventListener("DOMContentLoaded", () => {
            const steps = document.getElementById("steps");
            window.__summaries = [];
            new MutationObserver(() => window.__summaries.push(
              [...steps.children].map((item) => item.dataset.state).join(","),
            )).observe(steps, { attributes: true, childList: true, subtree: true });
          })`;
          const linked = await open(`deployment/${finished.id}#L${BIG_LINES + 5}`, undefined, {
            onRequest,
            script,
          });
          await ended(linked);
          // No step is called failed (nor the rest not reached) before its last line is read. (Steps 1 to 3 are
          // in the first page.)
          const summaries = new Set(await linked.evaluate(`window.__summaries`) as string[]);
          summaries.delete("");
          assert.deepEqual([...summaries], ["done,done,done,failed"]);
          // The record said it was over before the history was read: the history is all of it, with no stream
          // to be refused (204) and backed off from, "Reconnecting…", before the page could say so.
          assert.deepEqual(requests.filter((path) => path.startsWith("/events/")), []);
          await waitFor(linked, `!document.getElementById("message").hidden`);
          assert.equal(
            await text(linked, "#message"),
            `There is no line ${(BIG_LINES + 5).toLocaleString("en")}: this log has 100,000 lines.`,
          );
          assert.equal(await linked.$eval("#L99999", (row) => row.classList.contains("failed")), true);
          await linked.evaluate(`location.hash = "#L0"`);
          await waitFor(linked, `document.getElementById("message").textContent.includes("line 0")`);
          assert.equal(await text(linked, "#message"), "There is no line 0: lines are numbered from 1.");
          // A line that is there takes the message back.
          await linked.evaluate(`location.hash = "#L5"`);
          await waitFor(linked, `document.getElementById("message").hidden`);
          await linked.close();
        },
      );

      await step(
        "a search typed while the history loads finds its match when it comes; Enter goes to it, paused",
        async () => {
          // The history in two pages (the server's own answers); the second waits for the test.
          let release = () => {};
          const released = new Promise<void>((resolve) => release = resolve);
          const onRequest = async (request: HTTPRequest) => {
            const url = new URL(request.url());
            if (url.pathname !== `/api/deployments/${finished.id}/lines`) return void request.continue();
            if (url.searchParams.get("after") !== "0") {
              await released;
              return void request.continue();
            }
            const first = await fetch(new URL(`${url.pathname}?after=0&limit=50000`, base));
            request.respond({ status: 200, contentType: "application/json", body: await first.text() });
          };
          const loading = await open(`deployment/${finished.id}`, undefined, { onRequest });
          await waitFor(loading, `document.getElementById("L50000") !== null`);
          await loading.click("#search-input");
          // Line 60,001, in step 3 (folded once it is read), in the page not read yet.
          await loading.keyboard.type("tick 60000");
          await waitFor(loading, `document.getElementById("search-count").textContent === "No matches"`);
          release();
          await waitFor(loading, `document.getElementById("search-count").textContent === "1 of 1"`);
          await waitFor(loading, `document.getElementById("line-count").textContent === "100,000 lines"`);
          assert.equal(await text(loading, "#search-status"), "1 of 1", "said to a screen reader");
          // Enter goes to that first match (not past it, to the next), in its step, which opens.
          await loading.keyboard.press("Enter");
          await waitFor(loading, `document.querySelector("#L60001 mark.current") !== null`);
          assert.equal(await text(loading, "#search-count"), "1 of 1");
          assert.equal(await text(loading, "#follow-state"), "Paused");
          // A match in the last screen, gone to from far above: the view is at the end, and still paused.
          await loading.click("#search-input", { count: 3 });
          await loading.keyboard.type("the end");
          await waitFor(loading, `document.querySelector("#L${BIG_LINES} mark.current") !== null`);
          assert.ok(await atEnd(loading));
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.equal(await text(loading, "#follow-state"), "Paused");
          await loading.close();
        },
      );

      await step(
        "steps and groups fold and unfold with their line counts; marker lines are not shown",
        async () => {
          const step2 = `#L${big.step2}`;
          await page.$eval("#log", (log) => log.scrollTo({ top: 0 }));
          await waitFor(page, `document.querySelector("${step2} .fold") !== null`);
          assert.equal(await page.$eval(`${step2} .fold`, (b) => b.getAttribute("aria-expanded")), "false");
          assert.equal(await text(page, `${step2} .section-meta`), "40,008 lines");
          assert.equal(await page.$(`#L${big.step2 + 1}`), null, "inside the folded step");
          await page.click(`${step2} .fold`);
          await waitFor(
            page,
            `document.querySelector("${step2} .fold").getAttribute("aria-expanded") === "true"`,
          );
          // A group's first line shows its title, folded (it ended); its end marker is never a row.
          const group = `#L${big.step2 + 1}`;
          await waitFor(page, `document.querySelector("${group}") !== null`);
          assert.equal(await text(page, `${group} .text`), "Chunk 1");
          assert.equal(await page.$eval(`${group} .fold`, (b) => b.getAttribute("aria-expanded")), "false");
          assert.equal(await text(page, `${group} .section-meta`), "5,000 lines");
          assert.equal(await page.$(`#L${big.step2 + 5002}`), null, "the ::endgroup:: line");
          // The keyboard opens a group: its button is a real button.
          await page.focus(`${group} .fold`);
          await page.keyboard.press("Enter");
          await waitFor(
            page,
            `document.querySelector("${group} .fold").getAttribute("aria-expanded") === "true"`,
          );
          assert.equal(await text(page, `#L${big.step2 + 2} .text`), "compile unit 1.1");
          await page.click(`${step2} .fold`);
          await waitFor(page, `document.querySelector("#L${big.step2 + 2}") === null`);
          assert.ok(Number(await lineElements(page)) < 5000);
          // A focused button whose row scrolls out of the document leaves the focus on the log, which the
          // keys go on scrolling, not on the page's body.
          await page.focus(`${step2} .fold`);
          await page.$eval("#log", (log) => log.scrollTo({ top: log.scrollHeight }));
          await waitFor(page, `document.querySelector("${step2}") === null`);
          await waitFor(page, `document.activeElement?.id === "log"`);
        },
      );

      await step("search finds a line inside a folded step, opens it, and says 1 of 1", async () => {
        await page.keyboard.press("/");
        assert.equal(await page.evaluate(`document.activeElement.id`), "search-input");
        await page.keyboard.type("disk full");
        await waitFor(page, `document.getElementById("search-count").textContent === "1 of 1"`);
        await waitFor(page, `document.querySelector("#L${big.error} mark.current") !== null`);
        assert.equal(await text(page, `#L${big.error} mark.current`), "disk full");
        // Its step and its group opened: the lines around it are rows.
        await waitFor(page, `document.getElementById("L${big.error - 1}") !== null`);
        const inView = await page.$eval(`#L${big.error}`, (row) => {
          const box = row.getBoundingClientRect();
          const log = document.getElementById("log")!.getBoundingClientRect();
          return box.top >= log.top && box.bottom <= log.bottom;
        });
        assert.equal(inView, true, "the match is scrolled into view");
        await page.keyboard.press("Escape");
        assert.equal(await page.evaluate(`document.activeElement.id`), "log");
      });

      await step(
        "search counts, and Enter, Shift+Enter and the buttons move through the matches",
        async () => {
          await page.click("#search-input", { count: 3 });
          // Capitals make it case-sensitive: "Chunk" is in the group titles, "CHUNK" nowhere. A new search
          // starts at what is in view (group 3, where "disk full" was): its first match is "Chunk 4".
          await page.keyboard.type("Chunk");
          await waitFor(page, `document.getElementById("search-count").textContent === "4 of 8"`);
          await page.keyboard.press("Enter");
          await waitFor(page, `document.getElementById("search-count").textContent === "5 of 8"`);
          await page.keyboard.down("Shift");
          await page.keyboard.press("Enter");
          await page.keyboard.press("Enter");
          await page.keyboard.up("Shift");
          await waitFor(page, `document.getElementById("search-count").textContent === "3 of 8"`);
          await page.click("#search-next");
          await waitFor(page, `document.getElementById("search-count").textContent === "4 of 8"`);
          // Both ways round: before the first match comes the last.
          await page.click("#search-previous");
          await page.click("#search-previous");
          await page.click("#search-previous");
          await page.click("#search-previous");
          await waitFor(page, `document.getElementById("search-count").textContent === "8 of 8"`);
          await page.click("#search-next");
          await waitFor(page, `document.getElementById("search-count").textContent === "1 of 8"`);
          await page.click("#search-input", { count: 3 });
          await page.keyboard.type("CHUNK");
          await waitFor(page, `document.getElementById("search-count").textContent === "No matches"`);
          assert.equal(await page.$eval("#search-next", (b) => (b as HTMLButtonElement).disabled), true);
          // Enter before the search's pause (typed and pressed in one go, as a fast typist does) searches at
          // once and stays on the first match (from "Chunk 1" in view).
          await page.evaluate(`(() => {
            const input = document.getElementById("search-input");
            input.value = "Chunk";
            input.dispatchEvent(new Event("input", { bubbles: true }));
            input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
          })()`);
          await waitFor(page, `document.getElementById("search-count").textContent === "1 of 8"`);
          await page.keyboard.press("Enter");
          await waitFor(page, `document.getElementById("search-count").textContent === "2 of 8"`);
          // Lowercase is case-insensitive: "deploy" finds "Deploying", "[4/4] Deploy" and "deploy failed".
          await page.click("#search-input", { count: 3 });
          await page.keyboard.type("deploy");
          await waitFor(page, `/^\\d of 3$/.test(document.getElementById("search-count").textContent)`);
        },
      );

      await step("Only matching lines shows the matching lines alone", async () => {
        await page.click("#only-matching");
        await waitFor(page, `document.querySelectorAll("#log .line").length === 3`);
        assert.deepEqual(
          await page.$$eval("#log .line", (rows) => rows.map((row) => row.id)),
          ["L1", `L${BIG_LINES - 1}`, `L${BIG_LINES}`],
        );
        await page.click("#only-matching");
        await waitFor(page, `document.querySelectorAll("#log .line").length > 3`);
        await page.click("#search-input", { count: 3 });
        await page.keyboard.press("Backspace");
        await waitFor(page, `document.getElementById("search-count").textContent === ""`);
        assert.equal(await page.$("#log mark"), null);
      });

      await step("#L<n> into a folded step opens it and highlights the line", async () => {
        const linked = await open(`deployment/${finished.id}#L${big.step3 + 10}`);
        await waitFor(
          linked,
          `document.getElementById("L${big.step3 + 10}")?.classList.contains("highlight")`,
        );
        // The step's header is one of the rows drawn around the line, and says the step is open.
        await waitFor(
          linked,
          `document.querySelector("#L${big.step3} .fold")?.getAttribute("aria-expanded") === "true"`,
        );
        // (Waited for: the rest of the history may still be coming, and the rows be drawn anew at the next frame.)
        await waitFor(
          linked,
          `document.querySelector("#L${big.step3 + 10} .text")?.textContent === "tick ${big.step3 + 9}"`,
        );
        assert.equal(await text(linked, "#follow-state"), "Paused");
        // The steps before it ended while the history loaded, with nobody reading them: folded.
        assert.equal(
          await linked.$eval(`#L${big.step2} .fold`, (b) => b.getAttribute("aria-expanded")),
          "false",
        );
        // Copying a selection of rows gives their text, without line numbers.
        const copied = await linked.evaluate(`(() => {
          const range = document.createRange();
          range.setStartBefore(document.getElementById("L${big.step3 + 10}"));
          range.setEndAfter(document.getElementById("L${big.step3 + 12}"));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          return getSelection().toString();
        })()`);
        assert.equal(
          String(copied).trimEnd(),
          [big.step3 + 9, big.step3 + 10, big.step3 + 11].map((n) => `tick ${n}`).join("\n"),
        );
        // A selection from that line to one 4,969 lines below, far out of the document when it began: its
        // first row stays in the document, and Ctrl+C copies every line between, from the log.
        const from = big.step3 + 10;
        const to = from + 4969;
        await linked.evaluate(`(() => {
          const text = document.querySelector("#L${from} .text").firstChild;
          getSelection().setBaseAndExtent(text, 0, text, 4);
          document.addEventListener("copy", (event) => {
            window.__copied = event.clipboardData.getData("text/plain");
          });
        })()`);
        await new Promise((resolve) => setTimeout(resolve, 100)); // selectionchange
        await linked.evaluate(`location.hash = "#L${to}"`);
        await waitFor(linked, `document.getElementById("L${to}")?.classList.contains("highlight")`);
        assert.equal(await linked.$(`#L${from + 100}`), null, "far from the view");
        assert.notEqual(await linked.$(`#L${from}`), null, "the selection's first row is kept");
        await linked.evaluate(`getSelection().extend(document.querySelector("#L${to} .text").firstChild, 4)`);
        await linked.keyboard.down("Control");
        await linked.keyboard.press("KeyC");
        await linked.keyboard.up("Control");
        await waitFor(linked, `typeof window.__copied === "string"`);
        const far = String(await linked.evaluate(`window.__copied`)).split("\n");
        assert.equal(far.length, 4970);
        assert.deepEqual([far[0], far[1], far.at(-2), far.at(-1)], [
          `tick ${from - 1}`,
          `tick ${from}`,
          `tick ${to - 2}`,
          "tick",
        ]);
        await linked.evaluate(`getSelection().removeAllRanges()`);
        // A link to a line inside a folded group, by a click on a link within the page.
        await linked.evaluate(`location.hash = "#L${big.error}"`);
        await waitFor(linked, `document.getElementById("L${big.error}")?.classList.contains("highlight")`);
        // A step's link in the summary goes to its first line, again after the reader scrolled away.
        for (let time = 1; time <= 2; time++) {
          await linked.$eval("#log", (log) => log.scrollTo({ top: 0 }));
          await waitFor(linked, `document.getElementById("L99999") === null`);
          await linked.click("#steps li:nth-child(4) a");
          await waitFor(linked, `document.getElementById("L99999")?.classList.contains("highlight")`);
          assert.equal(new URL(linked.url()).hash, "#L99999");
        }
        await linked.close();
      });

      await step("Wrap lines and Timestamps switch, and are remembered", async () => {
        assert.equal(await page.$eval("#wrap", (box) => (box as HTMLInputElement).checked), true);
        await page.click("#wrap");
        assert.equal(await page.$eval("#log", (log) => log.classList.contains("nowrap")), true);
        await page.click("#timestamps");
        await waitFor(page, `document.querySelector("#log .line .ts") !== null`);
        // No times kept for this log (written before shiplog kept them): a dash, saying so on hover.
        assert.equal(await text(page, "#log .line .ts"), "–");
        const again = await open(`deployment/${finished.id}`);
        await waitFor(again, `document.querySelector("#log .line .ts") !== null`);
        assert.equal(await again.$eval("#wrap", (box) => (box as HTMLInputElement).checked), false);
        assert.equal(await again.$eval("#log", (log) => log.classList.contains("nowrap")), true);
        assert.match(
          await again.$eval("#download-plain", (a) => a.getAttribute("href") ?? ""),
          /timestamps=1/,
        );
        await again.click("#wrap");
        await again.click("#timestamps");
        await waitFor(again, `document.querySelector("#log .line .ts") === null`);
        await again.close();
        await page.close();
      });

      await step(
        "on a phone, the failing line is found by touch: search, next, the step's link",
        async () => {
          const phone = await open(`deployment/${finished.id}`, {
            width: 390,
            height: 844,
            isMobile: true,
            hasTouch: true,
            deviceScaleFactor: 2,
          });
          await ended(phone);
          const fits = () =>
            phone.evaluate(`document.documentElement.scrollWidth <= document.documentElement.clientWidth`);
          assert.equal(await fits(), true, "nothing wider than the screen");
          // The bar's label is whole, under the bar, not cut short.
          const label = await phone.$eval(
            "#progress-label",
            (element) => element.scrollWidth <= element.clientWidth,
          );
          assert.equal(label, true);
          await phone.tap("#search-input");
          await phone.keyboard.type("disk full");
          await waitFor(phone, `document.getElementById("search-count").textContent === "1 of 1"`);
          await waitFor(phone, `document.querySelector("#L${big.error} mark.current") !== null`);
          const visible = (selector: string) =>
            phone.$eval(selector, (element) => {
              const box = element.getBoundingClientRect();
              const log = document.getElementById("log")!.getBoundingClientRect();
              return box.top >= log.top && box.bottom <= log.bottom && box.bottom <= innerHeight;
            });
          assert.equal(await visible(`#L${big.error}`), true, "the match is on screen");
          await phone.tap("#search-next");
          await waitFor(phone, `document.querySelector("#L${big.error} mark.current") !== null`);
          // The failed step's link in the summary, tapped, shows its line.
          await phone.tap("#steps li[data-state='failed'] a");
          await waitFor(phone, `document.getElementById("L99999")?.classList.contains("highlight")`);
          assert.equal(await visible("#L99999"), true);
          assert.equal(await fits(), true);
          await screenshots(phone, "deployment-log-search");
          await phone.close();
        },
      );

      await step(
        "a run with times: durations, stderr marked, the summary, the progress and the icon; failed, its last line in view",
        async () => {
          const id = await start();
          const run = await open(`deployment/${id}`);
          await waitFor(run, `document.querySelector("#steps li[data-state='running']") !== null`);
          assert.match(
            await run.$eval('link[rel="icon"]', (link) => decodeURIComponent(link.getAttribute("href")!)),
            /<circle[^>]*#2563eb/,
            "a blue dot while it runs",
          );
          await waitFor(run, `document.querySelector("#progress").getAttribute("aria-valuenow") === "1"`);
          assert.match(await text(run, "#progress-label"), /^1 of 3 done; step 2 of 3: Test$/);
          // The running step's header is drawn anew with each batch (its count grows): its button, focused,
          // keeps the focus.
          await waitFor(run, `document.getElementById("L6") !== null`);
          await run.focus("#L5 .fold");
          await run.evaluate(`window.__header = document.getElementById("L5")`);
          const appended = await fetch(new URL(`api/deployments/${id}/log`, base), {
            method: "POST",
            headers: { "content-type": "text/plain" },
            body: "appended 1\nappended 2\nappended 3\n",
          });
          assert.equal(appended.status, 200, await appended.text());
          await waitFor(
            run,
            `document.querySelector("#L5 .section-meta")?.textContent.startsWith("4 lines")`,
          );
          assert.equal(await run.evaluate(`document.activeElement?.closest(".line")?.id`), "L5");
          assert.equal(await run.evaluate(`document.activeElement?.className`), "fold");
          // Only its count changed: the same element, so a screen reader on its button hears nothing new.
          assert.equal(await run.evaluate(`document.getElementById("L5") === window.__header`), true);
          // The summary's running step: its duration is written in place each second, and its link, focused,
          // keeps the focus.
          await run.focus("#steps li:nth-child(2) a");
          await waitFor(
            run,
            `/^[1-9]/.test(document.querySelector("#steps li:nth-child(2) .step-duration").textContent)`,
          );
          assert.equal(await run.evaluate(`document.activeElement?.closest("li")?.dataset.state`), "running");
          assert.equal(await run.evaluate(`document.activeElement?.className`), "step-name");
          await Deno.writeTextFile(go, "");
          await ended(run);
          await waitFor(run, `document.getElementById("status").textContent === "failed"`);
          await waitFor(run, `!document.getElementById("reason").hidden`);
          assert.deepEqual(
            await run.$$eval(
              "#steps li",
              (items) => items.map((item) => (item as HTMLElement).dataset.state),
            ),
            ["done", "done", "failed"],
          );
          assert.equal(await run.$eval("#progress", (bar) => bar.getAttribute("aria-valuenow")), "2");
          assert.equal(await run.$eval("#steps li:first-child a", (a) => a.getAttribute("href")), "#L1");
          // Step 1 lasted its sleep of 1.1 s (at least): from the times of its first line and of step 2's.
          assert.match(await text(run, "#steps li:first-child .step-duration"), /^[1-9]\d*s$/);
          // And its header in the log says its lines (the group's title and its line) and that duration.
          assert.match(await text(run, "#L1 .section-meta"), /^2 lines · [1-9]\d*s$/);
          assert.match(
            await run.$eval('link[rel="icon"]', (link) => decodeURIComponent(link.getAttribute("href")!)),
            /<circle[^>]*#cf222e/,
            "a red dot once it failed",
          );
          // The line the command wrote to stderr is marked; the others not.
          await run.$eval("#log", (log) => log.scrollTo({ top: 0 }));
          await run.click("#L5 .fold");
          await waitFor(run, `document.getElementById("L6") !== null`);
          const marked = await run.$$eval(
            "#log .line.stderr .text",
            (rows) => rows.map((row) => row.textContent),
          );
          assert.deepEqual(marked, ["oops on stderr"]);
          // Timestamps: local HH:MM:SS, the full date and the offset from the start on hover.
          await run.click("#timestamps");
          await waitFor(run, `document.querySelector("#L1 .ts") !== null`);
          assert.match(await text(run, "#L1 .ts"), /^\d\d:\d\d:\d\d$/);
          assert.match(
            await run.$eval("#L6 .ts", (time) => time.getAttribute("title") ?? ""),
            /after the start$/,
          );
          // With Timestamps on, the page's Download links give each line's time before it, in ISO 8601.
          const plainHref = await run.$eval("#download-plain", (a) => a.getAttribute("href") ?? "");
          const timed = await (await fetch(new URL(plainHref, base))).text();
          assert.match(timed.split("\n")[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[1\/3\] Build$/);
          await run.click("#timestamps");
          // The reason appeared above the log: the last line is still in view once it follows again.
          await run.click("#jump");
          await waitFor(run, `document.getElementById("L11") !== null`);
          await waitFor(
            run,
            `(() => { const log = document.getElementById("log");
            return log.scrollHeight - log.scrollTop - log.clientHeight < 40; })()`,
          );
          assert.equal(await text(run, "#follow-state"), "Following");
          await screenshots(run, "deployment-steps");
          await run.close();
        },
      );

      await step("a deployment that ends while its history loads ends without a reconnection", async () => {
        const id = await start();
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        // The history is held back until the deployment has ended: the page knows it running, reads its
        // history, and then asks the stream for what follows, which the server answers with 204.
        const held: (() => void)[] = [];
        let holding = true;
        await page.setRequestInterception(true);
        page.on("request", (request) => {
          if (holding && new URL(request.url()).pathname === `/api/deployments/${id}/lines`) {
            held.push(() => void request.continue());
          } else {
            void request.continue();
          }
        });
        await page.evaluateOnNewDocument(`document.addEventListener("DOMContentLoaded", () => {
          const connection = document.getElementById("connection");
          window.__states = [];
          new MutationObserver(() => window.__states.push(connection.dataset.state))
            .observe(connection, { attributes: true, attributeFilter: ["data-state"] });
        })`);
        await page.goto(new URL(`deployment/${id}`, base).href);
        await waitFor(page, `document.getElementById("status").textContent === "running"`);
        const deadline = Date.now() + WAIT_MS;
        while (held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(held.length, 1, "the history was asked for");
        await Deno.writeTextFile(go, "");
        const status = async () =>
          (await (await fetch(new URL(`api/deployments/${id}`, base), {
            headers: { accept: "application/json" },
          })).json()).status;
        while ((await status()) !== "failed" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        holding = false;
        for (const release of held) release();
        await ended(page);
        await waitFor(page, `document.getElementById("status").textContent === "failed"`);
        assert.deepEqual(
          await page.evaluate(`window.__states.filter((state) => state === "reconnecting")`),
          [],
          "never said Reconnecting",
        );
        assert.deepEqual(
          await page.$$eval("#steps li", (items) => items.map((item) => (item as HTMLElement).dataset.state)),
          ["done", "done", "failed"],
        );
        await page.close();
      });

      await step("Download links give the log and its plain text as attachments", async () => {
        const page = await open(`deployment/${finished.id}`);
        const hrefs = await page.$$eval(
          "#download-log, #download-plain",
          (links) => links.map((link) => link.getAttribute("href")),
        );
        assert.deepEqual(hrefs, [
          `/deployments/${finished.id}/log?download=1`,
          `/deployments/${finished.id}/log?download=1&plain=1`,
        ]);
        for (const [href, escapes] of [[hrefs[0]!, true], [hrefs[1]!, false]] as const) {
          const response = await fetch(new URL(href, base));
          assert.match(response.headers.get("content-disposition") ?? "", /^attachment; filename="shiplog-/);
          const body = await response.text();
          assert.equal(body.includes("\x1b["), escapes);
          assert.ok(body.includes("disk full"));
        }
        await page.close();
      });

      await step("a deployment cancelled in step 2 of 3 says so, and step 3 was not reached", async () => {
        const page = await open(`deployment/${cancelled.id}`);
        await ended(page);
        await waitFor(page, `document.querySelectorAll("#steps li").length === 3`);
        assert.deepEqual(
          await page.$$eval("#steps li", (items) => items.map((item) => (item as HTMLElement).dataset.state)),
          ["done", "cancelled", "not reached"],
        );
        assert.equal(await text(page, "#progress-label"), "Cancelled in step 2 of 3: Test");
        assert.equal(await page.$eval("#progress", (bar) => bar.getAttribute("aria-valuenow")), "1");
        // The step it stopped in is open, marked; the one before it folded.
        assert.equal(await page.$eval("#L3 .fold", (b) => b.getAttribute("aria-expanded")), "true");
        assert.equal(await page.$eval("#L1 .fold", (b) => b.getAttribute("aria-expanded")), "false");
        await page.close();
      });

      await step(
        "a deployment cancelled while queued says it never ran, and nothing of following",
        async () => {
          const page = await open(`deployment/${neverRan.id}`);
          await ended(page);
          await waitFor(page, `document.getElementById("line-count").textContent === "It never ran"`);
          assert.equal(await page.$eval("#follow-state", (element) => (element as HTMLElement).hidden), true);
          assert.equal(await text(page, "#log-empty"), "No output: it ended before it started.");
          assert.equal(await text(page, "#elapsed-label"), "Waited");
          await page.close();
        },
      );

      await step(
        "a live log is followed to its end, searched as it comes, with few line elements",
        async () => {
          await Deno.writeTextFile(live, ""); // the deploy command removes it
          const id = await start();
          const page = await open(`deployment/${id}`);
          await waitFor(page, `document.getElementById("line-count").textContent.endsWith(" lines")`);
          await page.click("#search-input");
          await page.keyboard.type("needle");
          await waitFor(page, `document.getElementById("search-count").textContent === "No matches"`);
          await page.focus("#log");
          await page.click("#jump").catch(() => {}); // the search moved nothing: it may still follow
          await ended(page);
          await waitFor(page, `document.getElementById("L3001") !== null`);
          await waitFor(page, `document.getElementById("search-count").textContent === "1 of 1"`);
          assert.ok(await atEnd(page), "followed to the last line");
          assert.ok(Number(await lineElements(page)) < 5000);
          await waitFor(page, `document.getElementById("status").textContent === "succeeded"`);
          assert.match(
            await page.$eval('link[rel="icon"]', (link) => decodeURIComponent(link.getAttribute("href")!)),
            /<circle[^>]*#1a7f37/,
            "a green dot once it succeeded",
          );
          await page.close();
        },
      );

      assert.deepEqual(errors, [], "no page threw an error");
    } finally {
      clearTimeout(deadline);
      await browser?.close().catch(() => {});
      await server?.[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
