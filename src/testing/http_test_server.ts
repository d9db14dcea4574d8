/**
 * @module
 * The HTTP side alone for a test: `createHandler` with every part it reaches (records and logs in files in a
 * directory of the caller's), served by `Deno.serve` on a free port of 127.0.0.1, with a health dependency if
 * given (a real `RedisConnection`, say). For tests of what `app.ts` does not wire yet; nothing is mocked.
 */

import { Auth } from "../http/auth.ts";
import { FileSessionStore } from "../http/file_session_store.ts";
import { FileStore } from "../logs/file_store.ts";
import { Deployments } from "../runs/deployments.ts";
import { Runner } from "../runs/runner.ts";
import { Targets } from "../runs/targets.ts";
import { OpenStreams } from "../http/event_stream.ts";
import type { Health } from "../http/health.ts";
import { LogAppend } from "../http/log_append.ts";
import { LogHub } from "../http/log_hub.ts";
import { Metrics } from "../http/metrics.ts";
import { Pages } from "../http/pages.ts";
import { createHandler } from "../http/server.ts";
import { StartGuard } from "../http/start_guard.ts";
import { ViewerLimit } from "../http/viewer_limit.ts";

/** Options of {@linkcode serveHttp}. */
export interface HttpTestServerOptions {
  /** The deploy command. */
  command: string;
  health?: Health;
  /** Default `web-1`. */
  instance?: string;
  /** Default 100. */
  unavailableRetryMs?: number;
  /** Require this token (sessions in `dir`). Default: open access. */
  token?: string;
  /** Where deployments go. Default: the one target that runs `command`. */
  targets?: Targets;
}

/** A served handler; use it with `await using`. */
export interface HttpTestServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/`. */
  url: string;
}

/** Serves the HTTP side with its deployments in `dir`; disposing stops it as `app.ts` does. */
export async function serveHttp(dir: string, options: HttpTestServerOptions): Promise<HttpTestServer> {
  const store = await FileStore.open(dir, { pollIntervalMs: 100 });
  const deployments = await Deployments.load(store);
  const targets = options.targets ?? Targets.single(options.command);
  const runner = new Runner(deployments, store, { targets, maxRunning: 4, graceMs: 200 });
  const hub = new LogHub(store, deployments);
  const streams = new OpenStreams(1000);
  const handler = createHandler({
    deployments,
    targets,
    store,
    runner,
    logAppend: new LogAppend(deployments, store),
    hub,
    streams,
    pages: await Pages.load(),
    metrics: new Metrics(),
    viewerLimit: new ViewerLimit(100, 100),
    startGuard: new StartGuard(),
    maxBodyBytes: 65_536,
    health: options.health,
    auth: options.token === undefined
      ? undefined
      : Auth.create(options.token, await FileSessionStore.open(dir)),
    instance: options.instance ?? "web-1",
    unavailableRetryMs: options.unavailableRetryMs ?? 100,
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    async [Symbol.asyncDispose]() {
      const closed = server.shutdown();
      await runner.shutdown();
      await hub.settled();
      streams.closeAll();
      hub.close();
      await closed;
      await store.close();
    },
  };
}
