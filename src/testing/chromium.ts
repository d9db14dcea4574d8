/**
 * @module
 * What the browser tests share: where Chromium is (Debian's, or `SHIPLOG_TEST_CHROMIUM`), starting it headless
 * with a profile of the test's, and waiting in a page. Without Chromium a browser test is skipped with a loud
 * notice, except under `CI=true`, where it must run (and fails).
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import puppeteer from "npm:puppeteer-core@25.16.0";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";

/** Where Chromium is, whether it is there, and whether a test needing it is to be skipped. */
export interface ChromiumCheck {
  path: string;
  found: boolean;
  /** Not found and not under CI: skip (after the notice). */
  ignore: boolean;
}

/** Looks for Chromium once per test file; prints the notice of `what` being skipped without it. */
export async function checkChromium(what: string): Promise<ChromiumCheck> {
  const path = Deno.env.get("SHIPLOG_TEST_CHROMIUM") ?? "/usr/bin/chromium";
  const found = await Deno.stat(path).then((stat) => stat.isFile, () => false);
  const ignore = !found && Deno.env.get("CI") !== "true";
  if (ignore) {
    console.warn(
      `\n${"!".repeat(78)}\n!! SKIPPED: chromium not found at ${path}; ${what} did not run.\n` +
        `!! Install it (apt-get install -y chromium) to run them. Under CI=true this is a failure.\n${
          "!".repeat(78)
        }\n`,
    );
  }
  return { path, found, ignore };
}

/** Starts Chromium headless with the profile in `profile`; under CI without it, fails the test. */
export async function launchChromium(chromium: ChromiumCheck, profile: string): Promise<Browser> {
  assert.ok(
    chromium.found,
    `Chromium not found at ${chromium.path}: under CI=true the browser tests must run`,
  );
  return await puppeteer.launch({
    executablePath: chromium.path,
    headless: true,
    // A hung DevTools call fails within this instead of waiting for the suite's deadline.
    protocolTimeout: 20_000,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Waits until `expression` is true in the page; the error names it. */
export async function waitFor(page: Page, expression: string, timeout = 15_000): Promise<void> {
  try {
    await page.waitForFunction(expression, { timeout, polling: 50 });
  } catch (error) {
    throw new Error(`Timed out after ${timeout} ms waiting for: ${expression}`, { cause: error });
  }
}

/** The trimmed text of the first element `selector` finds. */
export async function text(page: Page, selector: string): Promise<string> {
  return (await page.$eval(selector, (element) => element.textContent ?? "")).trim();
}
