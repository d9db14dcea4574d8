/// <reference lib="dom" />
/**
 * @module
 * The benchmark's browser side (scenario 9): the deployment page in real Chromium, measured from inside the page.
 * A probe installed before the page's own scripts records every long task (the Long Tasks API: the main thread
 * busy for more than 50 ms), the most line elements the log held in any frame, when a given line was first on
 * screen, and, while a live log is followed, how far the last line on screen is behind its writer (the writer's
 * lines carry their wall-clock time, `seq=N t=MS`).
 */

// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser, Page } from "npm:puppeteer-core@25.16.0";

/** What the probe gathers; read with {@linkcode readProbe}. */
export interface Probe {
  /** First contentful paint, ms after navigation start. */
  firstPaintMs: number | null;
  /** `[start, duration]` of each long task, ms after navigation start. */
  longTasks: [number, number][];
  /** The most `#log .line` elements in any frame. */
  maxLineElements: number;
  /** When the line `#L<target>` was first within the viewport, ms after navigation start. */
  targetSeenMs: number | null;
  /** The largest lag of the last line on screen behind its writer's time stamp (ms), over every frame. */
  maxLagMs: number;
  /** When `seq=<lastSeq>` was first on screen: wall-clock ms. */
  lastSeqSeenAt: number | null;
  /** Frames the probe saw. */
  frames: number;
}

/** The probe, run in the page before its scripts; `target` is the line to watch for, `lastSeq` the writer's. */
function installProbe(target: number, lastSeq: number): void {
  const probe: Probe = {
    firstPaintMs: null,
    longTasks: [],
    maxLineElements: 0,
    targetSeenMs: null,
    maxLagMs: 0,
    lastSeqSeenAt: null,
    frames: 0,
  };
  Object.assign(globalThis, { __probe: probe });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) probe.longTasks.push([entry.startTime, entry.duration]);
  }).observe({ type: "longtask", buffered: true });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.name === "first-contentful-paint") probe.firstPaintMs = entry.startTime;
    }
  }).observe({ type: "paint", buffered: true });
  let rows: HTMLCollectionOf<Element> | null = null;
  const frame = () => {
    probe.frames++;
    const log = document.getElementById("log");
    if (log !== null) {
      rows ??= log.getElementsByClassName("line");
      probe.maxLineElements = Math.max(probe.maxLineElements, rows.length);
      if (probe.targetSeenMs === null) {
        const box = document.getElementById(`L${target}`)?.getBoundingClientRect();
        if (box !== undefined && box.height > 0 && box.top < innerHeight && box.bottom > 0) {
          probe.targetSeenMs = performance.now();
        }
      }
      const last = rows.length > 0
        ? /seq=(\d+) t=(\d+\.\d+)/.exec(rows[rows.length - 1].textContent ?? "")
        : null;
      if (last !== null) {
        const now = performance.timeOrigin + performance.now();
        probe.maxLagMs = Math.max(probe.maxLagMs, now - Number(last[2]));
        if (Number(last[1]) === lastSeq && probe.lastSeqSeenAt === null) probe.lastSeqSeenAt = now;
      }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/** Opens `url` in a new 1280×800 page with the probe installed; see {@linkcode installProbe}. */
export async function openProbed(
  browser: Browser,
  url: string,
  { target = 0, lastSeq = 0 }: { target?: number; lastSeq?: number },
): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.evaluateOnNewDocument(installProbe, target, lastSeq);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return page;
}

export function readProbe(page: Page): Promise<Probe> {
  return page.evaluate(() => (globalThis as unknown as { __probe: Probe }).__probe);
}

/**
 * Waits until `expression` (run in the page) is true, for at most `ms`, asking every 50 ms from here: one
 * `waitForFunction` would be one DevTools call, cut off by the browser's protocol timeout (20 s).
 */
export async function waitInPage(page: Page, expression: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await page.evaluate(expression)) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for: ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The longest long task that began after `afterMs` (ms after navigation start), or 0. */
export function longestAfter(probe: Probe, afterMs: number): number {
  return Math.max(
    0,
    ...probe.longTasks.filter(([start]) => start >= afterMs).map(([, duration]) => duration),
  );
}

export interface SearchTiming {
  query: string;
  /** From Enter in the search box to the count shown and the next frame painted (ms). */
  ms: number;
  /** The count as the page says it, e.g. "1 of 1". */
  count: string;
  /** The line of the current match (`#L<n>` marked current), if one is in the document. */
  currentLine: number | null;
}

/**
 * Types `query` into the page's search box and presses Enter, as a person would, timing in the page from the
 * Enter to the frame after the count changed.
 */
export function timeSearch(page: Page, query: string): Promise<SearchTiming> {
  return page.evaluate(async (query: string) => {
    const input = document.getElementById("search-input") as HTMLInputElement;
    const count = document.getElementById("search-count")!;
    const before = count.textContent;
    input.focus();
    input.value = query;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    const start = performance.now();
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    while (count.textContent === before || count.textContent === "") await frame();
    await frame();
    const ms = performance.now() - start;
    const current = document.querySelector("#log mark.match.current")?.closest(".line");
    return {
      query,
      ms,
      count: count.textContent ?? "",
      currentLine: current?.id.startsWith("L") ? Number(current.id.slice(1)) : null,
    };
  }, query);
}

/** The elements in the page's document, and its JavaScript heap in use (MiB), as DevTools reports it. */
export async function pageWeight(page: Page): Promise<{ elements: number; jsHeapMiB: number }> {
  const elements = await page.evaluate(() => document.getElementsByTagName("*").length);
  const metrics = await page.metrics();
  return { elements, jsHeapMiB: (metrics.JSHeapUsedSize ?? NaN) / 1024 / 1024 };
}
