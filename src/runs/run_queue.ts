/**
 * @module
 * Where queued deployments wait for a runner, and how a runner takes the next one: the narrow interface between
 * the {@linkcode Runner} and the queue, so that the runner is the same alone (the in-memory
 * {@linkcode LocalRunQueue}, this process's own) and in a cluster (one queue in Redis, shared by every instance,
 * where taking a deployment is a claim no other instance can also win). Either way one deployment at a time runs
 * per target (a target is an environment: two deploys to production at once are a mistake): the next one taken
 * is the first queued for a target with nothing running, so a deployment to a free target is not held up behind
 * those waiting for a busy one, and each target's deployments run in the order they were queued.
 */

import { DEFAULT_TARGET } from "../logs/deployment.ts";
import type { Deployments } from "./deployments.ts";
import { cancelledNotice } from "./log_notice.ts";
import { Queue } from "./queue.ts";

/** Why a running deployment is stopped. */
export type StopReason = "cancelled" | "interrupted";

/**
 * The detail of a queue's `stop` event: a deployment this instance runs must stop; `by` is who cancelled it
 * (`null`: nobody named, or an interruption).
 */
export type StopRequest = CustomEvent<{ id: string; reason: StopReason; by: string | null }>;

/** Options of a cancel. */
export interface CancelOptions {
  /** Who cancels (a user's name), recorded as `cancelledBy` and named in the log. Default `null`: nobody named. */
  by?: string | null;
}

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
   * Takes the next deployment to run here: the first queued for a target with nothing running, or `undefined`
   * when none such waits. The local queue answers at once, so that what it hands out runs before the caller
   * goes on; a shared one asks Redis, and records the deployment `running` on this instance in the same step.
   */
  claim(): string | undefined | Promise<string | undefined>;
  /**
   * Cancels a deployment that is not running here: a queued one leaves the queue, gets the notice line in its
   * log and is recorded `cancelled` (by `by`); one running on another instance is stopped there, which records
   * the same. Resolves once its record has ended (within a bound, in a cluster); false when it was neither
   * queued nor running elsewhere.
   */
  cancel(id: string, options?: CancelOptions): Promise<boolean>;
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

/**
 * The queue of a shiplog alone, in memory: each target's queued deployments first in first out, and the targets
 * that have one running. A claim looks at the first of each target's queue (there are a few targets, and any
 * number of deployments), so neither it nor a cancel searches a long queue.
 */
export class LocalRunQueue extends EventTarget implements RunQueue {
  #deployments: Deployments;
  #now: () => Date;
  /** Each target's queued deployments; a target whose queue empties is dropped. */
  #byTarget = new Map<string, Queue<string>>();
  /** Every queued deployment, in the order queued: its target, and its place in that order. */
  #queued = new Map<string, { target: string; place: number }>();
  #places = 0;
  /** The deployments handed out and not finished, by id: their target, busy meanwhile. */
  #claimed = new Map<string, string>();
  #busy = new Set<string>();

  constructor(deployments: Deployments, options: LocalRunQueueOptions = {}) {
    super();
    this.#deployments = deployments;
    this.#now = options.now ?? (() => new Date());
  }

  get size(): number {
    return this.#queued.size;
  }

  add(id: string): void {
    if (this.#queued.has(id)) return;
    const target = this.#deployments.get(id)?.target ?? DEFAULT_TARGET;
    this.#queued.set(id, { target, place: this.#places++ });
    let queue = this.#byTarget.get(target);
    if (!queue) this.#byTarget.set(target, queue = new Queue());
    queue.add(id);
  }

  claim(): string | undefined {
    let first: { id: string; place: number; target: string; queue: Queue<string> } | undefined;
    for (const [target, queue] of this.#byTarget) {
      if (this.#busy.has(target)) continue;
      const id = queue.peek()!;
      const place = this.#queued.get(id)!.place;
      if (!first || place < first.place) first = { id, place, target, queue };
    }
    if (!first) return undefined;
    // Shifted, not deleted: what was taken from the front is let go of as it is taken.
    first.queue.shift();
    if (first.queue.size === 0) this.#byTarget.delete(first.target);
    this.#queued.delete(first.id);
    this.#claimed.set(first.id, first.target);
    this.#busy.add(first.target);
    return first.id;
  }

  async cancel(id: string, options: CancelOptions = {}): Promise<boolean> {
    if (!this.#take(id)) return false;
    const by = options.by ?? null;
    await this.#deployments.update(id, {
      status: "cancelled",
      finishedAt: this.#now().toISOString(),
      cancelledBy: by,
    }, { notice: cancelledNotice(by) });
    return true;
  }

  finished(id: string): void {
    const target = this.#claimed.get(id);
    if (target === undefined) return;
    this.#claimed.delete(id);
    this.#busy.delete(target);
  }

  close(): string[] {
    const all = [...this.#queued.keys()];
    this.#queued.clear();
    this.#byTarget.clear();
    return all;
  }

  /** Takes a queued deployment out of the queue wherever it is; false when it was not queued. */
  #take(id: string): boolean {
    const entry = this.#queued.get(id);
    if (!entry) return false;
    this.#queued.delete(id);
    const queue = this.#byTarget.get(entry.target)!;
    queue.delete(id);
    if (queue.size === 0) this.#byTarget.delete(entry.target);
    return true;
  }
}
