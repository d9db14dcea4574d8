/**
 * @module
 * Where this instance keeps its deployments, and what it shares with others: a directory of its own (the
 * default), or the Redis of a cluster (`--redis`). Either gives the store of records and logs, the deployments
 * loaded from it, the queue the runner takes them from, sessions, the press-once guard on Start, and whether
 * the store can be reached. Everything past this module is the same in both modes.
 */

import type { Config } from "./config.ts";
import { FileSessionStore } from "./http/file_session_store.ts";
import type { Health } from "./http/health.ts";
import { RedisSessionStore } from "./http/redis_session_store.ts";
import { RedisStartGuard } from "./http/redis_start_guard.ts";
import type { SessionStore } from "./http/session_store.ts";
import { StartGuard, type StartKeyGuard } from "./http/start_guard.ts";
import { FileStore } from "./logs/file_store.ts";
import type { LogStore } from "./logs/log_store.ts";
import { RedisStore } from "./logs/redis_store.ts";
import { RedisConnection } from "./redis/redis_connection.ts";
import { Deployments } from "./runs/deployments.ts";
import { InstanceClaim } from "./runs/instance_claim.ts";
import { RunCluster } from "./runs/run_cluster.ts";
import type { RunQueue } from "./runs/run_queue.ts";
import type { DeliveryClaim } from "./runs/notifier.ts";
import { RedisDeliveryClaim } from "./runs/redis_delivery_claim.ts";
import { Targets } from "./runs/targets.ts";

/** What {@linkcode openBackend} needs of the configuration. */
export type BackendConfig =
  & Pick<Config, "command" | "dir" | "keep" | "maxQueued" | "redis" | "redisPrefix">
  & {
    /** This instance's name; required with `redis`. */
    instance?: string;
    /** Where deployments go (`--config`): a cluster's claims write each one's command. Default: `command`'s one. */
    targets?: Targets;
  };

/** Settings that only tests change. */
export interface BackendOptions {
  /** How often followed log files are checked without a notification, in milliseconds. */
  pollIntervalMs?: number;
  /** The runner's grace period between signals, in milliseconds (a cancel from elsewhere waits for a few). */
  graceMs?: number;
}

/** Where deployments are kept, opened. */
export interface Backend {
  readonly store: LogStore;
  readonly deployments: Deployments;
  /** The cluster's queue; `undefined`: the runner keeps its own. */
  readonly queue: RunQueue | undefined;
  readonly startGuard: StartKeyGuard;
  /** Whether the shared store can be reached; `undefined` with files (always). */
  readonly health: Health | undefined;
  /** Which instance of the cluster sends a notification; `undefined` with files (this process, alone). */
  readonly deliveryClaim: DeliveryClaim | undefined;
  /**
   * The session state, opened when first asked for (only when access is controlled); `mark` stands for the
   * tokens that let people in (`credentialsMark` of `auth.ts`), which a cluster's instances compare.
   */
  sessions(mark: string): Promise<SessionStore>;
  /** Lets go of everything, after the runner has stopped and the records were written. */
  close(): Promise<void>;
}

/** Opens the backend that `config` asks for. */
export function openBackend(config: BackendConfig, options: BackendOptions = {}): Promise<Backend> {
  return config.redis === undefined ? openFiles(config, options) : openRedis(config.redis, config, options);
}

async function openFiles(config: BackendConfig, options: BackendOptions): Promise<Backend> {
  const store = await FileStore.open(config.dir, { pollIntervalMs: options.pollIntervalMs });
  try {
    const deployments = await Deployments.load(store, { keep: config.keep });
    return {
      store,
      deployments,
      queue: undefined,
      startGuard: new StartGuard(),
      health: undefined,
      deliveryClaim: undefined,
      sessions: () => FileSessionStore.open(config.dir),
      close: () => store.close(),
    };
  } catch (error) {
    // The directory's lock and watcher are let go: a caller that goes on (a test, say) may open it again.
    await store.close();
    throw error;
  }
}

async function openRedis(url: string, config: BackendConfig, options: BackendOptions): Promise<Backend> {
  if (config.instance === undefined) throw new TypeError("Cannot join a cluster without an instance name");
  const connection = await RedisConnection.connect(url, { prefix: config.redisPrefix });
  const undo: (() => unknown)[] = [() => connection.close()];
  try {
    // Before anything is recovered: a second process of one name would take the first one's deployments.
    const name = config.instance;
    const claim = await InstanceClaim.take(connection, name, {
      onWait: () =>
        console.error(`shiplog: waiting for the earlier shiplog of instance "${name}" to stop answering`),
    });
    undo.unshift(() => claim.close());
    // Said once per outage: what an operator looks for in the log when users saw pages reconnecting.
    connection.addEventListener("down", () => {
      console.error(
        `shiplog: ${connection.problem}; waiting for it, and keeping what deployments print meanwhile`,
      );
    });
    connection.addEventListener(
      "up",
      () => console.error(`shiplog: Redis at ${connection.shownUrl} is back`),
    );
    const store = await RedisStore.open(connection);
    undo.unshift(() => store.close());
    const cluster = await RunCluster.join(connection, store, {
      instance: name,
      commands: commandsOf(config.targets ?? Targets.single(config.command)),
      keep: config.keep,
      maxQueued: config.maxQueued,
      graceMs: options.graceMs,
    });
    undo.unshift(() => cluster.close());
    const startGuard = await RedisStartGuard.create(connection);
    let sessions: Promise<RedisSessionStore> | undefined;
    return {
      store,
      deployments: cluster.deployments,
      queue: cluster.queue,
      startGuard,
      health: connection,
      deliveryClaim: new RedisDeliveryClaim(connection, { instance: name }),
      sessions: (mark) =>
        sessions ??= RedisSessionStore.open(connection).then(async (store) => {
          if (!await store.sameTokenAsBefore(mark)) {
            console.error(
              "shiplog: warning: the instance of this cluster that started before this one required another " +
                "token or users file; instances with different tokens sign each other's users out. If the " +
                "tokens are being changed, restart every instance with the new ones",
            );
          }
          return store;
        }),
      close: async () => {
        await cluster.close();
        await claim.close();
        (await sessions?.catch(() => undefined))?.close();
        await store.close();
        await connection.close();
      },
    };
  } catch (error) {
    for (const step of undo) await step();
    throw error;
  }
}

/** The command of each target, by name: what a cluster's claim writes into the record of what it takes. */
function commandsOf(targets: Targets): Record<string, string | null> {
  return Object.fromEntries(targets.list().map((target) => [target.name, target.command]));
}
