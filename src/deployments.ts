/**
 * @module
 * The deployments of this server: their records, kept in memory and written through to the store, and the
 * news of every change. Whoever changes a record goes through {@linkcode Deployments.update}, so a listener of
 * `change` (the event streams, the home page feed) hears of every new status exactly once; one of `remove`
 * hears of every deployment deleted as too old to keep.
 */

import { type Deployment, isFinal, type Status } from "./deployment.ts";
import type { LogStore } from "./log_store.ts";

/** The detail of a `change` event: the record after the change. */
export type DeploymentChange = CustomEvent<Deployment>;
/** The detail of a `remove` event: the id of the deployment deleted. */
export type DeploymentRemoval = CustomEvent<string>;

/**
 * All deployments, loaded from the store at start-up. Dispatches `change` with the new record, and `remove`
 * with the id of one deleted.
 */
export class Deployments extends EventTarget {
  #store: LogStore;
  #records = new Map<string, Deployment>();
  #keep: number;
  /**
   * Records changed in memory whose write failed (a full disk): written again after the next write that
   * succeeds, and at shutdown, so that what the disk keeps is the truth (a failure's reason, say), not the
   * last state it could take.
   */
  #unsaved = new Set<string>();
  /** The deployments that {@linkcode Deployments.load} found unfinished and recorded as interrupted. */
  readonly interruptedAtLoad: string[] = [];

  private constructor(store: LogStore, keep: number) {
    super();
    this.#store = store;
    this.#keep = keep;
  }

  /**
   * Loads every record from the store. A deployment left `queued` or `running` by an earlier process (a crash,
   * kill -9) is recorded as `interrupted`, so nothing is shown as running forever. It finished, as far as
   * anyone can tell, when its log was last written: not at this start, which may come hours after a crash.
   */
  static async load(
    store: LogStore,
    options: { keep?: number; now?: () => Date } = {},
  ): Promise<Deployments> {
    const now = options.now ?? (() => new Date());
    const deployments = new Deployments(store, options.keep ?? Infinity);
    for (const record of await store.list()) {
      deployments.#records.set(record.id, record);
      if (!isFinal(record.status)) {
        deployments.interruptedAtLoad.push(record.id);
        try {
          await deployments.update(record.id, {
            status: "interrupted",
            finishedAt: await lastSignOfLife(store, record, now()),
            reason: `shiplog stopped while this deployment was ${record.status}`,
          });
        } catch (error) {
          // A full disk or a read-only directory must not keep every log from being served: the record is
          // interrupted in memory (update() changes it before it writes), and written after the next write
          // that succeeds, or by the next start.
          console.error(
            `shiplog: cannot record deployment ${record.id} as interrupted: ${(error as Error).message}`,
          );
        }
      }
    }
    await deployments.#prune();
    return deployments;
  }

  /** Every deployment, newest first. */
  list(): Deployment[] {
    // Ids break ties of the same millisecond, so the order is the same after a restart.
    return [...this.#records.values()].sort((a, b) =>
      b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id)
    );
  }

  get(id: string): Deployment | undefined {
    return this.#records.get(id);
  }

  /** How many deployments have each status. */
  countByStatus(): Map<Status, number> {
    const counts = new Map<Status, number>();
    for (const { status } of this.#records.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
    return counts;
  }

  /** Creates a `queued` deployment with a fresh id and an empty log. */
  async create(command: string | null, now: Date = new Date()): Promise<Deployment> {
    const deployment: Deployment = {
      id: crypto.randomUUID(),
      status: "queued",
      command,
      createdAt: now.toISOString(),
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      reason: null,
    };
    await this.#store.save(deployment);
    this.#records.set(deployment.id, deployment);
    await this.saveUnsaved();
    this.dispatchEvent(new CustomEvent("change", { detail: deployment }));
    return deployment;
  }

  /** Changes a record, writes it to the store, then tells listeners. An ended deployment never changes. */
  async update(id: string, patch: Partial<Omit<Deployment, "id">>): Promise<Deployment> {
    const current = this.#records.get(id);
    if (!current) throw new RangeError(`Cannot update deployment ${id}: no such deployment`);
    if (isFinal(current.status)) return current;
    const next = { ...current, ...patch };
    this.#records.set(id, next);
    try {
      await this.#store.save(next);
      this.#unsaved.delete(id);
    } catch (error) {
      this.#unsaved.add(id);
      throw error;
    } finally {
      // Even when the record could not be written (a full disk), this process knows the truth: say it.
      this.dispatchEvent(new CustomEvent("change", { detail: next }));
    }
    await this.saveUnsaved();
    if (isFinal(next.status)) await this.#prune();
    return next;
  }

  /** Writes the records whose last write failed; true when none is left unwritten. */
  async saveUnsaved(): Promise<boolean> {
    for (const id of [...this.#unsaved]) {
      try {
        // Written again if it changed meanwhile (an update racing this write): an older copy must not land last.
        for (let record = this.#records.get(id); record;) {
          await this.#store.save(record);
          const current = this.#records.get(id);
          if (current === record) break;
          record = current;
        }
        // Deleted as too old meanwhile: what this wrote back must go too.
        if (!this.#records.has(id)) await this.#store.remove(id).catch(() => {});
        this.#unsaved.delete(id);
      } catch {
        return false; // The disk is still full: the next write tries again.
      }
    }
    return true;
  }

  /**
   * Deletes the finished deployments beyond the number to keep, those that finished longest ago first, records
   * and logs alike. By when they finished, not when they were created: a long deployment that ends after
   * shorter ones started later is the newest news, not the first to go.
   */
  async #prune(): Promise<void> {
    const finished = this.list().filter((deployment) => isFinal(deployment.status))
      .sort((a, b) => finishedOrder(b).localeCompare(finishedOrder(a)));
    for (const old of finished.slice(this.#keep)) {
      this.#records.delete(old.id);
      this.dispatchEvent(new CustomEvent("remove", { detail: old.id }));
      try {
        await this.#store.remove(old.id);
      } catch (error) {
        console.error(`shiplog: cannot delete old deployment ${old.id}:`, error);
      }
    }
  }
}

/** When an unfinished deployment was last known alive: its log's last write, within its start and `now`. */
async function lastSignOfLife(store: LogStore, record: Deployment, now: Date): Promise<string> {
  const started = Date.parse(record.startedAt ?? record.createdAt);
  const written = (await store.lastWrittenAt(record.id).catch(() => undefined))?.getTime() ?? now.getTime();
  const at = Math.min(now.getTime(), Math.max(written, Number.isNaN(started) ? -Infinity : started));
  return new Date(at).toISOString();
}

/** What orders finished deployments: when they finished (ISO dates sort as text), then when created. */
function finishedOrder(deployment: Deployment): string {
  return `${deployment.finishedAt ?? deployment.createdAt} ${deployment.createdAt} ${deployment.id}`;
}
