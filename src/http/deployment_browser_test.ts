/// <reference lib="dom" />
// A deployment's page in a real browser: Debian's Chromium, driven by puppeteer-core, against the real HTTP
// side (`serveHttp`: real files, real deploy commands) with a target that has parameters and records left by
// an earlier shiplog (who started one, who cancelled another, one of a target no longer configured). What is
// checked: the details shown with and without JavaScript, Run again (with and without JavaScript) landing on
// the new deployment's page that says what it re-runs, and Cancel that asks first and cancels only on yes.
// Screenshots of the page and of the confirmation (desktop, phone, dark) go to test-output/screenshots/.
//
// Without /usr/bin/chromium the test is skipped with a loud notice, except under CI=true, where a missing
// browser fails it.
import assert from "node:assert/strict";
import { join } from "node:path";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";
import type { Deployment } from "../logs/deployment.ts";
import { type Target, Targets } from "../runs/targets.ts";
import {
  chromium,
  launchChromium,
  requireChromium,
  SCREENSHOTS,
  screenshots,
  WAIT_MS,
  waitInPage as waitFor,
} from "../testing/chromium.ts";
import { type HttpTestServer, serveHttp } from "../testing/http_test_server.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";

const CHROMIUM = chromium("deployment_browser_test.ts");
/** A backstop for the whole test (alone it takes a few seconds), after which the browser is torn down. */
const DEADLINE_MS = 120_000;

const FINISHED = {
  status: "succeeded",
  startedAt: "2026-11-24T08:00:01.000Z",
  finishedAt: "2026-11-24T08:00:43.000Z",
  exitCode: 0,
} as const;

Deno.test({
  name: "deployment page in Chromium: details, Run again with and without JavaScript, cancel asks first",
  ignore: CHROMIUM.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    const dir = await Deno.makeTempDir({ prefix: "shiplog_deployment_page_" });
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    // While the file `hold` exists a deployment runs on; removing it lets every one end.
    const hold = join(dir, "hold");
    const command = `while [ -e '${hold}' ]; do sleep 0.05; done; echo "[1/1] deployed"`;
    const staging: Target = {
      name: "staging",
      description: "Staging cluster",
      command,
      cwd: null,
      params: new Map([
        ["version", {
          description: "Git ref",
          default: "main",
          required: false,
          choices: null,
          pattern: null,
        }],
        ["region", {
          description: null,
          default: "eu",
          required: false,
          choices: ["eu", "us"],
          pattern: null,
        }],
      ]),
    };
    const old = deploymentRecord({
      ...FINISHED,
      target: "staging",
      params: { version: "v1.4.2", region: "eu" },
      startedBy: "alice",
      command,
    });
    const cancelled = deploymentRecord({
      ...FINISHED,
      status: "cancelled",
      exitCode: null,
      target: "staging",
      params: { version: "<img src=x onerror=window.__pwned=1>", region: "us" },
      startedBy: "alice",
      cancelledBy: "bob",
      createdAt: "2026-11-24T09:00:00.000Z",
    });
    const retired = deploymentRecord({
      ...FINISHED,
      target: "retired",
      createdAt: "2026-11-24T10:00:00.000Z",
    });
    for (const record of [old, cancelled, retired]) {
      await Deno.writeTextFile(join(dir, `${record.id}.json`), JSON.stringify(record));
      await Deno.writeTextFile(join(dir, `${record.id}.log`), "[1/1] deployed\n");
    }

    let server: HttpTestServer | undefined;
    let browser: Browser | undefined;
    const deadline = setTimeout(() => {
      console.error(`deployment_browser_test: deadline of ${DEADLINE_MS} ms passed; tearing down`);
      browser?.close().catch(() => {});
    }, DEADLINE_MS);
    try {
      server = await serveHttp(dir, { command, targets: new Targets([staging]) });
      const base = server.url;
      browser = await launchChromium(CHROMIUM, profile);
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      const errors: string[] = [];
      const open = async (path: string, { javaScript = true } = {}) => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        await page.setJavaScriptEnabled(javaScript);
        await page.setViewport({ width: 1280, height: 800 });
        await page.goto(new URL(path, base).href);
        return page;
      };
      const record = async (id: string): Promise<Deployment> =>
        await (await fetch(new URL(`api/deployments/${id}`, base))).json();
      /** A re-run of `old` made through the API, running until `hold` is removed. */
      const heldRerun = async (): Promise<string> => {
        await Deno.writeTextFile(hold, "");
        const response = await fetch(new URL(`api/deployments/${old.id}/rerun`, base), {
          method: "POST",
          headers: { accept: "application/json" },
        });
        assert.equal(response.status, 201);
        return (await response.json()).id;
      };

      await t.step(
        "the page shows the target, the parameters, who started it and who cancelled it",
        async () => {
          for (const javaScript of [true, false]) {
            const page = await open(`deployment/${old.id}`, { javaScript });
            if (javaScript) {
              await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
            }
            assert.equal(await text(page, "#target"), "staging");
            assert.deepEqual(
              await page.$$eval("#params li", (items) => items.map((item) => item.textContent)),
              ["version v1.4.2", "region eu"],
            );
            assert.equal(await text(page, "#started-by-detail"), "Started by alice");
            assert.equal(await visible(page, "#cancelled-by-detail"), false);
            assert.equal(await visible(page, "#rerun-detail"), false, "not a re-run");
            assert.equal(
              await visible(page, "#run-again button"),
              true,
              "Run again on a finished deployment",
            );
            if (javaScript) await screenshots(page, "deployment-details");
            await page.close();
          }
          const page = await open(`deployment/${cancelled.id}`);
          await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
          assert.equal(await text(page, "#cancelled-by-detail"), "Cancelled by bob");
          // A value of HTML is shown as text and runs nothing.
          assert.equal(await text(page, "#params li:first-child .param-value"), cancelled.params.version);
          assert.equal(await page.evaluate(`window.__pwned`), undefined);
          await page.close();
          // A target no longer configured: Run again is there, disabled, saying why.
          const gone = await open(`deployment/${retired.id}`);
          assert.equal(
            await gone.$eval("#run-again button", (button) => (button as HTMLButtonElement).disabled),
            true,
          );
          assert.equal(
            await text(gone, "#run-again-refused"),
            'Cannot run it again: its target "retired" is no longer configured',
          );
          await gone.close();
        },
      );

      let againId = "";
      await t.step("Run again lands on the new deployment's page, which says what it re-runs", async () => {
        const page = await open(`deployment/${old.id}`);
        await waitFor(page, `document.querySelector("#connection").dataset.state === "ended"`);
        await Promise.all([page.waitForNavigation(), page.click("#run-again button")]);
        const match = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url());
        assert.ok(match, `landed on ${page.url()}`);
        againId = match[1];
        assert.notEqual(againId, old.id);
        await waitFor(page, `document.querySelector("#status").textContent === "succeeded"`);
        assert.equal(await text(page, "#rerun-detail"), `Re-run of ${old.id.slice(0, 8)}`);
        assert.equal(
          await page.$eval("#rerun-of", (link) => link.getAttribute("href")),
          `/deployment/${old.id}`,
        );
        assert.equal(await text(page, "#target"), "staging");
        assert.deepEqual(
          await page.$$eval("#params li", (items) => items.map((item) => item.textContent)),
          ["version v1.4.2", "region eu"],
        );
        // The re-run link goes back to the deployment it repeats.
        await Promise.all([page.waitForNavigation(), page.click("#rerun-of")]);
        assert.equal(new URL(page.url()).pathname, `/deployment/${old.id}`);
        await page.close();
        const again = await record(againId);
        assert.deepEqual(
          { rerunOf: again.rerunOf, target: again.target, params: again.params, status: again.status },
          { rerunOf: old.id, target: "staging", params: old.params, status: "succeeded" },
        );
      });

      await t.step(
        "Run again works without JavaScript: a plain form, and the new page says it re-runs",
        async () => {
          const page = await open(`deployment/${againId}`, { javaScript: false });
          await Promise.all([page.waitForNavigation(), page.click("#run-again button")]);
          const id = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url())?.[1];
          assert.ok(id, `landed on ${page.url()}`);
          assert.notEqual(id, againId);
          assert.equal(await text(page, "#rerun-detail"), `Re-run of ${againId.slice(0, 8)}`);
          assert.equal(
            await page.$eval("#rerun-of", (link) => link.getAttribute("href")),
            `/deployment/${againId}`,
          );
          assert.equal(await text(page, "#target"), "staging");
          assert.equal((await record(id)).rerunOf, againId);
          await page.close();
        },
      );

      await t.step("Run again appears without a reload once a running deployment ends", async () => {
        const id = await heldRerun();
        const page = await open(`deployment/${id}`);
        await waitFor(page, `document.querySelector("#status").textContent === "running"`);
        assert.equal(await visible(page, "#run-again"), false, "no Run again while it runs");
        assert.equal(await visible(page, "#rerun-detail"), true);
        await Deno.remove(hold);
        await waitFor(page, `document.querySelector("#status").textContent === "succeeded"`);
        await waitFor(page, `!document.querySelector("#run-again").hidden`);
        await page.close();
      });

      await t.step(
        "Cancel asks first: Escape and Don't cancel keep it running, the confirmation cancels",
        async () => {
          const id = await heldRerun();
          const page = await open(`deployment/${id}`);
          await waitFor(page, `document.querySelector("#status").textContent === "running"`);
          await waitFor(page, `!document.querySelector("#cancel").hidden`);
          const dialogOpen = () =>
            page.evaluate(`document.querySelector("#cancel-dialog").matches(":modal")`);
          const cancels: string[] = [];
          page.on("request", (request) => {
            if (new URL(request.url()).pathname.endsWith("/cancel")) cancels.push(request.method());
          });
          /** Whether a cancel was sent: a request made after the answer is seen after any it made. */
          const cancelsSent = async () => {
            await page.evaluate(`fetch("/api/deployments/${id}").then((response) => response.text())`);
            return cancels.length;
          };

          // By keyboard: Enter on the focused Cancel opens the dialog with the safe answer focused; Escape closes it.
          await page.focus("#cancel");
          await page.keyboard.press("Enter");
          await waitFor(page, `document.querySelector("#cancel-dialog").open`);
          assert.equal(await dialogOpen(), true, "a modal dialog: the page behind it is inert");
          assert.equal(await page.evaluate(`document.activeElement.id`), "cancel-keep");
          assert.equal(
            await page.evaluate(`document.querySelector("#cancel-dialog").getAttribute("aria-labelledby")`),
            "cancel-title",
          );
          assert.equal(await text(page, "#cancel-title"), `Cancel deployment ${id.slice(0, 8)}?`);
          await screenshots(page, "deployment-cancel-confirm");
          await page.keyboard.press("Escape");
          await waitFor(page, `!document.querySelector("#cancel-dialog").open`);
          // Focus goes back to the button that opened it.
          assert.equal(await page.evaluate(`document.activeElement.id`), "cancel");
          assert.equal(await cancelsSent(), 0, "Escape sends nothing");

          await page.click("#cancel");
          await waitFor(page, `document.querySelector("#cancel-dialog").open`);
          await page.click("#cancel-keep");
          await waitFor(page, `!document.querySelector("#cancel-dialog").open`);
          // Nothing was sent: it still runs, on the server and on the page.
          assert.equal(await cancelsSent(), 0, "Don't cancel sends nothing");
          assert.equal((await record(id)).status, "running");
          assert.equal(await text(page, "#status"), "running");

          // Yes, by keyboard: Tab from the safe answer to the confirmation, then Enter.
          await page.keyboard.press("Enter");
          await waitFor(page, `document.querySelector("#cancel-dialog").open`);
          await page.keyboard.press("Tab");
          assert.equal(await page.evaluate(`document.activeElement.id`), "cancel-confirm");
          await page.keyboard.press("Enter");
          await waitFor(page, `document.querySelector("#status").textContent === "cancelled"`);
          assert.equal((await record(id)).status, "cancelled");
          assert.deepEqual(cancels, ["POST"], "one cancel, on yes");
          await waitFor(page, `document.querySelector("#cancel").hidden`);
          assert.equal(await page.evaluate(`document.activeElement.id`), "log");
          await waitFor(page, `!document.querySelector("#run-again").hidden`);
          await Deno.remove(hold);
          await page.close();
        },
      );

      await t.step(
        "a deployment that ends while the confirmation is open closes it and cancels nothing",
        async () => {
          const id = await heldRerun();
          const page = await open(`deployment/${id}`);
          await waitFor(page, `!document.querySelector("#cancel").hidden`);
          await page.click("#cancel");
          await waitFor(page, `document.querySelector("#cancel-dialog").open`);
          await Deno.remove(hold);
          await waitFor(page, `document.querySelector("#status").textContent === "succeeded"`);
          await waitFor(page, `!document.querySelector("#cancel-dialog").open`);
          assert.equal((await record(id)).status, "succeeded");
          assert.equal(await page.evaluate(`document.activeElement.id`), "log");
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

/** The element's text as laid out (a term and its value apart), spaces collapsed. */
async function text(page: Page, selector: string): Promise<string> {
  return (await page.$eval(selector, (element) => (element as HTMLElement).innerText)).replace(/\s+/g, " ")
    .trim();
}

/** Whether the element takes up room on the page (not `hidden`, not inside something hidden). */
async function visible(page: Page, selector: string): Promise<boolean> {
  return await page.$eval(selector, (element) => (element as HTMLElement).offsetParent !== null);
}
