/**
 * @module
 * Where queued deployments wait for a runner, and how a runner takes the next one: the narrow interface between
 * the {@linkcode Runner} and the queue, so that the runner is the same alone (the in-memory
 * {@linkcode LocalRunQueue}, this process's own) and in a cluster (one queue in Redis, shared by every instance,
 * where taking a deployment is a claim no other instance can also win).
 */

import type { Deployments } from "./deployments.ts";
import { Queue } from "./queue.ts";

/** Why a running deployment is stopped. */
export type StopReason = "cancelled" | "interrupted";

/** The detail of a queue's `stop` event: a deployment this instance runs must stop. */
export type StopRequest = CustomEvent<{ id: string; reason: StopReason }>;

/**
 * The queue a runner takes deployments from. Dispatches `available` (a plain `Event`) when a deployment may be
 * waiting that this runner has not been told of (one queued by another instance), and `stop`
 * ({@linkcode StopRequest}) when a deployment this runner claimed must stop (cancelled on another instance).
 */
export interface RunQueue extends EventTarget {
  /** How many deployments wait, in the whole queue (every instance's, in a cluster), not counting claims under way. */
  readonly size: number;
  /** Puts a deployment just created (`queued`) in the queue, if its creation did not put it there already. */
  add(id: string): void;
  /**
   * Takes the next deployment to run here: its id, or `undefined` when none waits. The local queue answers at
   * once, so that what it hands out runs before the caller goes on; a shared one asks Redis, and records the
   * deployment `running` on this instance in the same step.
   */
  claim(): string | undefined | Promise<string | undefined>;
  /**
   * Cancels a deployment that is not running here: a queued one leaves the queue and is recorded `cancelled`;
   * one running on another instance is stopped there. Resolves once its record has ended (within a bound, in a
   * cluster); false when it was neither queued nor running elsewhere.
   */
  cancel(id: string): Promise<boolean>;
  /** A deployment this runner claimed has ended (its record is final): the queue lets go of it. */
  finished(id: string): void;
  /**
   * At shutdown: takes nothing more, and returns the queued deployments that end with this process (recorded
   * interrupted by the runner). In a cluster none do: the other instances run them.
   */
  close(): string[];
}

/** Options of {@linkcode LocalRunQueue}. */
export interface LocalRunQueueOptions {
  /** The current time, for when a cancelled deployment finished. */
  now?: () => Date;
}

/** The queue of a shiplog alone: the queued deployments' ids in memory, first in first out. */
export class LocalRunQueue extends EventTarget implements RunQueue {
  #deployments: Deployments;
  #queue = new Queue<string>();
  #now: () => Date;

  constructor(deployments: Deployments, options: LocalRunQueueOptions = {}) {
    super();
    this.#deployments = deployments;
    this.#now = options.now ?? (() => new Date());
  }

  get size(): number {
    return this.#queue.size;
  }

  add(id: string): void {
    this.#queue.add(id);
  }

  claim(): string | undefined {
    return this.#queue.shift();
  }

  async cancel(id: string): Promise<boolean> {
    if (!this.#queue.delete(id)) return false;
    await this.#deployments.update(id, { status: "cancelled", finishedAt: this.#now().toISOString() });
    return true;
  }

  finished(): void {}

  close(): string[] {
    return this.#queue.clear();
  }
}
