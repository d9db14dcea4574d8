/**
 * @module
 * The cluster's one queue, in Redis (`P:queue`, first in first out), and this instance's claims on it. A claim
 * is one script: the first id of a target with nothing running in the cluster (one deployment at a time per
 * target) leaves the queue, its record becomes `running` on this instance with the command of its target, and
 * the instance gets the deployment's lease (`P:lease:<id>`, `<instance> <token>` with a time to live) and lists
 * it among the running (`P:running`, by last sign of life), so no deployment ever runs on two instances, nor two
 * of a target at once. The leases of what this instance runs are renewed every few seconds; a deployment whose
 * lease lapses is recorded interrupted by the {@linkcode Reaper} of any instance. Cancel reaches the instance
 * running a deployment on `P:cancel` (`{"id", "by"}`: who cancels is recorded there, whichever instance it is).
 *
 * A claim whose answer is lost (it timed out, and Redis may run it all the same) is not lost with it: each claim
 * has a token, and the script leaves what it took under `P:claimed:<token>` for a minute. The tokens of failed
 * claims are asked about first by the next claim (`claimed.lua`, which also gives the token up, so that a claim
 * Redis has yet to run takes nothing): a deployment found is adopted and handed to the runner, instead of being
 * left running here unrenewed until a reaper records it interrupted.
 */

import { DEFAULT_TARGET, type Deployment, isFinal } from "../logs/deployment.ts";
import { cancelledNotice } from "./log_notice.ts";
import type { DeploymentChange, Deployments } from "./deployments.ts";
import type { LogStore } from "../logs/log_store.ts";
import type { RedisConnection } from "../redis/redis_connection.ts";
import { type RunScripts } from "./run_scripts.ts";
import { parseDeployment } from "../logs/deployment.ts";
import type { CancelOptions, RunQueue, StopReason } from "./run_queue.ts";

/** How long Redis keeps what a claim took, for a claimer that did not get the answer (ms). */
const CLAIM_ANSWER_MS = 60_000;

/** Options of {@linkcode RedisRunQueue}. */
export interface RedisRunQueueOptions {
  /** This instance's name: the records of the deployments it runs name it. */
  instance: string;
  /**
   * The command of each target this instance runs (`null`: the simulation), by the target's name: a claim writes
   * the command of the deployment's target into its record, which says what ran, whichever instance created it.
   * A deployment of a target not named here is left to the instances that know it. Default: the one target
   * {@linkcode DEFAULT_TARGET}, simulated.
   */
  commands?: Readonly<Record<string, string | null>>;
  /** How long a lease lives unless renewed, in milliseconds. Default 10000. */
  leaseMs?: number;
  /** Milliseconds between two renewals of the leases. Default 3000. */
  renewMs?: number;
  /**
   * Milliseconds between two looks at the queue while deployments wait and a slot is free, besides the changes
   * heard (a claim lost to another instance, one that failed while Redis was away). Default 500. No command
   * is sent while nothing waits.
   */
  pollMs?: number;
  /**
   * How long a cancel of a deployment running on another instance waits for its record to end, in milliseconds;
   * then it answers with the record as it is. Default 10000 (the runner's grace periods and a margin).
   */
  cancelWaitMs?: number;
}

/** Why a lease was not renewed, or what its renewal found (see renew.lua). */
type RenewOutcome = "lost" | "missing" | "cancelled";

/** The queue shared by a cluster's instances. */
export class RedisRunQueue extends EventTarget implements RunQueue {
  #connection: RedisConnection;
  #deployments: Deployments;
  #store: LogStore;
  #scripts: RunScripts;
  #instance: string;
  #commands: Readonly<Record<string, string | null>>;
  /** The value of every lease this instance holds: its name and a token of this process. */
  #lease: string;
  #leaseMs: number;
  #cancelWaitMs: number;
  /** The deployments this instance claimed and has not finished. */
  #held = new Set<string>();
  /** The tokens of claims whose outcome is unknown (they failed: maybe Redis ran them all the same). */
  #unresolved = new Set<string>();
  /**
   * Cancels heard for deployments not held here while claims were under way (one of them may be it), with who
   * cancels.
   */
  #cancelSoon = new Map<string, string | null>();
  #claiming = 0;
  #closed = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #renewing: Promise<void> = Promise.resolve();

  constructor(
    connection: RedisConnection,
    deployments: Deployments,
    store: LogStore,
    scripts: RunScripts,
    options: RedisRunQueueOptions,
  ) {
    super();
    this.#connection = connection;
    this.#deployments = deployments;
    this.#store = store;
    this.#scripts = scripts;
    this.#instance = options.instance;
    this.#commands = options.commands ?? { [DEFAULT_TARGET]: null };
    this.#lease = `${options.instance} ${crypto.randomUUID()}`;
    this.#leaseMs = options.leaseMs ?? 10_000;
    this.#cancelWaitMs = options.cancelWaitMs ?? 10_000;
    this.#timers.push(
      setInterval(() => this.renew().catch(() => {}), options.renewMs ?? 3000),
      setInterval(() => this.wake(), options.pollMs ?? 500),
    );
    deployments.addEventListener("change", this.#onChange);
  }

  /** Starts hearing cancels. */
  async listen(): Promise<void> {
    await this.#connection.subscribe(this.#connection.key("cancel"), (message) => this.#onCancel(message));
  }

  /**
   * The cluster's queued deployments as this instance knows them, less the claims under way, and the claims to
   * resolve (each may have taken one: the runner is to claim again to find out).
   */
  get size(): number {
    if (this.#closed) return 0;
    const queued = Math.max(0, (this.#deployments.countByStatus().get("queued") ?? 0) - this.#claiming);
    return queued + this.#unresolved.size;
  }

  /** The ids of the deployments this instance runs (it holds their leases). */
  get held(): ReadonlySet<string> {
    return this.#held;
  }

  add(): void {
    // The record's creation queued it (RedisRecords.create): nothing left to do.
  }

  async claim(): Promise<string | undefined> {
    if (this.#closed || this.#connection.problem !== undefined) return undefined;
    this.#claiming++;
    try {
      const adopted = await this.#resolveClaims();
      if (adopted) return this.#take(adopted);
      const token = crypto.randomUUID();
      const now = new Date();
      let reply: unknown;
      try {
        reply = await this.#scripts.claim.run(
          this.#connection.commands,
          [
            this.#connection.key("queue"),
            this.#connection.key("running"),
            this.#connection.key("claimed", token),
          ],
          [
            this.#connection.prefix,
            this.#instance,
            this.#lease,
            String(this.#leaseMs),
            now.toISOString(),
            String(now.getTime()),
            JSON.stringify(this.#commands),
            String(CLAIM_ANSWER_MS),
            DEFAULT_TARGET,
          ],
        );
      } catch (error) {
        this.#unresolved.add(token);
        // The runner claims again (which asks about this one first) once this claim is over.
        setTimeout(() => this.wake(), 0);
        throw error;
      }
      const record = parseDeployment(reply);
      return record ? this.#take(record) : undefined;
    } finally {
      if (--this.#claiming === 0) this.#cancelSoon.clear();
    }
  }

  async cancel(id: string, options: CancelOptions = {}): Promise<boolean> {
    const by = options.by ?? null;
    const reply = await this.#scripts.cancel.run(
      this.#connection.commands,
      [this.#connection.key("queue")],
      [this.#connection.prefix, id, new Date().toISOString(), JSON.stringify(by), cancelledNotice(by)],
    );
    if (!Array.isArray(reply)) return false;
    const [outcome, json] = reply as [string, string];
    const record = parseDeployment(json);
    if (record) this.#deployments.apply(record);
    if (outcome === "stopping") await this.#untilEnded(id);
    return true;
  }

  finished(id: string): void {
    this.#held.delete(id);
    this.#scripts.release.run(
      this.#connection.commands,
      [this.#connection.key("lease", id), this.#connection.key("running")],
      [this.#lease, id],
    ).catch(() => {
      // Redis away: the lease expires, and the reaper takes the ended deployment off the running ones.
    });
  }

  close(): string[] {
    this.#closed = true;
    return [];
  }

  /**
   * Renews the leases of the deployments this instance runs, at once (after a reconnection, before any reaper
   * can act). One it lost (another process of the same name holds it, or the record ended) is stopped; one whose
   * record is gone (Redis lost its data) is written again, and its lease taken again at the next renewal.
   */
  renew(): Promise<void> {
    this.#renewing = this.#renewing.then(async () => {
      const missing: Deployment[] = [];
      for (const [id, outcome, by] of await this.#renewAll()) {
        const record = this.#deployments.get(id);
        if (outcome === "missing" && record && !isFinal(record.status)) missing.push(record);
        else if (outcome === "lost") this.#stop(id, "interrupted", null);
        // A cancel whose message this instance did not hear (its pub/sub connection was lost meanwhile).
        else if (outcome === "cancelled") this.#stop(id, "cancelled", by);
      }
      if (missing.length === 0) return;
      for (const record of missing) await this.#store.save(record);
      await this.#renewAll();
    }).catch((error) => {
      if (this.#connection.problem === undefined) console.error("shiplog: cannot renew the leases:", error);
    });
    return this.#renewing;
  }

  /** Tells the runner to look at the queue if a deployment waits and this instance may take it. */
  wake(): void {
    if (!this.#closed && this.size > 0 && this.#connection.problem === undefined) {
      this.dispatchEvent(new Event("available"));
    }
  }

  /** Stops the timers and listeners (after the runner's shutdown). */
  dispose(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#deployments.removeEventListener("change", this.#onChange);
  }

  /** A deployment claimed here: held, its record applied, a cancel heard meanwhile passed on; its id. */
  #take(record: Deployment): string {
    this.#held.add(record.id);
    this.#deployments.apply(record);
    if (this.#cancelSoon.has(record.id)) {
      const by = this.#cancelSoon.get(record.id) ?? null;
      this.#cancelSoon.delete(record.id);
      // Once the runner has it running (it goes on when this resolves).
      setTimeout(() => this.#stop(record.id, "cancelled", by), 0);
    }
    return record.id;
  }

  /**
   * Asks what the claims whose outcome is unknown took, until one took a deployment that still runs here (its
   * record, to adopt). Each answered is forgotten; one not answered (Redis still unable to) throws, and stays.
   */
  async #resolveClaims(): Promise<Deployment | undefined> {
    for (const token of this.#unresolved) {
      const reply = await this.#scripts.claimed.run(
        this.#connection.commands,
        [this.#connection.key("claimed", token)],
        [this.#connection.prefix, String(CLAIM_ANSWER_MS)],
      );
      this.#unresolved.delete(token);
      if (!Array.isArray(reply)) continue;
      const record = parseDeployment(reply[1]);
      if (!record) continue;
      // Reaped meanwhile, or cancelled before it ran here: what the record says is what happened.
      if (record.status === "running" && record.instance === this.#instance) return record;
      this.#deployments.apply(record);
    }
    return undefined;
  }

  /**
   * Runs the renewal script on every lease held: the id and outcome of each not renewed, and who cancels one
   * whose outcome is "cancelled".
   */
  async #renewAll(): Promise<[string, RenewOutcome, string | null][]> {
    if (this.#held.size === 0) return [];
    const reply = await this.#scripts.renew.run(
      this.#connection.commands,
      [this.#connection.key("running")],
      [
        this.#connection.prefix,
        this.#instance,
        this.#lease,
        String(this.#leaseMs),
        String(Date.now()),
        ...this.#held,
      ],
    ) as string[];
    const outcomes: [string, RenewOutcome, string | null][] = [];
    for (let i = 0; i < reply.length; i += 3) {
      outcomes.push([reply[i], reply[i + 1] as RenewOutcome, canceller(reply[i + 2])]);
    }
    return outcomes;
  }

  /** A deployment queued, or one ended (its target may be free now): one may be waiting that this can take. */
  #onChange = (event: Event) => {
    const { status } = (event as DeploymentChange).detail;
    if (status === "queued" || isFinal(status)) this.wake();
  };

  #onCancel(message: string): void {
    const { id, by } = cancelMessage(message);
    if (this.#held.has(id)) this.#stop(id, "cancelled", by);
    else if (this.#claiming > 0) this.#cancelSoon.set(id, by);
  }

  #stop(id: string, reason: StopReason, by: string | null): void {
    this.dispatchEvent(new CustomEvent("stop", { detail: { id, reason, by } }));
  }

  /** Resolves once the record of `id` has ended, or after the cancel's wait. */
  #untilEnded(id: string): Promise<void> {
    return new Promise((resolve) => {
      const ended = () => isFinal(this.#deployments.get(id)?.status ?? "cancelled");
      const done = () => {
        clearTimeout(timer);
        this.#deployments.removeEventListener("change", onChange);
        resolve();
      };
      const onChange = () => {
        if (ended()) done();
      };
      const timer = setTimeout(done, this.#cancelWaitMs);
      this.#deployments.addEventListener("change", onChange);
      onChange();
    });
  }
}

/** Who cancels, from its JSON (cancel.lua's mark): a name, or `null` when nobody named did (or it is no name). */
function canceller(json: unknown): string | null {
  try {
    const by = JSON.parse(String(json));
    return typeof by === "string" ? by : null;
  } catch {
    return null;
  }
}

/** A message of the cancel channel: `{"id", "by"}`; a bare id, as an instance of an earlier version sends it. */
function cancelMessage(message: string): { id: string; by: string | null } {
  try {
    const parsed = JSON.parse(message);
    if (typeof parsed?.id === "string") {
      return { id: parsed.id, by: typeof parsed.by === "string" ? parsed.by : null };
    }
  } catch {
    // Not JSON: the id alone.
  }
  return { id: message, by: null };
}
