/**
 * @module
 * A real shiplog for the integration tests: `startApp` on a free port of 127.0.0.1 with its deployments in a
 * temporary directory, stopped and removed when disposed, and the HTTP calls those tests share. The calls take
 * anything with a `url`, so they serve the program spawned by `test_program.ts` as well. Nothing is mocked.
 */

import assert from "node:assert/strict";
import { type App, type AppConfig, type AppOptions, startApp } from "../app.ts";
import { parseConfig } from "../config.ts";
import type { Deployment } from "../logs/deployment.ts";
import type { WaitForOptions } from "./test_helpers.ts";

/** The deadline of every request of these helpers, in milliseconds. */
export const TIMEOUT_MS = 10_000;

/** How the integration tests wait for the app: up to {@linkcode TIMEOUT_MS}, checking every 20 ms. */
export const APP_WAIT: WaitForOptions = { timeoutMs: TIMEOUT_MS, intervalMs: 20 };

/** A running shiplog, in this process or spawned: where it listens. */
export type Listening = Pick<App, "url">;

/** A shiplog started by {@linkcode startTestApp}; use it with `await using`. */
export interface TestApp extends App, AsyncDisposable {
  /** The directory of the deployments' records and logs. */
  dir: string;
  /** The port it listens on. */
  port: number;
}

/**
 * Starts shiplog on a free port with the defaults of `parseConfig([], {})`, `maxRunning` 4 and, unless `config`
 * says otherwise, a new temporary directory (removed when disposed; a `config.dir` is the caller's). `options`
 * default to short timings: `graceMs` 300, `pollIntervalMs` 200, `simulationLineDelayMs` 5.
 */
export async function startTestApp(
  config: Partial<AppConfig> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const ownDir = config.dir === undefined;
  const dir = config.dir ?? await Deno.makeTempDir({ prefix: "shiplog_test_" });
  const app = await startApp(
    { ...parseConfig([], {}), port: 0, dir, maxRunning: 4, ...config },
    { graceMs: 300, pollIntervalMs: 200, simulationLineDelayMs: 5, ...options },
  );
  return {
    ...app,
    dir,
    port: Number(new URL(app.url).port),
    async [Symbol.asyncDispose]() {
      await app.shutdown();
      if (ownDir) await Deno.remove(dir, { recursive: true });
    },
  };
}

/** `POST /start` asking for JSON; asserts 201 and returns the new deployment. */
export async function createDeployment(
  app: Listening,
  headers: Record<string, string> = {},
): Promise<Deployment> {
  const response = await fetch(new URL("start", app.url), {
    method: "POST",
    headers: { accept: "application/json", ...headers },
    redirect: "manual",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(response.status, 201, await response.clone().text());
  return await response.json();
}

/** `GET /api/deployments/<id>`; asserts 200 and returns the record. */
export async function getDeployment(
  app: Listening,
  id: string,
  headers: Record<string, string> = {},
): Promise<Deployment> {
  const response = await fetch(new URL(`api/deployments/${id}`, app.url), {
    headers,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(response.status, 200);
  return await response.json();
}

/** The text of `GET /metrics`. */
export async function metricsText(app: Listening, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(new URL("metrics", app.url), {
    headers,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  return await response.text();
}

/** The value of the metric `name`; asserts that there is one. */
export async function metric(
  app: Listening,
  name: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const text = await metricsText(app, headers);
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  assert.ok(match, `no ${name} in ${text}`);
  return Number(match[1]);
}
