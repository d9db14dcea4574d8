/// <reference lib="dom" />
/**
 * @module
 * Debian's Chromium for the browser tests, driven by puppeteer-core: where it is, whether the tests run without
 * it (skipped with a loud notice, except under CI=true, where a missing browser fails them), how it is launched,
 * and the waits in a page those tests share.
 */

import { existsSync } from "node:fs";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import puppeteer from "npm:puppeteer-core@25.16.0";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";

/** Where the browser tests save their screenshots. */
export const SCREENSHOTS = new URL("../../test-output/screenshots/", import.meta.url);

/** How long one wait in a page may take, in milliseconds. */
export const WAIT_MS = 15_000;

/** Where the browser is and whether its tests run; see {@linkcode chromium}. */
export interface Chromium {
  /** Debian's Chromium, or where `SHIPLOG_TEST_CHROMIUM` points (or nowhere, to check the skip and CI rules). */
  path: string;
  found: boolean;
  /** For `Deno.test`: no browser, outside CI. */
  ignore: boolean;
}

/**
 * Finds the browser; without one outside CI, says loudly that the browser tests of `file` did not run. A test
 * that runs calls {@linkcode requireChromium} first, so that under CI a missing browser fails it.
 */
export function chromium(file: string): Chromium {
  const path = Deno.env.get("SHIPLOG_TEST_CHROMIUM") ?? "/usr/bin/chromium";
  const found = existsSync(path) && Deno.statSync(path).isFile;
  const ignore = !found && Deno.env.get("CI") !== "true";
  if (ignore) {
    console.warn(
      `\n${
        "!".repeat(78)
      }\n!! SKIPPED: chromium not found at ${path}; the browser tests of ${file} did not run.\n` +
        `!! Install it (apt-get install -y chromium) to run them. Under CI=true this is a failure.\n${
          "!".repeat(78)
        }\n`,
    );
  }
  return { path, found, ignore };
}

/** Throws when the browser is missing (under CI: its tests must run). */
export function requireChromium({ path, found }: Chromium): void {
  if (!found) throw new Error(`Chromium not found at ${path}: under CI=true the browser tests must run`);
}

/** Launches the browser headless with its profile in `profile` (a temporary directory of the caller's). */
export async function launchChromium({ path }: Chromium, profile: string): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: path,
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

/** Waits until `expression` is true in the page. */
export async function waitInPage(page: Page, expression: string, timeout = WAIT_MS): Promise<void> {
  try {
    await page.waitForFunction(expression, { timeout, polling: 50 });
  } catch (error) {
    throw new Error(`Timed out after ${timeout} ms waiting for: ${expression}`, { cause: error });
  }
}

/** The text of the first element `selector` finds, trimmed. */
export async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.$eval(selector, (element) => element.textContent ?? "")).trim();
}

/**
 * Saves the page at desktop (1280x800) and phone (390x844) sizes, and the desktop size in dark mode. Each
 * shot waits for the stream to settle and for finite animations (row flashes, the progress bar) to finish.
 */
export async function screenshots(page: Page, name: string): Promise<void> {
  // A background tab neither paints nor runs animations: bring it to the front first.
  await page.bringToFront();
  const shoot = async (file: string) => {
    await waitInPage(
      page,
      `["live", "ended"].includes(document.querySelector("#connection")?.dataset.state)`,
    );
    const pending = await page.evaluate(`Promise.race([
      Promise.all(document.getAnimations()
        .filter((animation) => animation.effect.getTiming().iterations !== Infinity)
        .map((animation) => animation.finished)).then(() => []),
      new Promise((resolve) => setTimeout(() => resolve(document.getAnimations()
        .filter((animation) => animation.playState !== "finished")
        .map((animation) => animation.animationName ?? animation.transitionProperty)), 3000)),
    ])`);
    if (Array.isArray(pending) && pending.length > 0) console.warn(`${file}: still animating:`, pending);
    await page.screenshot({ path: new URL(file, SCREENSHOTS).pathname });
  };
  await page.setViewport({ width: 1280, height: 800 });
  await shoot(`${name}-desktop.png`);
  // Not `isMobile`: puppeteer reloads the page for it. The narrow layout is what the shot is about.
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2 });
  await shoot(`${name}-phone.png`);
  await page.setViewport({ width: 1280, height: 800 });
  await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
  await shoot(`${name}-desktop-dark.png`);
  await page.emulateMediaFeatures([]);
}
