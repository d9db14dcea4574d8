/**
 * @module
 * The records of a cluster's deployments as every instance shares them through Redis: what others write comes
 * on the `P:changes` channel (`{"change": record}`, `{"remove": id}`), a new deployment is created and queued
 * in one script, and one instance at a time prunes (the `P:prune` lock). Pub/sub forgets what it said while an
 * instance was cut off, so after every reconnection the records are listed again, once this instance hears
 * itself on the channel (a probe): from then on nothing can be missed between the list and the changes.
 */

import { asDeployment, type Deployment, stringifyDeployment } from "../logs/deployment.ts";
import type { LogStore } from "../logs/log_store.ts";
import type { RecordsListener, SharedRecords } from "./deployments.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";
import type { RunScripts } from "./run_scripts.ts";

/** Options of {@linkcode RedisRecords}. */
export interface RedisRecordsOptions {
  /** This instance's name. */
  instance: string;
  /** Deployments that may wait in the cluster's queue; a creation past it is refused. Default 1000. */
  maxQueued?: number;
  /** How long the prune lock is held at most, in milliseconds. Default 30000. */
  pruneLockMs?: number;
  /** Milliseconds between two probes after a reconnection, until one is heard. Default 250. */
  probeIntervalMs?: number;
  /** How long the pruner waits to hear its own probe before it gives up its turn, in ms. Default 1000. */
  catchUpMs?: number;
}

type Message = { change: Deployment } | { remove: string };

/** The cluster's records, shared through Redis. */
export class RedisRecords implements SharedRecords {
  readonly instance: string;
  #connection: RedisConnection;
  #store: LogStore;
  #scripts: RunScripts;
  #maxQueued: number;
  #pruneLockMs: number;
  #probeIntervalMs: number;
  #listener: RecordsListener | undefined;
  /** While the records are being listed: what is heard meanwhile, applied after the list. */
  #heard: Message[] | undefined;
  /** The probe this instance waits to hear, and the timer that sends it again. */
  #probe: string | undefined;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Probes sent to know that everything published before them has been heard, and who waits for each. */
  #waiting = new Map<string, () => void>();
  #catchUpMs: number;
  #closed = false;

  constructor(
    connection: RedisConnection,
    store: LogStore,
    scripts: RunScripts,
    options: RedisRecordsOptions,
  ) {
    this.#connection = connection;
    this.#store = store;
    this.#scripts = scripts;
    this.instance = options.instance;
    this.#maxQueued = options.maxQueued ?? 1000;
    this.#pruneLockMs = options.pruneLockMs ?? 30_000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 250;
    this.#catchUpMs = options.catchUpMs ?? 1000;
  }

  async listen(listener: RecordsListener): Promise<Deployment[]> {
    this.#listener = listener;
    this.#heard = [];
    // Subscribed before listing: a change made while listing is heard, and applied after.
    await this.#connection.subscribe(this.#connection.key("changes"), (message) => this.#onMessage(message));
    try {
      return await this.#store.list();
    } finally {
      // After the caller has put the listed records in place.
      setTimeout(() => this.#replay(), 0);
    }
  }

  async create(record: Deployment): Promise<void> {
    const key = (...parts: string[]) => this.#connection.key(...parts);
    const queued = await this.#scripts.enqueue.run(
      this.#connection.commands,
      [key("deployment", record.id), key("deployments"), key("queue")],
      [
        stringifyDeployment(record),
        record.id,
        String(Date.parse(record.createdAt)),
        String(this.#maxQueued),
        key("changes"),
      ],
    );
    if (queued !== 1) {
      throw new RangeError(
        `${this.#maxQueued} deployments are queued in the cluster already (--max-queued ${this.#maxQueued})`,
      );
    }
  }

  async prune(task: () => Promise<void>): Promise<boolean> {
    const lock = this.#connection.key("prune");
    const token = `${this.instance} ${crypto.randomUUID()}`;
    const taken = await this.#connection.commands.sendCommand([
      "SET",
      lock,
      token,
      "NX",
      "PX",
      String(this.#pruneLockMs),
    ]);
    if (String(taken) !== "OK") return false;
    try {
      // The last pruner's deletions were published before it let go of the lock: heard before this probe, they
      // are not deleted again.
      if (!await this.#caughtUp()) return false;
      await task();
    } finally {
      await this.#scripts.unlock.run(this.#connection.commands, [lock], [token]).catch(() => {});
    }
    return true;
  }

  /**
   * After a reconnection: lists the records again once this instance hears itself on the changes channel
   * (its subscription reconnects on its own, maybe later than the commands).
   */
  resync(): void {
    if (this.#closed || !this.#listener) return;
    clearTimeout(this.#probeTimer);
    const probe = crypto.randomUUID();
    this.#probe = probe;
    const send = () => {
      if (this.#probe !== probe || this.#closed) return;
      this.#connection.commands.sendCommand([
        "PUBLISH",
        this.#connection.key("changes"),
        JSON.stringify({ probe }),
      ]).catch(() => {});
      this.#probeTimer = setTimeout(send, this.#probeIntervalMs);
    };
    send();
  }

  /** Resolves true once this instance has heard everything published on the changes channel until now. */
  async #caughtUp(): Promise<boolean> {
    if (this.#heard) return false; // A list is under way: what it heard is applied after it.
    const probe = crypto.randomUUID();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const heard = new Promise<boolean>((resolve) => {
      this.#waiting.set(probe, () => resolve(true));
      timer = setTimeout(() => resolve(false), this.#catchUpMs);
    });
    try {
      await this.#connection.commands.sendCommand([
        "PUBLISH",
        this.#connection.key("changes"),
        JSON.stringify({ probe }),
      ]);
      return await heard;
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(probe);
    }
  }

  /** Stops hearing changes and probing. */
  close(): void {
    this.#closed = true;
    this.#probe = undefined;
    clearTimeout(this.#probeTimer);
  }

  #onMessage(text: string): void {
    if (this.#closed) return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null) return;
    const fields = message as Record<string, unknown>;
    if (typeof fields.probe === "string") {
      this.#waiting.get(fields.probe)?.();
      if (fields.probe === this.#probe) {
        this.#probe = undefined;
        clearTimeout(this.#probeTimer);
        this.#reload();
      }
      return;
    }
    const change = asDeployment(fields.change);
    const parsed: Message | undefined = change
      ? { change }
      : typeof fields.remove === "string"
      ? { remove: fields.remove }
      : undefined;
    if (!parsed) return;
    if (this.#heard) this.#heard.push(parsed);
    else this.#deliver(parsed);
  }

  async #reload(): Promise<void> {
    if (this.#heard) return; // A list is under way; it started after the changes it could miss.
    this.#heard = [];
    try {
      const records = await this.#store.list();
      if (!this.#closed) this.#listener?.reload(records);
    } catch {
      // Away again: the next reconnection lists them.
    } finally {
      this.#replay();
    }
  }

  #replay(): void {
    const heard = this.#heard ?? [];
    this.#heard = undefined;
    for (const message of heard) this.#deliver(message);
  }

  #deliver(message: Message): void {
    if (this.#closed || !this.#listener) return;
    if ("change" in message) this.#listener.change(message.change);
    else this.#listener.remove(message.remove);
  }
}
