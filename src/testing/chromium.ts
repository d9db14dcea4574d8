/**
 * @module
 * The browser of the browser tests: Debian's Chromium, driven by puppeteer-core. Where it is, whether the tests
 * run (without it they are skipped with a loud notice, except under CI=true, where a missing browser fails
 * them), and how it is launched: headless, with a profile of the test's own, and nothing running in the
 * background that a test did not ask for.
 */

// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import puppeteer from "npm:puppeteer-core@25.16.0";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser } from "npm:puppeteer-core@25.16.0";

/** Debian's Chromium; `SHIPLOG_TEST_CHROMIUM` points elsewhere (or nowhere, to check the skip and CI rules). */
export const CHROMIUM: string = Deno.env.get("SHIPLOG_TEST_CHROMIUM") ?? "/usr/bin/chromium";

/** Whether {@linkcode CHROMIUM} is there. */
export const chromiumFound: boolean = await Deno.stat(CHROMIUM).then((info) => info.isFile, () => false);

/** True when the browser tests are to be skipped: no browser, and not under CI=true. */
export const chromiumMissing: boolean = !chromiumFound && Deno.env.get("CI") !== "true";

/** Says loudly that the browser tests of `what` do not run, when they do not; call it once per test file. */
export function warnIfNoChromium(what: string): void {
  if (!chromiumMissing) return;
  console.warn(
    `\n${"!".repeat(78)}\n!! SKIPPED: chromium not found at ${CHROMIUM}; ${what} did not run.\n` +
      `!! Install it (apt-get install -y chromium) to run them. Under CI=true this is a failure.\n${
        "!".repeat(78)
      }\n`,
  );
}

/** Throws when there is no browser to run a test that must run (under CI=true). */
export function requireChromium(): void {
  if (!chromiumFound) {
    throw new Error(`Chromium not found at ${CHROMIUM}: under CI=true the browser tests must run`);
  }
}

/** Launches Chromium headless with its profile in `profile` (a directory of the test's own). */
export async function launchChromium(profile: string): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: CHROMIUM,
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
