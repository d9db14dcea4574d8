/**
 * @module
 * Puts shiplog together from a {@linkcode Config}: the store, the deployments, the runner, the hub and the
 * HTTP server, and takes it apart again in the right order on shutdown: stop accepting, end every stream,
 * stop running deployments (recorded `interrupted`), close the store.
 */

import type { Config } from "./config.ts";
import { Deployments } from "./deployments.ts";
import { OpenStreams } from "./event_stream.ts";
import { FileStore } from "./file_store.ts";
import { LogHub } from "./log_hub.ts";
import { Metrics } from "./metrics.ts";
import { Pages } from "./pages.ts";
import { Runner } from "./runner.ts";
import { createHandler } from "./server.ts";

/** Settings that only tests and benchmarks change. */
export interface AppOptions {
  /** Milliseconds between SIGINT, SIGTERM and SIGKILL when stopping a command. */
  graceMs?: number;
  /** Milliseconds between two lines of the simulated deployment. */
  simulationLineDelayMs?: number;
  /** How often followed logs are checked without a notification, in milliseconds. */
  pollIntervalMs?: number;
  /** Bytes that may wait for a slow viewer before it is disconnected. */
  maxQueueBytes?: number;
}

/** A running shiplog. */
export interface App {
  /** Where it listens, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  /** Stops everything; resolves when the server has closed. */
  shutdown(): Promise<void>;
}

/** Starts shiplog as configured. */
export async function startApp(
  config: Omit<Config, "help">,
  options: AppOptions = {},
): Promise<App> {
  const pages = await Pages.load();
  const store = await FileStore.open(config.dir, { pollIntervalMs: options.pollIntervalMs });
  const deployments = await Deployments.load(store);
  const runner = new Runner(deployments, store, {
    command: config.command,
    maxRunning: config.maxRunning,
    graceMs: options.graceMs,
    simulationLineDelayMs: options.simulationLineDelayMs,
  });
  const hub = new LogHub(store, deployments);
  const streams = new OpenStreams(config.heartbeatSeconds * 1000);
  const metrics = new Metrics();
  const handler = createHandler({ deployments, store, runner, hub, streams, pages, metrics, ...options });

  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: (address) => listening.resolve(address),
    onError: (error) => {
      console.error("shiplog: request failed:", error);
      return new Response("Internal server error\n", { status: 500 });
    },
  }, handler);
  const address = await Promise.race([listening.promise, server.finished.then(() => null)]);
  if (!address) throw new Error(`Cannot listen on ${config.hostname}:${config.port}`);
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/`,
    shutdown: () =>
      stopping ??= (async () => {
        const closed = server.shutdown();
        await runner.shutdown();
        streams.closeAll();
        hub.close();
        await closed;
        await store.close();
      })(),
  };
}
