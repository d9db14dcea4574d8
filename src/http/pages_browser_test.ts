/// <reference lib="dom" />
// The pages in a real browser: Debian's Chromium, driven by puppeteer-core, against the real server spawned
// as a subprocess (`main.ts --port 0`) with a deploy command that writes progress lines, ANSI colours and a
// line of HTML. Screenshots of both pages (desktop and phone) go to test-output/screenshots/.
//
// Without /usr/bin/chromium the test is skipped with a loud notice, except under CI=true, where a missing
// browser fails it.
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";
import { RedisConnection } from "../redis/redis_connection.ts";
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
import { serveHttp } from "../testing/http_test_server.ts";
import { REDIS_TEST, startRedisServer } from "../testing/redis_server.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";

const CHROMIUM = chromium("pages_browser_test.ts");
const REPO = new URL("../..", import.meta.url);
/**
 * A backstop for the whole test (alone it takes about 45 s; a loaded machine several times that), after which
 * the browser and server are torn down. In the suite, the watchdog of `deno task test` stops a stalled step
 * sooner.
 */
const DEADLINE_MS = 300_000;
/** Lines of the "big" deployment, drawn while the test checks the page stays responsive. */
const BIG_LINES = 100_000;
/** The slowest drawing of the big log that passes, even on a loaded machine: alone, about 8,000 lines/s. */
const MIN_LINES_PER_SECOND = 1000;
/** Lines of the "wrap" deployment: long enough to wrap on a phone, arriving 200 at a time. */
const WRAP_LINES = 5_000;

// The deploy command: three `[n/3]` steps about a second apart, colours, a terminal progress overwrite (CR),
// and a line of HTML that would run script if it were inserted as markup. With the file `big` in its
// directory, it writes BIG_LINES numbered lines at once instead (no steps, so that none folds); with `wrap`, WRAP_LINES long lines in bursts;
// with `blank`, a few lines with blank ones between them; with `badges`, text on coloured backgrounds.
const DEPLOY_SCRIPT = `#!/bin/sh
if [ -e "$(dirname "$0")/big" ]; then
  rm "$(dirname "$0")/big"
  printf 'Flooding\\n'
  i=1; while [ $i -le ${BIG_LINES - 2} ]; do echo "line $i of the flood"; i=$((i+1)); done
  printf 'Flooded\\n'
  exit 0
fi
if [ -e "$(dirname "$0")/badges" ]; then
  rm "$(dirname "$0")/badges"
  printf '\\033[30;42m PASS \\033[0m \\033[37;41m FAIL \\033[0m \\033[43m warn \\033[0m \\033[7;31m inverse \\033[0m \\033[1;97;44m info \\033[0m \\033[40m black \\033[0m \\033[30;7m inverse black \\033[0m \\033[37;7m inverse white \\033[0m\\n'
  exit 0
fi
if [ -e "$(dirname "$0")/blank" ]; then
  rm "$(dirname "$0")/blank"
  printf 'first\\n\\n\\nsecond\\n\\nthird\\n'
  exit 0
fi
if [ -e "$(dirname "$0")/wrap" ]; then
  rm "$(dirname "$0")/wrap"
  i=1; while [ $i -le ${WRAP_LINES} ]; do
    echo "$i lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore"
    [ $((i % 200)) -eq 0 ] && sleep 0.05
    i=$((i+1))
  done
  exit 0
fi
printf 'Deploying \\033[1mshiplog\\033[0m to \\033[36mstaging\\033[0m\\n'
printf '[1/3] Building image\\n'
printf '\\033[32mok\\033[0m \\033[1;31mbold red\\033[0m \\033[38;5;208morange\\033[0m \\033[2Kerased-code\\n'
printf '%s\\n' '<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>'
sleep 1
printf '[2/3] Pushing image\\n'
printf 'uploading 10%%\\ruploading 100%%\\n'
sleep 1
printf '[3/3] Rolling out\\n'
sleep 1
printf '\\033[1;32mdone\\033[0m\\n'
`;

Deno.test({
  name:
    "pages in Chromium: start, live log, reload, HTML as text, ANSI, cancel, live list, --keep, #L<n>, big log",
  ignore: CHROMIUM.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    const dir = await Deno.makeTempDir({ prefix: "shiplog_pages_" });
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    await Deno.writeTextFile(`${dir}/deploy.sh`, DEPLOY_SCRIPT);
    let server: Server | undefined;
    let browser: Browser | undefined;
    const deadline = setTimeout(() => {
      console.error(`pages_browser_test: deadline of ${DEADLINE_MS} ms passed; tearing down`);
      browser?.close().catch(() => {});
      server?.child.kill("SIGKILL");
    }, DEADLINE_MS);
    try {
      server = await startServer(dir, `sh ${dir}/deploy.sh`);
      browser = await launchChromium(CHROMIUM, profile);
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      const base = server.url;
      const errors: string[] = [];
      const open = async (url: string, viewport = { width: 1280, height: 800 }) => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        await page.setViewport(viewport);
        await page.goto(url);
        return page;
      };

      let firstId = "";
      await t.step(
        "Start on the home page redirects to the deployment, whose log and list update live",
        async () => {
          const home = await open(base);
          // No deployment yet: the list says so.
          assert.equal(await home.$eval(".empty", (element) => getComputedStyle(element).display), "block");
          await home.screenshot({ path: new URL("home-empty-desktop.png", SCREENSHOTS).pathname });
          await waitFor(home, `document.querySelector("#connection").dataset.state === "live"`);
          const page = await open(base);
          await Promise.all([page.waitForNavigation(), page.click("#start")]);
          const match = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url());
          assert.ok(match, `redirected to ${page.url()}`);
          firstId = match[1];

          // The first lines arrive while the deployment is still running: they are streamed, not loaded at the end.
          await waitFor(page, `document.getElementById("L2") !== null`);
          assert.equal(await text(page, "#status"), "running");
          assert.equal(await text(page, "#connection"), "Live");
          assert.match(await page.title(), /Running/);
          // The home page, open all along, shows the new deployment running without a reload.
          await waitFor(
            home,
            `document.querySelector('li[data-id="${firstId}"]')?.dataset.status === "running"`,
          );

          await waitFor(page, `document.querySelector("#status").textContent === "succeeded"`);
          await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
          // The steps that finished before the last are folded; step 2 opens to show its lines.
          await waitFor(
            page,
            `document.querySelector("#L5 .fold")?.getAttribute("aria-expanded") === "false"`,
          );
          assert.equal(await page.$("#L6"), null);
          await page.click("#L5 .fold");
          await waitFor(page, `document.getElementById("L6") !== null`);
          assert.equal(
            await page.$eval("#L5 .fold", (button) => button.getAttribute("aria-expanded")),
            "true",
          );
          const bar = await page.$eval("#progress", (element) => ({
            now: element.getAttribute("aria-valuenow"),
            max: element.getAttribute("aria-valuemax"),
            state: element.getAttribute("data-state"),
            width: (element.firstElementChild as HTMLElement).style.width,
          }));
          assert.deepEqual(bar, { now: "3", max: "3", state: "succeeded", width: "100%" });
          assert.match(await text(page, "#elapsed-label"), /Took/);
          assert.match(await text(page, "#elapsed"), /^\d+s$/);
          assert.match(await page.title(), /Succeeded/);
          assert.equal(
            await page.$("#cancel:not([hidden])"),
            null,
            "Cancel is hidden once the deployment ended",
          );
          // A CR overwrite shows its last segment, as a terminal would.
          assert.equal(await text(page, "#L6 .text"), "uploading 100%");

          await waitFor(
            home,
            `document.querySelector('li[data-id="${firstId}"]')?.dataset.status === "succeeded" &&
           document.querySelector('li[data-id="${firstId}"] .badge').textContent === "succeeded"`,
          );
          await screenshots(home, "home");
          await screenshots(page, "deployment");
          await home.close();
          await page.close();
        },
      );

      await t.step("a log line of HTML and script is shown as text and runs nothing", async () => {
        // Its step is folded: the link to the line opens it.
        const page = await open(`${base}deployment/${firstId}#L4`);
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        await waitFor(page, `document.getElementById("L4") !== null`);
        assert.equal(
          await text(page, "#L4 .text"),
          "<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>",
        );
        assert.equal(await page.evaluate(`typeof window.__pwned`), "undefined");
        assert.equal(await page.$("#log img, #log script"), null);
        await page.close();
      });

      await t.step("ANSI colours and bold become styled spans; other escape codes are stripped", async () => {
        const page = await open(`${base}deployment/${firstId}#L3`);
        await waitFor(page, `document.getElementById("L3") !== null`);
        const spans = await page.$$eval("#L3 .text span", (elements) =>
          elements.map((element) => ({
            text: element.textContent,
            className: element.className,
            color: getComputedStyle(element).color,
            weight: getComputedStyle(element).fontWeight,
          })));
        assert.deepEqual(spans.map((span) => [span.text, span.className]), [
          ["ok", "ansi-fg-2"],
          ["bold red", "ansi-bold ansi-fg-1"],
          ["orange", ""],
        ]);
        assert.equal(spans[1].weight, "700");
        assert.equal(spans[2].color, "rgb(255, 135, 0)");
        const plain = await page.$eval("#L3 .text", (element) => getComputedStyle(element).color);
        assert.notEqual(spans[0].color, plain, "a coloured span is drawn in another colour than plain text");
        assert.equal(await text(page, "#L3 .text"), "ok bold red orange erased-code");
        await page.close();
      });

      await t.step(
        "#L<n> scrolls to that line and highlights it; clicking a number selects its line",
        async () => {
          const page = await open(`${base}deployment/${firstId}#L5`, { width: 1280, height: 300 });
          await waitFor(page, `document.getElementById("L5")?.classList.contains("highlight") === true`);
          assert.equal(await page.$$eval(".line.highlight", (elements) => elements.length), 1);
          await page.click("#L2 .ln");
          assert.equal(new URL(page.url()).hash, "#L2");
          // The rows are drawn again at the next frame.
          await waitFor(
            page,
            `[...document.querySelectorAll(".line.highlight")].map((e) => e.id).join() === "L2"`,
          );
          // A line past the end of the finished log is said to be missing, not silently ignored.
          const past = await open(`${base}deployment/${firstId}#L99999`);
          await waitFor(past, `!document.getElementById("message").hidden`);
          assert.match(await text(past, "#message"), /^There is no line 99,999: this log has 8 lines\.$/);
          // And so is one asked for later, by a link within the page.
          await past.evaluate(`location.hash = "#L777"`);
          await waitFor(past, `document.getElementById("message").textContent.includes("777")`);
          await past.close();
          // Tab from the log goes to a step's disclosure control or out of the log: no line number of a long
          // log is a Tab stop of its own.
          await page.focus("#log");
          await page.keyboard.press("Tab");
          const focused = await page.evaluate(
            `document.activeElement.closest("#log") === null || document.activeElement.classList.contains("fold")`,
          );
          assert.equal(focused, true, "Tab went to a line of the log");
          await page.close();
        },
      );

      for (const javaScript of [true, false]) {
        const how = javaScript ? "" : ", without JavaScript,";
        await t.step(`a double click on Start${how} with a slow network, starts one deployment`, async () => {
          const page = await browser!.newPage();
          page.setDefaultTimeout(WAIT_MS);
          await page.setJavaScriptEnabled(javaScript);
          await page.goto(base);
          if (javaScript) {
            await waitFor(page, `document.querySelector("#connection").dataset.state === "live"`);
          }
          const before = (await (await fetch(`${base}api/deployments`)).json()).length;
          const cdp = await page.createCDPSession();
          await cdp.send("Network.enable");
          await cdp.send("Network.emulateNetworkConditions", {
            offline: false,
            latency: 400,
            downloadThroughput: -1,
            uploadThroughput: -1,
          });
          const button = (await (await page.$("#start"))!.boundingBox())!;
          const navigated = page.waitForNavigation();
          // Two presses 100 ms apart: the first POST is still on its way when the second one is made.
          await page.mouse.click(button.x + 20, button.y + 10);
          await new Promise((resolve) => setTimeout(resolve, 100));
          await page.mouse.click(button.x + 20, button.y + 10);
          await navigated;
          assert.match(page.url(), /\/deployment\/[0-9a-f-]{36}$/);
          // A second POST would still be on its way: give it the latency's time to land.
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const after = (await (await fetch(`${base}api/deployments`)).json()).length;
          assert.equal(after - before, 1);
          await page.close();
        });
      }

      await t.step(
        "without JavaScript, a deployment's page shows its status and links to its raw log",
        async () => {
          const page = await browser!.newPage();
          await page.setJavaScriptEnabled(false);
          await page.goto(`${base}deployment/${firstId}`);
          assert.equal(await text(page, "#status"), "succeeded");
          assert.equal(await text(page, "#deployment-id"), firstId.slice(0, 8));
          await Promise.all([page.waitForNavigation(), page.click("#raw-log")]);
          assert.match(await page.$eval("body", (body) => body.textContent ?? ""), /Rolling out/);
          await page.close();
        },
      );

      await t.step("reloading mid-deployment shows every line once and keeps following", async () => {
        const id = await startDeployment(base);
        const page = await open(`${base}deployment/${id}`);
        await waitFor(page, `document.getElementById("L3") !== null`);
        assert.equal(await text(page, "#status"), "running");
        await page.reload();
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        const raw = await (await fetch(`${base}deployments/${id}/log`)).text();
        const expected = raw.split("\n").slice(0, -1).map((_, index) => `L${index + 1}`);
        assert.equal(expected.length, 8);
        await unfoldAll(page);
        const ids = (await rowsOf(page)).map(([number]) => `L${number}`);
        assert.deepEqual(ids, expected);
        assert.equal(await text(page, "#line-count"), `${expected.length} lines`);
        await page.close();
      });

      await t.step("when the stream is refused, the page retries on its own with backoff", async () => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        await page.setViewport({ width: 1280, height: 800 });
        // The first two requests for the record get a 503 (so the page does not know the deployment is over,
        // and opens the stream), and so do the first two for the stream, which makes EventSource give up for
        // good: the page tries again at once (a stream that ended as it opened is most often one whose
        // deployment just ended), then after a backoff.
        const streams: string[] = [];
        let records = 0;
        await page.setRequestInterception(true);
        page.on("request", (request) => {
          const path = new URL(request.url()).pathname;
          if (path === `/api/deployments/${firstId}` && ++records <= 2) {
            return void request.respond({ status: 503, body: "try later" });
          }
          if (!path.startsWith("/events/")) return void request.continue();
          streams.push(request.url());
          if (streams.length <= 2) return void request.respond({ status: 503, body: "try later" });
          return void request.continue();
        });
        await page.goto(`${base}deployment/${firstId}`);
        await waitFor(
          page,
          `document.querySelector("#connection").textContent.startsWith("Reconnecting in")`,
        );
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        await waitFor(page, `document.getElementById("line-count").textContent === "8 lines"`);
        // After the backoff the record says it is over: the lines are all there is, with no second stream.
        assert.equal(streams.length, 2);
        assert.equal(records, 3);
        await unfoldAll(page);
        assert.equal((await rowsOf(page)).length, 8);
        await page.close();
      });

      await t.step("Cancel stops a running deployment and the badge says so", async () => {
        const id = await startDeployment(base);
        const page = await open(`${base}deployment/${id}`);
        await waitFor(page, `document.querySelector("#status").textContent === "running"`);
        await waitFor(page, `document.getElementById("L2") !== null`);
        await page.screenshot({ path: new URL("deployment-running-desktop.png", SCREENSHOTS).pathname });
        await page.click("#cancel");
        // Cancel asks first (deployment_browser_test.ts checks the dialog itself).
        await waitFor(page, `document.querySelector("#cancel-dialog").open`);
        await page.click("#cancel-confirm");
        await waitFor(page, `document.querySelector("#status").textContent === "cancelled"`);
        assert.equal(await page.$eval("#status", (element) => element.className), "badge status-cancelled");
        assert.match(await page.title(), /Cancelled/);
        await waitFor(page, `document.querySelector("#cancel").hidden`);
        // The pressed button is gone: keyboard focus is on the log, not back at the page's start.
        assert.equal(await page.evaluate(`document.activeElement.id`), "log");
        const record = await (await fetch(`${base}api/deployments/${id}`)).json();
        // When it started, as a time element a reader's tools can read.
        assert.equal(
          await page.$eval("#started", (time) => (time as HTMLTimeElement).dateTime),
          record.startedAt,
        );
        assert.notEqual(await text(page, "#started"), "");
        assert.equal(record.status, "cancelled");
        await page.close();
      });

      await t.step(
        "connecting the home page's list moves no row, so its live region announces nothing",
        async () => {
          const page = await browser!.newPage();
          page.setDefaultTimeout(WAIT_MS);
          // Rows added to or removed from the list itself (not changes inside a row), from the first paint on.
          await page.evaluateOnNewDocument(`document.addEventListener("DOMContentLoaded", () => {
          window.__rowsMoved = 0;
          new MutationObserver((records) => {
            for (const record of records) window.__rowsMoved += record.addedNodes.length + record.removedNodes.length;
          }).observe(document.getElementById("deployments"), { childList: true });
        })`);
          await page.goto(base);
          await waitFor(page, `document.querySelector("#connection").dataset.state === "live"`);
          assert.ok(await page.$$eval("#deployments li", (rows) => rows.length) >= 3);
          await new Promise((resolve) => setTimeout(resolve, 300)); // the list the stream opens with, applied
          assert.equal(await page.evaluate(`window.__rowsMoved`), 0);
          await page.close();
        },
      );

      await t.step("both pages name an icon that is served, and load with no failed request", async () => {
        const page = await browser!.newPage();
        const failed: string[] = [];
        page.on("response", (response) => {
          if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
        });
        // And what the page logs as an error (a resource that failed to load, say).
        page.on("console", (message) => {
          if (message.type() === "error") failed.push(`${message.text()} ${message.location().url ?? ""}`);
        });
        for (const url of [base, `${base}deployment/${firstId}`]) {
          await page.goto(url);
          await waitFor(page, `document.readyState === "complete"`);
          const icon = await page.$eval('link[rel="icon"]', (link) => (link as HTMLLinkElement).href);
          const answer = await fetch(icon);
          await answer.body?.cancel();
          assert.equal(answer.headers.get("content-type"), "image/svg+xml");
        }
        assert.deepEqual(failed, []);
        await page.close();
      });

      await t.step("on a phone, the durations of the list line up from row to row", async () => {
        const page = await open(base, { width: 375, height: 800 });
        const edges = await page.$$eval(
          "#deployments li .duration",
          // Where the text ends, not the cell: a grid item stretches across its cell, however its text sits.
          (cells) =>
            cells.filter((cell) => cell.textContent).map((cell) => {
              const range = document.createRange();
              range.selectNodeContents(cell);
              return Math.round(range.getBoundingClientRect().right);
            }),
        );
        assert.ok(edges.length >= 3, `${edges.length} durations`);
        assert.equal(new Set(edges).size, 1, `the durations end at ${edges.join(", ")}`);
        await page.close();
      });

      await t.step("a deployment deleted by --keep leaves the live list", async () => {
        const keepDir = await Deno.makeTempDir({ prefix: "shiplog_keep_" });
        const keeping = await startServer(keepDir, "true", ["--keep", "1"]);
        try {
          const first = await startDeployment(keeping.url);
          const home = await open(keeping.url);
          // Live, with the first row: only the feed can take the row away now, not a reload of the list.
          await waitFor(
            home,
            `document.querySelector("#connection").dataset.state === "live" &&
             document.querySelector('li[data-id="${first}"]') !== null`,
          );
          const second = await startDeployment(keeping.url);
          await waitFor(home, `document.querySelector('li[data-id="${first}"]') === null`);
          assert.ok(await home.$(`li[data-id="${second}"]`), "the deployment kept is still listed");
          // The list is a live region; its running durations, which tick every second, are kept out of it.
          const live = await home.$eval(
            `li[data-id="${second}"] .duration`,
            (e) => e.getAttribute("aria-live"),
          );
          assert.equal(live, "off");
          await home.close();
        } finally {
          await keeping.stop();
          await Deno.remove(keepDir, { recursive: true });
        }
      });

      await t.step(
        "after the token changes, open pages show the sign-in form instead of retrying",
        async () => {
          const tokenDir = await Deno.makeTempDir({ prefix: "shiplog_token_" });
          const port = freePort();
          const flags = (token: string) => ["--port", String(port), "--token", token];
          let guarded = await startServer(tokenDir, "sleep 30", flags("first-token-123"));
          try {
            const home = await open(guarded.url);
            await home.type("#token", "first-token-123");
            await Promise.all([home.waitForNavigation(), home.keyboard.press("Enter")]);
            await waitFor(home, `document.querySelector("#connection").dataset.state === "live"`);
            const id = await startDeployment(guarded.url, { authorization: "Bearer first-token-123" });
            const page = await open(`${guarded.url}deployment/${id}`);
            await waitFor(page, `document.querySelector("#connection").dataset.state === "live"`);
            // Killed, not stopped: a stop would end the deployment, and its page with it.
            guarded.child.kill("SIGKILL");
            await guarded.child.status;
            guarded = await startServer(tokenDir, "sleep 30", flags("second-token-456"));
            for (const tab of [home, page]) await waitFor(tab, `document.querySelector("#token") !== null`);
            const next = await page.$eval("input[name=next]", (input) => (input as HTMLInputElement).value);
            assert.equal(next, `/deployment/${id}`, "signing in again comes back to the deployment");
            // A link to a line keeps its #L<n> through signing in, though the server never sees it.
            const linked = await open(`${guarded.url}deployment/${id}#L1`);
            await linked.type("#token", "second-token-456");
            await Promise.all([linked.waitForNavigation(), linked.keyboard.press("Enter")]);
            // The deployment ended with the killed server: its page shows it ended.
            await waitFor(linked, `document.querySelector("#connection")?.dataset.state === "ended"`);
            assert.equal(new URL(linked.url()).pathname, `/deployment/${id}`);
            assert.equal(new URL(linked.url()).hash, "#L1");
            await linked.close();
            await home.close();
            await page.close();
          } finally {
            await guarded.stop();
            await Deno.remove(tokenDir, { recursive: true });
          }
        },
      );

      await t.step("a log replaced while the page watches is shown anew from line 1", async () => {
        const id = await startDeployment(base);
        const page = await open(`${base}deployment/${id}`);
        await waitFor(page, `document.getElementById("L4") !== null`);
        // A search running meanwhile finds nothing in the old log, and then what the new one has.
        await page.type("#search-input", "rewritten");
        await waitFor(page, `document.getElementById("search-count").textContent === "No matches"`);
        // Replaced (another file renamed over it): truncation in place is detected only while the file is
        // shorter than what was read, and the deploy script keeps appending, so a rename keeps this test exact.
        await Deno.writeTextFile(`${dir}/${id}.log.new`, "rewritten 1\nrewritten 2\n");
        await Deno.rename(`${dir}/${id}.log.new`, `${dir}/${id}.log`);
        await waitFor(page, `document.getElementById("L1")?.textContent.includes("rewritten 1")`);
        await waitFor(page, `document.getElementById("search-count").textContent === "1 of 2"`);
        await waitFor(page, `document.querySelector("#status").textContent === "succeeded"`);
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        const raw = await (await fetch(`${base}deployments/${id}/log`)).text();
        const count = raw.split("\n").length - 1;
        await waitFor(page, `document.getElementById("line-count").textContent === "${count} lines"`);
        await unfoldAll(page);
        const ids = (await rowsOf(page)).map(([number]) => `L${number}`);
        assert.deepEqual(ids, ids.map((_, i) => `L${i + 1}`), "every line once, numbered from 1");
        assert.equal(ids.length, count, "the page shows the log as it is now");
        await page.close();
      });

      await t.step(
        "text on ANSI backgrounds (badges, inverse video) reads at 4.5:1 or better in both themes",
        async () => {
          await Deno.writeTextFile(`${dir}/badges`, ""); // the deploy script removes it
          const id = await startDeployment(base);
          const page = await open(`${base}deployment/${id}`);
          await waitFor(page, `document.getElementById("L1") !== null`);
          // WCAG's contrast ratio of each span's computed text and background colours.
          const contrasts = () =>
            page.$$eval("#L1 .text span", (spans) => {
              const luminance = (color: string) => {
                const [r, g, b] = color.match(/[\d.]+/g)!.slice(0, 3).map((v) => {
                  const c = Number(v) / 255;
                  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
              };
              return spans.map((span) => {
                const style = getComputedStyle(span);
                const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) =>
                  y - x
                );
                return `${span.textContent!.trim()} ${((a + 0.05) / (b + 0.05)).toFixed(2)}`;
              });
            });
          for (const scheme of ["light", "dark"]) {
            await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
            const found = await contrasts();
            assert.equal(found.length, 8, found.join(", "));
            for (const entry of found) {
              assert.ok(Number(entry.split(" ").at(-1)) >= 4.5, `${scheme}: ${found.join(", ")}`);
            }
          }
          await page.close();
        },
      );

      await t.step("copied log text keeps its blank lines and leaves out the line numbers", async () => {
        await Deno.writeTextFile(`${dir}/blank`, ""); // the deploy script removes it
        const id = await startDeployment(base);
        const page = await open(`${base}deployment/${id}`);
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        await waitFor(page, `document.getElementById("L6") !== null`);
        const copied = await page.evaluate(`(() => {
          const range = document.createRange();
          range.setStartBefore(document.getElementById("L1"));
          range.setEndAfter(document.getElementById("L6"));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          return getSelection().toString();
        })()`);
        assert.equal(String(copied).trimEnd(), "first\n\n\nsecond\n\nthird");
        await page.close();
      });

      await t.step("on a phone, a log of lines that wrap is followed to its last line", async () => {
        await Deno.writeTextFile(`${dir}/wrap`, ""); // the deploy script removes it
        const id = await startDeployment(base);
        const page = await open(`${base}deployment/${id}`, { width: 375, height: 800 });
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        await waitFor(page, `document.getElementById("L${WRAP_LINES}") !== null`);
        // Lines drawn off screen are laid out later, taller than estimated: the page must still be at the end.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const gap = await page.$eval("#log", (log) => log.scrollHeight - log.scrollTop - log.clientHeight);
        assert.ok(gap < 40, `the view stopped ${Math.round(gap)} px above the end`);
        assert.equal(await text(page, "#follow-state"), "Following");
        await page.close();
      });

      await t.step(`${BIG_LINES.toLocaleString("en")} lines arrive without freezing the page`, async () => {
        await Deno.writeTextFile(`${dir}/big`, ""); // the deploy script removes it
        const id = await startDeployment(base);
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        await page.setViewport({ width: 1280, height: 800 });
        // Time the page's own work per frame: every animation-frame callback, i.e. the batched drawing. (The
        // browser's own EventSource parsing of a 100,000-event burst also takes the main thread for about a
        // second in headless Chromium, with an empty handler too; that part is not the page's to fix.)
        await page.evaluateOnNewDocument(`(() => {
          window.__longestDraw = 0;
          window.__draws = 0;
          const request = window.requestAnimationFrame.bind(window);
          window.requestAnimationFrame = (callback) => request((time) => {
            const started = performance.now();
            callback(time);
            window.__draws++;
            window.__longestDraw = Math.max(window.__longestDraw, performance.now() - started);
          });
        })()`);
        const started = Date.now();
        await page.goto(`${base}deployment/${id}`);
        await waitForLines(page, BIG_LINES);
        console.log(`${BIG_LINES} lines drawn in ${Date.now() - started} ms`);
        // Only the rows near the view are in the document.
        const elements = Number(await page.evaluate(`document.querySelectorAll(".line").length`));
        assert.ok(elements < 5000, `${elements} line elements`);
        // No frame's drawing is long. (The bound is loose: a garbage collection may land in any frame.)
        const longest = Number(await page.evaluate(`window.__longestDraw`));
        assert.ok(longest < 1000, `one frame of drawing took ${Math.round(longest)} ms`);
        // Following: the last line is in view.
        await waitFor(
          page,
          `(() => { const log = document.getElementById("log");
          return log.scrollHeight - log.scrollTop - log.clientHeight < 40; })()`,
        );
        assert.equal(await page.$("#jump:not([hidden])"), null);
        // Scrolling up stops following and offers "Jump to latest", which goes back to the end.
        await page.$eval("#log", (element) => element.scrollTo({ top: 0 }));
        await waitFor(page, `!document.getElementById("jump").hidden`);
        await page.click("#jump");
        await waitFor(
          page,
          `(() => { const log = document.getElementById("log");
          return log.scrollHeight - log.scrollTop - log.clientHeight < 40; })()`,
        );
        assert.ok(await page.$eval("#jump", (element) => (element as HTMLElement).hidden));
        assert.equal(await page.evaluate(`document.activeElement.id`), "log");
        await page.close();
      });

      assert.deepEqual(errors, [], "no page threw an error");
    } finally {
      clearTimeout(deadline);
      await browser?.close().catch(() => {});
      await server?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "pages in Chromium show the instance, say so while the server cannot reach its store, and go live again after",
  ignore: CHROMIUM.ignore || REDIS_TEST.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    await using redis = await startRedisServer();
    const connection = await RedisConnection.connect(redis.url, {
      commandTimeoutMs: 500,
      connectTimeoutMs: 200,
    });
    const dir = await Deno.makeTempDir({ prefix: "shiplog_pages_" });
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    // A deployment another instance ran, as its record says.
    const ran = deploymentRecord({
      status: "succeeded",
      createdAt: "2026-11-24T08:00:00.000Z",
      startedAt: "2026-11-24T08:00:01.000Z",
      finishedAt: "2026-11-24T08:00:05.000Z",
      exitCode: 0,
      instance: "web-2",
    });
    await Deno.writeTextFile(`${dir}/${ran.id}.json`, JSON.stringify(ran));
    await Deno.writeTextFile(`${dir}/${ran.id}.log`, "deployed\n");
    let browser: Browser | undefined;
    try {
      await using served = await serveHttp(dir, {
        command: "i=1; while [ $i -le 150 ]; do echo line $i; i=$((i+1)); sleep 0.05; done",
        health: connection,
        unavailableRetryMs: 200,
      });
      const base = served.url;
      browser = await launchChromium(CHROMIUM, profile);
      const errors: string[] = [];
      const open = async (url: string) => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        await page.goto(url);
        return page;
      };
      const running = await startDeployment(base);
      const home = await open(base);
      const page = await open(`${base}deployment/${running}`);
      const state = (which: Page) =>
        which.$eval("#connection", (element) => (element as HTMLElement).dataset.state);

      await t.step(
        "the list and the deployment page name the instance that ran it, only when there is one",
        async () => {
          await waitFor(home, `document.querySelector("#connection").dataset.state === "live"`);
          assert.equal(await text(home, `li[data-id="${ran.id}"] .instance`), "on web-2");
          assert.equal(await home.$(`li[data-id="${running}"] .instance`), null);
          const other = await open(`${base}deployment/${ran.id}`);
          await waitFor(other, `!document.getElementById("instance-fact").hidden`);
          assert.equal(await text(other, "#instance-fact"), "Instance web-2");
          await other.close();
          await waitFor(page, `document.getElementById("L3") !== null`);
          assert.ok(await page.$eval("#instance-fact", (element) => (element as HTMLElement).hidden));
        },
      );

      await t.step(
        "Redis stopped: both pages say the server cannot reach its store, and keep trying",
        async () => {
          await redis.stop();
          for (const which of [home, page]) {
            await waitFor(
              which,
              `document.querySelector("#connection").textContent.includes("cannot reach its store")`,
            );
          }
          // A page opened now shows what this instance knows of the deployment, and says its output cannot be
          // read, not that there is none.
          const late = await open(`${base}deployment/${ran.id}`);
          await waitFor(late, `!document.getElementById("instance-fact").hidden`);
          assert.equal(await text(late, "#instance-fact"), "Instance web-2");
          assert.ok(!await late.$eval("#started-fact", (element) => (element as HTMLElement).hidden));
          await waitFor(
            late,
            `document.getElementById("line-count").textContent === "Output not available yet"`,
          );
          await late.close();
          // Several retries (200 to 400 ms apart) later, still trying, never given up.
          await new Promise((resolve) => setTimeout(resolve, 1500));
          for (const which of [home, page]) {
            assert.equal(await state(which), "reconnecting");
            assert.match(await text(which, "#connection"), /cannot reach its store/);
          }
        },
      );

      await t.step(
        "Redis back: both go live again, and the log goes on with no gap and no duplicate",
        async () => {
          await redis.start();
          await waitFor(home, `document.querySelector("#connection").dataset.state === "live"`);
          await waitFor(
            page,
            `["live", "ended"].includes(document.querySelector("#connection").dataset.state)`,
          );
          // The deployment writes its lines for about 8 s.
          await waitFor(page, `document.getElementById("L150") !== null`);
          const rows = await rowsOf(page);
          assert.deepEqual(
            rows,
            Array.from({ length: 150 }, (_, i) => [i + 1, `line ${i + 1}`]),
          );
        },
      );
      assert.deepEqual(errors, [], "no page threw an error");
    } finally {
      await browser?.close().catch(() => {});
      connection.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

interface Server {
  child: Deno.ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Spawns the real program on a free port and waits for its `http://127.0.0.1:PORT/` line. */
async function startServer(dir: string, command: string, flags: string[] = []): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "--port",
      "0",
      "--dir",
      dir,
      "--command",
      command,
      "--max-running",
      "4",
      ...flags,
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let url: string | undefined;
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    while (url === undefined) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`The server exited before listening; it printed: ${seen}`);
      seen += value;
      url = /http:\/\/127\.0\.0\.1:\d+\//.exec(seen)?.[0];
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep reading, so the server never blocks on a full stdout pipe.
  const drained = (async () => {
    while (!(await lines.read()).done) { /* discard */ }
  })().catch(() => {});
  return {
    child,
    url,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await child.status;
      await drained;
    },
  };
}

async function startDeployment(base: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${base}start`, {
    method: "POST",
    headers: { accept: "application/json", ...headers },
  });
  assert.equal(response.status, 201);
  return (await response.json()).id;
}

/** A port of 127.0.0.1 free a moment ago, for a server that must come back on the same address. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * Waits until the page has drawn line `count`, for as long as it takes at {@linkcode MIN_LINES_PER_SECOND}:
 * a busy machine draws slower, and only a page that draws no line for {@linkcode WAIT_MS} fails at once.
 */
/** Opens every folded step and group of the page's log, one after another, each drawn before the next. */
async function unfoldAll(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    for (let opened = 0; opened < 100; opened++) {
      const folded = document.querySelector<HTMLElement>('#log .fold[aria-expanded="false"]');
      if (folded === null) return;
      folded.click();
      await frame();
    }
  });
}

/**
 * Every row of the virtualised log as `[line number, text]`, in order: the log is scrolled from its top to its
 * end a viewport at a time, gathering the rows each frame draws. A line missing, or another's text under its
 * number, shows.
 */
async function rowsOf(page: Page): Promise<[number, string][]> {
  return await page.evaluate(async () => {
    const log = document.getElementById("log")!;
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const rows = new Map<number, string>();
    const gather = () => {
      for (const row of log.querySelectorAll<HTMLElement>(".line")) {
        rows.set(Number(row.id.slice(1)), row.querySelector(".text")?.textContent ?? "");
      }
    };
    log.scrollTop = 0;
    await frame();
    for (let top = 0; top < log.scrollHeight; top += log.clientHeight) {
      log.scrollTop = top;
      await frame();
      gather();
    }
    return [...rows].sort(([a], [b]) => a - b);
  });
}

async function waitForLines(page: Page, count: number): Promise<void> {
  const timeoutMs = (count / MIN_LINES_PER_SECOND) * 1000;
  const deadline = Date.now() + timeoutMs;
  let drawn = -1;
  let grew = Date.now();
  while (!await page.evaluate(`document.getElementById("L${count}") !== null`)) {
    const now = Number((await text(page, "#line-count")).replace(/\D/g, ""));
    if (now > drawn) [drawn, grew] = [now, Date.now()];
    if (Date.now() - grew > WAIT_MS) throw new Error(`The page stopped drawing at line ${drawn} of ${count}`);
    if (Date.now() > deadline) throw new Error(`Only ${drawn} of ${count} lines drawn in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
