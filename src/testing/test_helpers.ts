/**
 * @module
 * Helpers shared by the tests of the core modules: a temporary directory that removes itself, a deadline for
 * anything that waits, and a look at real processes through `/proc`. No runtime behaviour is replaced.
 */

import type { Deployment } from "../logs/deployment.ts";

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  path: string;
}

/** Makes a temporary directory for one test; use it with `await using`. */
export async function makeTempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "shiplog_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Options of {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 5000. */
  timeoutMs?: number;
  /** Check this often, in milliseconds. Default 10. */
  intervalMs?: number;
}

/**
 * Resolves once `condition` returns true; rejects with `what` in the message after the deadline. The
 * condition may be async.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  await waitForValue(what, async () => await condition() || undefined, options);
}

/**
 * Like {@linkcode waitFor}, for a check that finds something: resolves with the first value `check` returns
 * that is not `undefined`.
 */
export async function waitForValue<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  options: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(options.intervalMs ?? 10);
  }
}

/** Resolves with `promise`, or rejects when it takes longer than `timeoutMs`. */
export async function withDeadline<T>(what: string, promise: Promise<T>, timeoutMs = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes every one of `resources` (connections, say) that is not closed already. */
export function closeAll(resources: Iterable<{ close(): void }>): void {
  for (const resource of resources) {
    try {
      resource.close();
    } catch { /* closed already */ }
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The process group of `pid`, or `null` when it does not exist or has exited (a zombie counts as exited). */
function processGroupOf(pid: string | number): number | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses, so split after the last ")".
  const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return state === "Z" || state === "X" ? null : Number(pgrp);
}

/** True while the process `pid` runs (not a zombie waiting to be reaped). Linux only. */
export function isProcessAlive(pid: number): boolean {
  return processGroupOf(pid) !== null;
}

/** The pids of the live processes in process group `groupId`. Linux only. */
export function processesInGroup(groupId: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (/^\d+$/.test(entry.name) && processGroupOf(entry.name) === groupId) pids.push(Number(entry.name));
  }
  return pids;
}

/** A deployment record for tests: queued, never started, with a fresh id; `overrides` change any field. */
export function deploymentRecord(overrides: Partial<Deployment> = {}): Deployment {
  return {
    id: crypto.randomUUID(),
    status: "queued",
    target: "default",
    params: {},
    command: "./deploy.sh",
    createdAt: "2026-11-24T08:00:00.000Z",
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    reason: null,
    startedBy: null,
    cancelledBy: null,
    rerunOf: null,
    ...overrides,
  };
}
