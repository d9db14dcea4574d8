/**
 * @module
 * Puts shiplog together from a {@linkcode Config}: the store, the deployments, the runner, the hub and the
 * HTTP server, and takes it apart again in the right order on shutdown: stop accepting, stop running
 * deployments (recorded `interrupted`, so their viewers get `done`), end every other stream, close the store.
 */

import { type Backend, openBackend } from "./backend.ts";
import type { Config } from "./config.ts";
import { Auth, credentialsMark } from "./http/auth.ts";
import { TrustedProxies } from "./http/client_address.ts";
import { type DescriptorBudget, descriptorBudget, measureDescriptors } from "./http/descriptor_budget.ts";
import { isSlowClientError, OpenStreams } from "./http/event_stream.ts";
import { Listener } from "./http/listener.ts";
import { LogAppend } from "./http/log_append.ts";
import { LogHub } from "./http/log_hub.ts";
import { Metrics } from "./http/metrics.ts";
import { Pages } from "./http/pages.ts";
import { RequestLimit } from "./http/request_limit.ts";
import { createHandler } from "./http/server.ts";
import type { User } from "./http/users_file.ts";
import { ViewerLimit } from "./http/viewer_limit.ts";
import { isFinal } from "./logs/deployment.ts";
import { Notifier } from "./runs/notifier.ts";
import { killOrphans } from "./runs/orphans.ts";
import { Runner } from "./runs/runner.ts";
import { Targets } from "./runs/targets.ts";

/** What the app is started with: the configuration, with files read and secrets resolved by `main.ts`. */
export type AppConfig =
  & Omit<
    Config,
    "help" | "tokenFile" | "usersFile" | "cert" | "key" | "maskEnv" | "webhookSecretFile" | "config"
  >
  & {
    /**
     * Where deployments go, each with its command and parameters: `main.ts` reads them from `--config`.
     * Default: the one target of `command`.
     */
    targets?: Targets;
    /** The users who may sign in, each with a token of their own (from `--users-file`). Default none. */
    users?: readonly User[];
    /** PEM certificate and key, to serve HTTPS. */
    tls?: { cert: string; key: string };
    /** The values to mask in logs (of the variables named by `--mask-env`). */
    secrets?: string[];
    /**
     * The deploy command's environment, besides the variables shiplog defines for it: `main.ts` passes its own
     * without shiplog's settings. Default: shiplog's own, inherited as it is.
     */
    commandEnv?: Record<string, string>;
  };

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
  /** Wrong tokens from one address within a minute before its attempts are slowed down. */
  maxAuthFailures?: number;
  /** Milliseconds between two checked token attempts of a throttled address. */
  authIntervalMs?: number;
  /** How long a session lasts, in milliseconds, instead of `sessionHours`. */
  sessionMs?: number;
  /** The timeout of one webhook try, in milliseconds. Default 5000. */
  webhookTimeoutMs?: number;
  /** The pause after a webhook's first failed try, doubled after each, in milliseconds. Default 1000. */
  webhookBackoffMs?: number;
  /** How long shutdown waits for webhook deliveries under way, in milliseconds. Default 2000. */
  webhookCloseWaitMs?: number;
}

/** A running shiplog. */
export interface App {
  /** Where it listens, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  /** Stops everything; resolves when the server has closed. */
  shutdown(): Promise<void>;
  /**
   * For a shutdown past its deadline, just before the process exits: SIGKILL to every process of the
   * deployments still running, found by their ids as after a crash, so that none outlives shiplog. Returns how
   * many deployments were running (queued ones have no processes).
   */
  abandon(): Promise<number>;
}

/** Starts shiplog as configured. */
export async function startApp(config: AppConfig, options: AppOptions = {}): Promise<App> {
  const pages = await Pages.load();
  // Before the previous run's deployments are recovered: a limit too low to serve exits having changed nothing.
  const budget = descriptorBudget({
    ...await measureDescriptors(),
    maxRunning: config.maxRunning,
    maxViewers: config.maxViewers,
    maxViewersPerClient: config.maxViewersPerClient,
  });
  const backend = await openBackend(config, {
    pollIntervalMs: options.pollIntervalMs,
    graceMs: options.graceMs,
  });
  try {
    return await startOn(backend, budget, pages, config, options);
  } catch (error) {
    await backend.close();
    throw error;
  }
}

async function startOn(
  backend: Backend,
  budget: DescriptorBudget,
  pages: Pages,
  config: AppConfig,
  options: AppOptions,
): Promise<App> {
  const { store, deployments } = backend;
  // A default lowered to fit is what --help and the README say; a cap the operator asked for and cannot have is
  // worth a line.
  const askedForCaps = config.given.includes("maxViewers") || config.given.includes("maxViewersPerClient");
  if (budget.lowered && askedForCaps) console.error(`shiplog: ${budget.lowered}`);
  // In a cluster, what ran under this instance's name and was recorded interrupted by another (this instance was
  // cut off, or killed) may have left processes on this host.
  const cutOff = config.redis === undefined ? [] : deployments.list()
    .filter(({ instance, status }) => instance === config.instance && status === "interrupted")
    .map(({ id }) => id);
  const reaped = await killOrphans([...new Set([...deployments.interruptedAtLoad, ...cutOff])]);
  if (reaped > 0) {
    console.error(`shiplog: stopped ${reaped} process group(s) left running by a previous shiplog`);
  }
  // The command inherits neither the token nor the Redis URL, but may know them another way (a script that
  // reads the file).
  const redisPassword = config.redis === undefined ? "" : decodeURIComponent(new URL(config.redis).password);
  const users = config.users ?? [];
  const secrets = [
    ...config.secrets ?? [],
    ...config.token === undefined ? [] : [config.token],
    ...users.flatMap(({ token }) => token === null ? [] : [token]),
    ...redisPassword === "" ? [] : [redisPassword],
    ...config.webhookSecret === undefined ? [] : [config.webhookSecret],
  ];
  const targets = config.targets ?? Targets.single(config.command);
  const runner = new Runner(deployments, store, {
    targets,
    env: config.commandEnv,
    maxRunning: config.maxRunning,
    maxQueued: config.maxQueued,
    graceMs: options.graceMs,
    simulationLineDelayMs: options.simulationLineDelayMs,
    secrets,
    maxLogBytes: config.maxLogBytes,
    queue: backend.queue,
  });
  const hub = new LogHub(store, deployments);
  const streams = new OpenStreams(config.heartbeatSeconds * 1000);
  const metrics = new Metrics();
  const trustedProxies = config.trustedProxies.length > 0
    ? TrustedProxies.parse(config.trustedProxies)
    : undefined;
  const header = config.authHeader === undefined || trustedProxies === undefined
    ? undefined
    : { name: config.authHeader, proxies: trustedProxies };
  const auth = config.token === undefined && users.length === 0 && header === undefined
    ? undefined
    : Auth.create(config.token, await backend.sessions(credentialsMark(config.token, users)), {
      secure: config.tls !== undefined,
      maxFailures: options.maxAuthFailures,
      intervalMs: options.authIntervalMs,
      sessionMs: options.sessionMs ?? config.sessionHours * 3_600_000,
      users,
      header,
    });
  const handler = createHandler({
    deployments,
    targets,
    store,
    runner,
    hub,
    streams,
    pages,
    metrics,
    auth,
    trustedProxies,
    viewerLimit: new ViewerLimit(budget.maxViewers, budget.maxViewersPerClient),
    requestLimit: budget.maxConnections === Infinity ? undefined : new RequestLimit(budget.maxConnections),
    startGuard: backend.startGuard,
    health: backend.health,
    instance: config.instance,
    // Lines sent from outside meet the rules of the command's own output.
    logAppend: new LogAppend(deployments, store, { secrets, maxLogBytes: config.maxLogBytes }),
    maxBodyBytes: config.maxBodyBytes,
    hostname: config.hostname,
    maxQueueBytes: options.maxQueueBytes,
  });

  const listener = Listener.listen(handler, {
    port: config.port,
    hostname: config.hostname,
    tls: config.tls,
    onError: (error) => {
      // A slow viewer's stream is ended with an error on purpose, so that its connection is dropped.
      if (!isSlowClientError(error)) console.error("shiplog: request failed:", error);
      return new Response("Internal server error\n", { status: 500 });
    },
  });
  const address = listener.address;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const url = `${config.tls ? "https" : "http"}://${host}:${address.port}/`;
  // Listening from the same turn as the listener: no request can change a deployment before it hears.
  const notifier = config.webhooks.length === 0 ? undefined : new Notifier(deployments, {
    webhooks: config.webhooks,
    baseUrl: config.baseUrl ?? url,
    secret: config.webhookSecret,
    claim: backend.deliveryClaim,
    timeoutMs: options.webhookTimeoutMs,
    backoffMs: options.webhookBackoffMs,
    closeWaitMs: options.webhookCloseWaitMs,
    onOutcome: (event, outcome) =>
      (outcome === "delivered" ? metrics.webhookDeliveries : metrics.webhookFailures)[event]++,
  });
  // What a crash left unfinished, recorded interrupted by this start, ended as far as anyone is told.
  notifier?.announce(deployments.interruptedAtLoad);

  let stopping: Promise<void> | undefined;
  return {
    url,
    shutdown: () =>
      stopping ??= (async () => {
        const closed = listener.shutdown();
        deployments.stopPruning();
        await runner.shutdown();
        if (!await deployments.saveUnsaved()) {
          console.error("shiplog: some deployment records could not be written; the next start records them");
        }
        // The ends of the deployments just stopped are sent meanwhile, for a bounded time (and, in a cluster,
        // claimed before the connection to Redis is closed).
        const notified = notifier?.close();
        // The viewers of the deployments just stopped get their `done` before every other stream is ended.
        await hub.settled();
        streams.closeAll();
        hub.close();
        await closed;
        await notified;
        await backend.close();
      })(),
    abandon: async () => {
      const left = deployments.list().filter((deployment) => !isFinal(deployment.status));
      await killOrphans(left.map(({ id }) => id));
      // Queued ones have no processes to stop.
      return left.filter((deployment) => deployment.status === "running").length;
    },
  };
}
