/**
 * @module
 * The runs side of a cluster on Redis, put together for one instance: the shared records
 * ({@linkcode RedisRecords}), the {@linkcode Deployments} loaded from them, the shared queue with this instance's
 * claims and leases ({@linkcode RedisRunQueue}) and the {@linkcode Reaper}. It orders what must follow a
 * reconnection: the leases first (so no reaper interrupts what still runs here), then the records this instance
 * could not write while Redis was away, then the list of records again, then the queue.
 *
 * Leases and outages: a lease lives 10 s and is renewed every 3 s, so a reaper (looking every 5 s) records a
 * killed instance's deployments interrupted within about 25 s. While Redis is away nothing can be renewed, and
 * leases lapse (a Redis restarted from its AOF drops them). That alone never interrupts a deployment: a reaper
 * reaps only a lease missing at two looks in a row with its connection up throughout (a `down` starts the count
 * over), and the owner renews its leases as soon as its connection is up, before anything else, taking a
 * lapsed one again when the record still says it runs there. Only an instance that stays cut off from Redis a
 * look longer than the others is taken for gone; when it comes back, it hears the stored `interrupted` (a
 * stored end wins over its view) and stops the deployment. On Redis data loss (the store's `epoch` event, or a
 * renewal that finds no record), this instance writes again the records of what it runs and takes their
 * leases again; the queue and the other records were lost with the data and are forgotten.
 *
 * Pub/sub forgets: when the pub/sub connection alone was lost (the connection's `resubscribed`), the records
 * are listed again. And at every look of the reaper, the records of what this instance runs are read: one
 * ended in Redis (its change not heard) stops the deployment here, as a heard one would.
 *
 * How `app.ts` uses it, with `--redis`:
 * ```ts
 * const cluster = await RunCluster.join(connection, store, { instance: config.instance, keep: config.keep,
 *   maxQueued: config.maxQueued, graceMs: options.graceMs });
 * const deployments = cluster.deployments;
 * const runner = new Runner(deployments, store, { ...asWithoutRedis, queue: cluster.queue });
 * // at shutdown: deployments.stopPruning(); await runner.shutdown(); await deployments.saveUnsaved();
 * //              await cluster.close(); then the hub, the store and the connection.
 * ```
 */

import { isFinal, parseDeployment } from "../logs/deployment.ts";
import { Deployments } from "./deployments.ts";
import { loadRunScripts } from "./run_scripts.ts";
import type { RedisStore } from "../logs/redis_store.ts";
import { Reaper } from "./reaper.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";
import { RedisRecords } from "./redis_records.ts";
import { RedisRunQueue } from "./redis_run_queue.ts";

/** Options of {@linkcode RunCluster.join}. */
export interface RunClusterOptions {
  /** This instance's name (`--instance`), unique in the cluster. */
  instance: string;
  /**
   * The command of each target this instance runs, by name (`null`: the simulation), written into what it
   * claims; it claims no deployment of another target. Default: the one target `default`, simulated.
   */
  commands?: Readonly<Record<string, string | null>>;
  /** Finished deployments the cluster keeps (`--keep`). Default: all. */
  keep?: number;
  /** Deployments that may wait in the cluster's queue (`--max-queued`). Default 1000. */
  maxQueued?: number;
  /** The runner's grace period between signals, in ms (a cancel from another instance waits for a few). Default 2000. */
  graceMs?: number;
  /** How long a lease lives unless renewed, in ms. Default 10000. */
  leaseMs?: number;
  /** Milliseconds between two renewals of this instance's leases. Default 3000. */
  renewMs?: number;
  /** Milliseconds between two looks of the reaper. Default 5000. */
  reapMs?: number;
  /** Milliseconds between two looks at the queue while deployments wait. Default 500. */
  pollMs?: number;
}

/** One instance's part in the cluster's runs. */
export class RunCluster {
  readonly deployments: Deployments;
  readonly queue: RedisRunQueue;
  #connection: RedisConnection;
  #store: RedisStore;
  #records: RedisRecords;
  #reaper: Reaper;
  #recovering: Promise<void> = Promise.resolve();
  #onUp = () => this.#recover();
  #onEpoch = () => this.#recover();
  #onResubscribed = () => this.#resync();

  private constructor(
    connection: RedisConnection,
    store: RedisStore,
    records: RedisRecords,
    deployments: Deployments,
    queue: RedisRunQueue,
    reaper: Reaper,
  ) {
    this.#connection = connection;
    this.#store = store;
    this.#records = records;
    this.deployments = deployments;
    this.queue = queue;
    this.#reaper = reaper;
    connection.addEventListener("up", this.#onUp);
    connection.addEventListener("resubscribed", this.#onResubscribed);
    // A RedisStore tells when Redis lost its data: what this instance runs is written again.
    store.addEventListener("epoch", this.#onEpoch);
  }

  /**
   * Loads the cluster's records (recording interrupted those an earlier process of this instance's name left
   * running), and starts hearing changes and cancels, renewing leases, and reaping.
   */
  static async join(
    connection: RedisConnection,
    store: RedisStore,
    options: RunClusterOptions,
  ): Promise<RunCluster> {
    const scripts = await loadRunScripts();
    const records = new RedisRecords(connection, store, scripts, {
      instance: options.instance,
      maxQueued: options.maxQueued,
    });
    const deployments = await Deployments.load(store, { keep: options.keep, shared: records });
    const queue = new RedisRunQueue(connection, deployments, store, scripts, {
      instance: options.instance,
      commands: options.commands,
      leaseMs: options.leaseMs,
      renewMs: options.renewMs,
      pollMs: options.pollMs,
      // SIGINT, SIGTERM, SIGKILL and the end of the output, each a grace period at most, and a margin.
      cancelWaitMs: 4 * (options.graceMs ?? 2000) + 2000,
    });
    try {
      await queue.listen();
    } catch (error) {
      queue.dispose();
      records.close();
      throw error;
    }
    const reaper = new Reaper(connection, store, deployments, scripts, {
      intervalMs: options.reapMs,
      onTick: () => {
        deployments.prune().catch(() => {});
        applyEndedHeld(connection, queue, deployments).catch(() => {});
      },
    });
    return new RunCluster(connection, store, records, deployments, queue, reaper);
  }

  /** Stops renewing, reaping and hearing (after the runner's shutdown: its deployments have ended). */
  async close(): Promise<void> {
    this.#connection.removeEventListener("up", this.#onUp);
    this.#connection.removeEventListener("resubscribed", this.#onResubscribed);
    this.#store.removeEventListener("epoch", this.#onEpoch);
    this.queue.dispose();
    this.#records.close();
    await this.#reaper.close();
    await this.#recovering;
  }

  /**
   * After a reconnection, or once Redis turned out to have lost its data: leases first, then what could not be
   * written, then the records listed again, then the queue.
   */
  #recover(): void {
    this.#recovering = this.#recovering.then(async () => {
      await this.queue.renew();
      await this.deployments.saveUnsaved();
      this.#records.resync();
      this.queue.wake();
    });
  }

  /** The pub/sub connection alone was lost, and what was published meanwhile: the records are listed again. */
  #resync(): void {
    this.#recovering = this.#recovering.then(() => {
      this.#records.resync();
      this.queue.wake();
    });
  }
}

/**
 * Reads the records of what this instance runs, and applies those that ended in Redis: the runner stops them
 * (a change lost with a pub/sub connection would leave them running here).
 */
async function applyEndedHeld(
  connection: RedisConnection,
  queue: RedisRunQueue,
  deployments: Deployments,
): Promise<void> {
  const held = [...queue.held];
  if (held.length === 0 || connection.problem !== undefined) return;
  const texts = await connection.commands.sendCommand(
    ["MGET", ...held.map((id) => connection.key("deployment", id))],
  ) as unknown[];
  for (const text of texts) {
    const record = parseDeployment(text);
    if (record && isFinal(record.status)) deployments.apply(record);
  }
}
