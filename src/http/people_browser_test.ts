/// <reference lib="dom" />
// People in a real browser: Debian's Chromium, driven by puppeteer-core, against the real program spawned with
// a users file and a single-sign-on proxy's header trusted from 127.0.0.1 (where the browser connects from).
// A user signs in on the sign-in page, sees their name in the top bar of every page, starts a deployment under
// it and signs out, with JavaScript and without; a user the proxy names sees their name and no sign-out button.
// Screenshots go to test-output/screenshots/people-*.png.
//
// Without /usr/bin/chromium the test is skipped with a loud notice, except under CI=true, where a missing
// browser fails it.
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, BrowserContext, Page } from "npm:puppeteer-core@25.16.0";
import type { Deployment } from "../logs/deployment.ts";
import { chromium, launchChromium, requireChromium } from "../testing/chromium.ts";
import { makeTempDir } from "../testing/test_helpers.ts";
import { spawnShiplog } from "../testing/test_program.ts";

const SCREENSHOTS = new URL("../../test-output/screenshots/", import.meta.url);
/** A backstop for the whole test (alone it takes a few seconds), after which the browser is torn down. */
const DEADLINE_MS = 120_000;
/** How long one wait in the page may take. */
const WAIT_MS = 15_000;

const CHROMIUM = chromium("people_browser_test.ts");

Deno.test({
  name:
    "people in Chromium: sign in as a user, see the name on every page, start as them, sign out; with and " +
    "without JavaScript; a proxy's user has no sign-out button",
  ignore: CHROMIUM.ignore,
  async fn(t) {
    requireChromium(CHROMIUM);
    await using dir = await makeTempDir();
    const usersFile = `${dir.path}/users`;
    await Deno.writeTextFile(usersFile, "# the team\nalice:alices-own-token\nbob:bobs-own-token\n");
    await using shiplog = await spawnShiplog(`${dir.path}/data`, [
      "--command",
      "echo deploying; sleep 0.2; echo done",
      "--users-file",
      usersFile,
      "--auth-header",
      "X-Forwarded-User",
      "--trusted-proxy",
      "127.0.0.1/32",
    ]);
    const base = shiplog.url;
    const profile = await Deno.makeTempDir({ prefix: "shiplog_chromium_" });
    let browser: Browser | undefined;
    const deadline = setTimeout(() => {
      console.error(`people_browser_test: deadline of ${DEADLINE_MS} ms passed; tearing down`);
      browser?.close().catch(() => {});
    }, DEADLINE_MS);
    try {
      browser = await launchChromium(CHROMIUM, profile);
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      const errors: string[] = [];
      /** A page of its own cookie jar (a browser context), JavaScript on or off, opened at `base`. */
      const open = async (options: { javaScript: boolean; headers?: Record<string, string> }) => {
        const context: BrowserContext = await browser!.createBrowserContext();
        const page = await context.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
        // A refused inline script or style would be a page that works only in a lax browser.
        page.on("console", (message) => {
          if (/Content.Security.Policy/i.test(message.text())) {
            errors.push(`${page.url()}: ${message.text()}`);
          }
        });
        await page.setJavaScriptEnabled(options.javaScript);
        if (options.headers) await page.setExtraHTTPHeaders(options.headers);
        await page.setViewport({ width: 1280, height: 800 });
        await page.goto(base);
        return { page, context };
      };

      for (const javaScript of [true, false]) {
        const [user, token] = javaScript ? ["alice", "alices-own-token"] : ["bob", "bobs-own-token"];
        await t.step(
          `${
            javaScript ? "with" : "without"
          } JavaScript: ${user} signs in, sees their name, starts and signs out`,
          async () => {
            const { page, context } = await open({ javaScript });
            try {
              // Not signed in: the sign-in form.
              assert.ok(await page.$("#token"), "the sign-in form");
              await page.type("#token", token);
              await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
              assert.equal(new URL(page.url()).pathname, "/");
              assert.equal(await text(page, "#user-name"), user);
              assert.equal(await text(page, ".signed-in .user"), `Signed in as ${user}`);
              assert.ok(await visible(page, "#sign-out"), "the sign-out button shows");
              if (javaScript) {
                await page.screenshot({ path: new URL("people-home-desktop.png", SCREENSHOTS).pathname });
              }

              // Start: the deployment's page names them too, and so does the record.
              await Promise.all([page.waitForNavigation(), page.click("#start")]);
              const id = /\/deployment\/([0-9a-f-]{36})$/.exec(page.url())?.[1];
              assert.ok(id, page.url());
              assert.equal(await text(page, "#user-name"), user);
              const record: Deployment = await (await fetch(new URL(`api/deployments/${id}`, base), {
                headers: { authorization: `Bearer ${token}` },
              })).json();
              assert.equal(record.startedBy, user);
              if (javaScript) {
                await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2 });
                await page.screenshot({ path: new URL("people-deployment-phone.png", SCREENSHOTS).pathname });
                // On a phone the name itself still shows whole, beside the button.
                assert.ok(await visible(page, "#user-name"), "the name shows on a phone");
                assert.ok(
                  await page.$eval(
                    ".signed-in .user",
                    (element) => element.scrollWidth <= element.clientWidth,
                  ),
                  "the name is not cut short on a phone",
                );
                assert.ok(await visible(page, "#sign-out"));
                await page.setViewport({ width: 1280, height: 800 });
              }

              // An error page (an unknown deployment) has the same top bar.
              await page.goto(new URL(`deployment/${crypto.randomUUID()}`, base).href);
              assert.equal(await text(page, "h1"), "404 Not Found");
              assert.equal(await text(page, "#user-name"), user);

              // Sign out: back home, which asks to sign in again; the deployment's page too.
              await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
              assert.ok(await page.$("#token"), "the sign-in form after signing out");
              assert.equal(await page.$("#user-name"), null);
              await page.goto(new URL(`deployment/${id}`, base).href);
              assert.ok(await page.$("#token"), "the deployment's page asks to sign in again");
            } finally {
              await context.close();
            }
          },
        );
      }

      await t.step(
        "a user named by the trusted proxy's header sees their name and no sign-out button",
        async () => {
          const { page, context } = await open({
            javaScript: true,
            headers: { "x-forwarded-user": "carol" },
          });
          try {
            assert.equal(await text(page, "#user-name"), "carol");
            assert.equal(await page.$("#sign-out"), null);
            await Promise.all([page.waitForNavigation(), page.click("#start")]);
            assert.equal(await text(page, "#user-name"), "carol");
            await page.screenshot({ path: new URL("people-proxy-desktop.png", SCREENSHOTS).pathname });
          } finally {
            await context.close();
          }
        },
      );
      assert.deepEqual(errors, [], "no page threw an error or broke its Content-Security-Policy");
    } finally {
      clearTimeout(deadline);
      await browser?.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

async function text(page: Page, selector: string): Promise<string> {
  return (await page.$eval(selector, (element) => element.textContent ?? "")).replace(/\s+/g, " ").trim();
}

/** True when `selector` is in the page and takes up room on it. */
async function visible(page: Page, selector: string): Promise<boolean> {
  return await page.$eval(selector, (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== "hidden";
  });
}
