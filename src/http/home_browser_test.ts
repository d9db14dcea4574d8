/// <reference lib="dom" />
// The home page in a real browser: Debian's Chromium, driven by puppeteer-core, against the real HTTP side
// (`serveHttp`) with three targets (two with parameters) and a history of 130 deployments written into its
// directory: the target cards, the filters and pages with and without JavaScript, the live list, and the
// parameter form (a dialog with JavaScript, a link to its page without). Screenshots go to
// test-output/screenshots/.
//
// Without /usr/bin/chromium the test is skipped with a loud notice, except under CI=true, where a missing
// browser fails it.
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";
import type { Deployment } from "../logs/deployment.ts";
import { type ParamSpec, type Target, Targets } from "../runs/targets.ts";
import { serveHttp } from "../testing/http_test_server.ts";
import {
  chromium,
  launchChromium,
  requireChromium,
  SCREENSHOTS,
  textOf as text,
  WAIT_MS,
  waitInPage as waitFor,
} from "../testing/chromium.ts";
import { deploymentRecord, waitForValue } from "../testing/test_helpers.ts";

/** A backstop for the whole test, after which the browser is closed (alone it takes about 15 s). */
const DEADLINE_MS = 180_000;
/** Deployments in the history: more than two pages of 50. */
const HISTORY = 130;

const CHROMIUM = chromium("home_browser_test.ts");

function param(spec: Partial<ParamSpec>): ParamSpec {
  return { description: null, default: null, required: false, choices: null, pattern: null, ...spec };
}

const STAGING: Target = {
  name: "staging",
  description: "Staging <b>cluster</b>",
  command: null,
  cwd: null,
  params: new Map([
    ["version", param({ description: "Git ref", default: "main", pattern: "^[A-Za-z0-9._/-]{1,100}$" })],
    ["region", param({ choices: ["eu", "us"], default: "eu" })],
  ]),
};
const PRODUCTION: Target = {
  name: "production",
  description: null,
  command: null,
  cwd: null,
  params: new Map([["version", param({ required: true })]]),
};
const [DEFAULT] = Targets.single(undefined).list();

/**
 * The history: finished deployments a minute apart, the newest last, each target with every end; staging's
 * newest failed, by alice.
 */
function history(): Deployment[] {
  const statuses = ["succeeded", "failed", "succeeded", "cancelled"] as const;
  return Array.from({ length: HISTORY }, (_, i) => {
    const at = Date.UTC(2026, 10, 1) + i * 60_000;
    const target = i % 2 ? "staging" : "production";
    return deploymentRecord({
      target,
      params: target === "staging" ? { version: `v1.${i}.0`, region: "eu" } : { version: `v1.${i}.0` },
      status: i === HISTORY - 1 ? "failed" : statuses[Math.floor(i / 2) % 4],
      startedBy: i === HISTORY - 1 ? "alice" : "bob",
      createdAt: new Date(at).toISOString(),
      startedAt: new Date(at + 10).toISOString(),
      finishedAt: new Date(at + 42_010).toISOString(),
      exitCode: 0,
    });
  });
}

Deno.test({
  name:
    "home page in Chromium: target cards, filters and pages with and without JavaScript, live list, Start forms",
  ignore: CHROMIUM.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    const dir = await Deno.makeTempDir({ prefix: "shiplog_home_" });
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    const records = history();
    for (const record of records) {
      await Deno.writeTextFile(`${dir}/${record.id}.json`, JSON.stringify(record));
      await Deno.writeTextFile(`${dir}/${record.id}.log`, "deployed\n");
    }
    const newestFirst = records.toReversed();
    let browser: Browser | undefined;
    const deadline = setTimeout(() => {
      console.error(`home_browser_test: deadline of ${DEADLINE_MS} ms passed; closing the browser`);
      browser?.close().catch(() => {});
    }, DEADLINE_MS);
    try {
      await using served = await serveHttp(dir, {
        command: "sleep 1",
        targets: new Targets([STAGING, PRODUCTION, DEFAULT]),
      });
      const base = served.url;
      browser = await launchChromium(CHROMIUM, profile);
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      const errors: string[] = [];
      const open = async (url: string, options: { javaScript?: boolean; width?: number } = {}) => {
        const page = await browser!.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        page.on("console", (message) => {
          // A refused request (the 400 of a Start, on purpose) is logged too; anything else (CSP) is a failure.
          if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
            errors.push(`${page.url()}: ${message.text()}`);
          }
        });
        await page.setJavaScriptEnabled(options.javaScript ?? true);
        await page.setViewport({ width: options.width ?? 1280, height: 900 });
        await page.goto(url);
        if (options.javaScript ?? true) {
          await waitFor(page, `document.querySelector("#connection").dataset.state === "live"`);
        }
        return page;
      };
      const rowIds = (page: Page) =>
        page.$$eval("#deployments > li", (rows) => rows.map((row) => row.dataset.id));

      await t.step(
        "a card per target shows its latest deployment: status, version, who, and Start",
        async () => {
          const page = await open(base);
          const cards = await page.$$eval("#targets > li.card", (cards) =>
            cards.map((card) => ({
              name: card.querySelector(".card-name")?.textContent,
              description: card.querySelector(".card-description")?.textContent ?? null,
              status: card.querySelector(".card-latest .badge")?.textContent ?? null,
              version: card.querySelector(".card-latest .version")?.textContent ?? null,
              by: card.querySelector(".card-latest .by")?.textContent ?? null,
              latest: card.querySelector<HTMLAnchorElement>(".card-latest a")?.getAttribute("href") ?? null,
              deployed: card.querySelector<HTMLElement>(".card-deployed")?.checkVisibility()
                ? card.querySelector(".card-deployed .version")?.textContent
                : null,
              start: card.querySelector(".card-actions .button")?.textContent,
            })));
          const latestOf = (name: string) => newestFirst.find((record) => record.target === name)!;
          const deployedOf = (name: string) =>
            newestFirst.find((record) => record.target === name && record.status === "succeeded")!;
          assert.deepEqual(cards, [
            {
              name: "staging",
              // Markup in a description is text.
              description: "Staging <b>cluster</b>",
              status: "failed",
              version: latestOf("staging").params.version,
              by: "alice",
              latest: `/deployment/${latestOf("staging").id}`,
              // Its latest failed: what is there is the one before that succeeded.
              deployed: deployedOf("staging").params.version,
              start: "Start…",
            },
            {
              name: "production",
              description: null,
              status: latestOf("production").status,
              version: latestOf("production").params.version,
              by: "bob",
              latest: `/deployment/${latestOf("production").id}`,
              deployed: latestOf("production").status === "succeeded"
                ? null
                : deployedOf("production").params.version,
              start: "Start…",
            },
            {
              name: "default",
              description: null,
              status: null,
              version: null,
              by: null,
              latest: null,
              deployed: null,
              start: "Start",
            },
          ]);
          assert.match(
            await text(page, '#targets > li[data-target="default"] .card-latest'),
            /Never deployed/,
          );
          // The history: the latest 50, newest first, each with its target, parameters and who.
          assert.deepEqual(await rowIds(page), newestFirst.slice(0, 50).map(({ id }) => id));
          const first = newestFirst[0];
          assert.equal(await text(page, `li[data-id="${first.id}"] .target`), "staging");
          assert.equal(
            await text(page, `li[data-id="${first.id}"] .params`),
            `version=${first.params.version} region=eu`,
          );
          assert.equal(await text(page, `li[data-id="${first.id}"] .by`), "alice");
          assert.equal(await text(page, `li[data-id="${first.id}"] .duration`), "42s");
          await page.screenshot({
            path: new URL("home-cards-desktop.png", SCREENSHOTS).pathname,
            fullPage: true,
          });
          await page.setViewport({ width: 390, height: 844 });
          await page.screenshot({ path: new URL("home-cards-phone.png", SCREENSHOTS).pathname });
          await page.close();
        },
      );

      for (const javaScript of [true, false]) {
        const how = javaScript ? "" : " without JavaScript";
        await t.step(
          `the filters${how} show only the matching deployments, and pages keep the filter`,
          async () => {
            const page = await open(base, { javaScript });
            // With JavaScript a filter chosen is applied at once (no button); without, by the Filter button.
            assert.equal(
              await page.$eval("#filters button[type=submit]", (button) => button.hidden),
              javaScript,
            );
            const choose = async (select: string, value: string) => {
              if (javaScript) await Promise.all([page.waitForNavigation(), page.select(select, value)]);
              else {
                await page.select(select, value);
                await Promise.all([page.waitForNavigation(), page.click("#filters button[type=submit]")]);
              }
            };
            await choose("#filter-target", "staging");
            assert.equal(new URL(page.url()).searchParams.get("target"), "staging");
            await choose("#filter-status", "failed");
            assert.deepEqual(Object.fromEntries(new URL(page.url()).searchParams), {
              target: "staging",
              status: "failed",
            });
            const expected = newestFirst.filter((r) => r.target === "staging" && r.status === "failed");
            assert.ok(expected.length > 0 && expected.length < 50);
            assert.deepEqual(await rowIds(page), expected.map(({ id }) => id));
            // All fit on one page: no Older.
            assert.equal(await page.$eval("#older", (link) => (link as HTMLElement).hidden), true);

            // Every deployment, page by page: Older goes on from the last row; Newest comes back. The seventh page
            // of this tab: pages kept for Back must not hold their streams (six connections per server).
            await page.goto(base);
            const walked: string[] = [];
            for (let pages = 0; pages < 3; pages++) {
              walked.push(...(await rowIds(page)) as string[]);
              if (pages === 2) break;
              await Promise.all([page.waitForNavigation(), page.click("#older")]);
              assert.ok(new URL(page.url()).searchParams.get("before"));
            }
            assert.deepEqual(walked, newestFirst.map(({ id }) => id));
            assert.equal(await page.$eval("#older", (link) => (link as HTMLElement).hidden), true);
            await Promise.all([page.waitForNavigation(), page.click("#newest")]);
            assert.equal(new URL(page.url()).search, "");
            assert.deepEqual(await rowIds(page), newestFirst.slice(0, 50).map(({ id }) => id));
            await page.close();
          },
        );
      }

      await t.step(
        "a deployment started while the page is open goes on top, its card follows it, the page keeps 50",
        async () => {
          const page = await open(base);
          const filtered = await open(`${base}?target=staging`);
          const later = await open(await page.$eval("#older", (a) => (a as HTMLAnchorElement).href));
          const laterRows = await rowIds(later);
          // Every title the tab shows, as a background tab would show them.
          await page.evaluate(() => {
            const titles: string[] = [];
            Object.assign(globalThis, { titles });
            new MutationObserver(() => titles.push(document.title))
              .observe(document.querySelector("title")!, {
                childList: true,
                characterData: true,
                subtree: true,
              });
          });
          const response = await fetch(new URL("start", base), {
            method: "POST",
            // Named: with several targets, a Start must say which.
            headers: { accept: "application/json", "content-type": "application/json" },
            body: JSON.stringify({ target: "default", params: {} }),
            signal: AbortSignal.timeout(WAIT_MS),
          });
          assert.equal(response.status, 201, await response.clone().text());
          const started: Deployment = await response.json();
          await waitFor(page, `document.querySelector("#deployments > li")?.dataset.id === "${started.id}"`);
          await waitFor(
            page,
            `document.querySelector('#targets > li[data-target="default"] .card-latest a')?.dataset.id === "${started.id}"`,
          );
          // It ran, then succeeded: the row and the card say so without a reload.
          await waitFor(
            page,
            `document.querySelector('li[data-id="${started.id}"]').dataset.status === "succeeded"`,
          );
          await waitFor(
            page,
            `document.querySelector('#targets > li[data-target="default"] .badge')?.textContent === "succeeded"`,
          );
          // It is what is deployed now, which its latest line says already: the deployed line stays hidden.
          assert.deepEqual(
            await page.$eval('#targets > li[data-target="default"] .card-deployed', (line) => [
              (line as HTMLElement).hidden,
              line.querySelector("a")?.dataset.id,
            ]),
            [true, started.id],
          );
          assert.equal(await page.$$eval("#deployments > li", (rows) => rows.length), 50);
          // The title said it ran while it ran, and no longer does.
          await waitFor(page, `document.title === "Deployments · shiplog"`);
          assert.ok(
            (await page.evaluate("globalThis.titles") as string[]).includes(
              "1 running · Deployments · shiplog",
            ),
          );
          // The row pushed off the page is the first of the next: Older starts after the new last row.
          const older = await page.$eval(
            "#older",
            (a) => new URL((a as HTMLAnchorElement).href).searchParams.get("before"),
          );
          const last = newestFirst[48];
          assert.equal(older, `${last.createdAt}_${last.id}`);
          // The staging-only page and a later page take no row of it; the card of the target still updates.
          await waitFor(
            filtered,
            `document.querySelector('#targets > li[data-target="default"] .badge')?.textContent === "succeeded"`,
          );
          assert.equal(await filtered.$(`li[data-id="${started.id}"]`), null);
          assert.deepEqual(await rowIds(later), laterRows);
          for (const each of [page, filtered, later]) await each.close();
        },
      );

      await t.step(
        "Start on a target with parameters opens its form in a dialog: defaults, choices as a select",
        async () => {
          const page = await open(base);
          await page.click('#targets > li[data-target="staging"] .start-link');
          await waitFor(page, `document.querySelector("#start-dialog-0").open === true`);
          const fields = await page.$$eval("#start-dialog-0 .field", (fields) =>
            fields.map((field) => {
              const control = field.querySelector<HTMLInputElement | HTMLSelectElement>("input, select")!;
              return {
                label: field.querySelector("label")?.textContent,
                tag: control.tagName,
                value: control.value,
                options: control instanceof HTMLSelectElement
                  ? [...control.options].map((o) => o.value)
                  : null,
              };
            }));
          assert.deepEqual(fields, [
            { label: "version", tag: "INPUT", value: "main", options: null },
            { label: "region", tag: "SELECT", value: "eu", options: ["eu", "us"] },
          ]);
          await page.screenshot({ path: new URL("home-start-dialog.png", SCREENSHOTS).pathname });
          await page.click("#start-dialog-0 .close-dialog");
          await waitFor(page, `document.querySelector("#start-dialog-0").open === false`);
          await page.close();
        },
      );

      await t.step(
        "the dialog shows each reason of a refused Start next to its field, and a second try is a new press",
        async () => {
          const page = await open(base);
          // The refusal that POST /start gives (README, "Targets and parameters"), answered here so this checks
          // the page alone; the JSON the page sends is checked as it leaves.
          const sent: { body: Record<string, unknown>; key: string | undefined }[] = [];
          await page.setRequestInterception(true);
          page.on("request", (request) => {
            if (new URL(request.url()).pathname !== "/start") return void request.continue();
            sent.push({
              body: JSON.parse(request.postData() ?? "null"),
              key: request.headers()["idempotency-key"],
            });
            void request.respond({
              status: 400,
              contentType: "application/json",
              body: JSON.stringify({
                error: "version: must match ^[A-Za-z0-9._/-]{1,100}$",
                errors: [
                  { param: "version", message: "version: must match ^[A-Za-z0-9._/-]{1,100}$" },
                  { param: null, message: "<b>production</b> is busy" },
                ],
              }),
            });
          });
          await page.click('#targets > li[data-target="staging"] .start-link');
          await page.$eval("#t0-param-version", (input) => (input as HTMLInputElement).value = "");
          await page.type("#t0-param-version", "not a ref!");
          await page.select("#t0-param-region", "us");
          await page.click("#start-dialog-0 button[type=submit]");
          await waitFor(page, `document.querySelector("#start-dialog-0 .field .error") !== null`);
          assert.equal(sent.length, 1);
          // The Start's fields in the body, as POST /start takes them; the press's key in its header.
          assert.deepEqual(sent[0].body, {
            target: "staging",
            params: { version: "not a ref!", region: "us" },
          });
          const key = sent[0].key;
          assert.match(String(key), /^[0-9a-f]{32}$/);
          const shown = await page.$eval("#start-dialog-0", (dialog) => ({
            field: dialog.querySelector("#t0-param-version")?.parentElement?.querySelector(".error")
              ?.textContent,
            invalid: dialog.querySelector("#t0-param-version")?.getAttribute("aria-invalid"),
            describedBy: dialog.querySelector("#t0-param-version")?.getAttribute("aria-describedby"),
            general: dialog.querySelector("p.error[role=alert]")?.textContent,
            region: dialog.querySelector("#t0-param-region")?.hasAttribute("aria-invalid"),
            open: (dialog as HTMLDialogElement).open,
          }));
          assert.deepEqual(shown, {
            field: "version: must match ^[A-Za-z0-9._/-]{1,100}$",
            invalid: "true",
            describedBy: "t0-param-version-error",
            // Text, not markup.
            general: "<b>production</b> is busy",
            region: false,
            open: true,
          });
          await page.screenshot({ path: new URL("home-start-dialog-errors.png", SCREENSHOTS).pathname });
          // Sent again: the old reasons go, and it is a new press (a new key).
          await page.click("#start-dialog-0 button[type=submit]");
          await waitForValue("the second try", () => sent[1], { timeoutMs: WAIT_MS });
          await waitFor(
            page,
            `document.querySelectorAll("#start-dialog-0 .error").length === 2 &&
          document.querySelector("#start-dialog-0 form").dataset.submitted === undefined`,
          );
          assert.match(String(sent[1].key), /^[0-9a-f]{32}$/);
          assert.notEqual(sent[1].key, key);
          await page.close();
        },
      );

      await t.step(
        "the server's own refusal of a value shows next to its field, and nothing starts",
        async () => {
          const page = await open(base);
          const before = await rowIds(page);
          // What POST /start answers for that value, asked for directly.
          const refusal = await fetch(new URL("start", base), {
            method: "POST",
            headers: { accept: "application/json", "content-type": "application/json" },
            body: JSON.stringify({ target: "staging", params: { version: "not a ref!", region: "eu" } }),
            signal: AbortSignal.timeout(WAIT_MS),
          });
          assert.equal(refusal.status, 400);
          const { errors } = await refusal.json();
          assert.equal(errors.length, 1);
          await page.click('#targets > li[data-target="staging"] .start-link');
          await page.$eval("#t0-param-version", (input) => (input as HTMLInputElement).value = "");
          await page.type("#t0-param-version", "not a ref!");
          await page.click("#start-dialog-0 button[type=submit]");
          await waitFor(page, `document.querySelector("#start-dialog-0 .field .error") !== null`);
          const shown = await page.$eval(
            "#t0-param-version",
            (
              input,
            ) => [
              input.getAttribute("aria-invalid"),
              input.parentElement?.querySelector(".error")?.textContent,
            ],
          );
          assert.deepEqual(shown, ["true", errors[0].message]);
          assert.deepEqual(await rowIds(page), before);
          await page.close();
        },
      );

      await t.step("a Start the server takes goes to the new deployment's page", async () => {
        const page = await open(base);
        const bodies: unknown[] = [];
        page.on("request", (request) => {
          if (new URL(request.url()).pathname === "/start") {
            bodies.push(JSON.parse(request.postData() ?? "null"));
          }
        });
        await page.click('#targets > li[data-target="staging"] .start-link');
        await Promise.all([page.waitForNavigation(), page.click("#start-dialog-0 button[type=submit]")]);
        const match = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url());
        assert.ok(match, page.url());
        assert.deepEqual(bodies, [{ target: "staging", params: { version: "main", region: "eu" } }]);
        const record = await (await fetch(new URL(`api/deployments/${match[1]}`, base))).json();
        assert.equal(record.id, match[1]);
        await page.close();
      });

      await t.step(
        "without JavaScript, Start links to the target's form page, and a target without parameters starts at a press",
        async () => {
          // Not watched for console errors: the start page is the targets part's (405 until it is served).
          const page = await browser!.newPage();
          page.setDefaultTimeout(WAIT_MS);
          await page.setJavaScriptEnabled(false);
          await page.goto(base);
          assert.equal(
            await page.$eval(
              '#targets > li[data-target="production"] .start-link',
              (a) => a.getAttribute("href"),
            ),
            "/start?target=production",
          );
          // The dialogs stay closed: nothing of them shows.
          assert.equal(
            await page.$eval("#start-dialog-1", (dialog) => getComputedStyle(dialog).display),
            "none",
          );
          await Promise.all([
            page.waitForNavigation(),
            page.click('#targets > li[data-target="production"] .start-link'),
          ]);
          assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, "/start?target=production");
          await page.goto(base);
          await Promise.all([
            page.waitForNavigation(),
            page.click('#targets > li[data-target="default"] button'),
          ]);
          const match = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url());
          assert.ok(match, page.url());
          await page.close();
        },
      );

      assert.deepEqual(errors, []);
    } finally {
      clearTimeout(deadline);
      await browser?.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
