/**
 * @module
 * The deployments of this server: their records, kept in memory and written through to the store, and the
 * news of every change. Whoever changes a record goes through {@linkcode Deployments.update}, so a listener of
 * `change` (the event streams, the home page feed) hears of every new status exactly once; one of `remove`
 * hears of every deployment deleted as too old to keep. In a cluster ({@linkcode SharedRecords}), the records
 * that other instances write are applied here too, with the same events, so every listener sees every
 * instance's deployments.
 */

import { DEFAULT_TARGET, type Deployment, isFinal, type Status } from "../logs/deployment.ts";
import { Heap } from "./heap.ts";
import { type LogStore, RecordEndedError } from "../logs/log_store.ts";
import { interruptedNotice, writeNotice } from "./log_notice.ts";

/** The detail of a `change` event: the record after the change. */
export type DeploymentChange = CustomEvent<Deployment>;
/** The detail of a `remove` event: the id of the deployment deleted. */
export type DeploymentRemoval = CustomEvent<string>;

/** What another instance (or a script) wrote, as heard: a record changed, or one deleted. */
export interface RecordsListener {
  /** A record as stored now. */
  change(record: Deployment): void;
  /** A record was deleted. */
  remove(id: string): void;
  /**
   * Every record as stored now (after a reconnection, when changes may have been missed): each is applied as a
   * change, and the records this instance knows that are not among them were deleted.
   */
  reload(records: Deployment[]): void;
}

/**
 * How the deployments of several instances are shared (a cluster on Redis): without one, this process is alone
 * with its store. Nothing here runs deployments; that is the {@linkcode RunQueue}'s part.
 */
export interface SharedRecords {
  /** This instance's name (`--instance`), as records of the deployments it runs name it. */
  readonly instance: string;
  /**
   * Starts hearing what other instances write, then lists the records: resolves with them, and from then on
   * tells `listener` of every change in the order it was made, starting with those made while listing.
   */
  listen(listener: RecordsListener): Promise<Deployment[]>;
  /** Writes a new `queued` record and puts it at the end of the shared queue, in one step. */
  create(record: Deployment): Promise<void>;
  /** Runs `task` unless another instance prunes now (then resolves false): one instance at a time prunes. */
  prune(task: () => Promise<void>): Promise<boolean>;
}

/** Options of {@linkcode Deployments.create}. */
export interface CreateOptions {
  /** When it is created. Default: now. */
  now?: Date;
  /** Its id. Default: a fresh UUID. */
  id?: string;
  /** The target deployed to. Default {@linkcode DEFAULT_TARGET}. */
  target?: string;
  /** The target's parameters, checked already. Default none. */
  params?: Record<string, string>;
  /** Who starts it. Default `null` (nobody named). */
  startedBy?: string | null;
  /** The deployment it runs again. Default `null`. */
  rerunOf?: string | null;
}

/** Options of {@linkcode Deployments.update}. */
export interface UpdateOptions {
  /**
   * A line written into the log before the record changes, unless it has ended already: the notice of an end
   * that the deployment's own output does not tell (see `log_notice.ts`).
   */
  notice?: string;
}

/** Which deployments a page of {@linkcode Deployments.page} holds: those that match, newest first. */
export interface DeploymentFilter {
  /** Only this target's. Default: every target's. */
  target?: string;
  /** Only those with this status. Default: any. */
  status?: Status;
}

/** Where a page starts: after the deployment created at `createdAt` with `id` (that one need not exist still). */
export interface DeploymentCursor {
  createdAt: string;
  id: string;
}

/** What {@linkcode Deployments.page} is asked for. */
export interface DeploymentQuery extends DeploymentFilter {
  /** Only those older than this (in the list's order): the `next` of the page before. Default: from the newest. */
  before?: DeploymentCursor;
  /** The most records on the page. */
  limit: number;
}

/** A page of deployments, newest first. */
export interface DeploymentPage {
  records: Deployment[];
  /** Where the next page starts, when more deployments match; `null` on the last page. */
  next: DeploymentCursor | null;
}

/** Options of {@linkcode Deployments.load}. */
export interface DeploymentsOptions {
  /** Finished deployments to keep; older ones are deleted. Default: all. */
  keep?: number;
  now?: () => Date;
  /** The cluster the records are shared with; default none. */
  shared?: SharedRecords;
}

/**
 * Records written or deleted at once when there are many (a long queue stopped at shutdown, the start after):
 * one by one would take seconds; all at once, a file descriptor each.
 */
const WRITES_AT_ONCE = 16;

/**
 * All deployments, loaded from the store at start-up. Dispatches `change` with the new record, and `remove`
 * with the id of one deleted. A change costs O(log n) at most, however many deployments there are: the
 * counts by status are kept as records change, and the finished ones in a heap by when they finished.
 */
export class Deployments extends EventTarget {
  #store: LogStore;
  #shared: SharedRecords | undefined;
  #records = new Map<string, Deployment>();
  /**
   * Every record's place in the list, newest first, kept as records come and go (a binary search each): a page
   * walks from its cursor, not a sort of every record per request. Built once at load, when `null`.
   */
  #order: DeploymentCursor[] | null = null;
  #counts = new Map<Status, number>();
  /** The finished records written (or tried), the one to delete first at the top. */
  #finished = new Heap<Deployment>((a, b) => compareText(finishedOrder(a), finishedOrder(b)));
  #keep: number;
  /** False once {@linkcode stopPruning} was called. */
  #pruning = true;
  /**
   * Records changed in memory whose write failed (a full disk): written again after the next write that
   * succeeds, and at shutdown, so that what the disk keeps is the truth (a failure's reason, say), not the
   * last state it could take.
   */
  #unsaved = new Set<string>();
  /** The deployments that {@linkcode Deployments.load} found unfinished and recorded as interrupted. */
  readonly interruptedAtLoad: string[] = [];

  private constructor(store: LogStore, keep: number, shared: SharedRecords | undefined) {
    super();
    this.#store = store;
    this.#keep = keep;
    this.#shared = shared;
  }

  /**
   * Loads every record from the store. A deployment left `queued` or `running` by an earlier process (a crash,
   * kill -9) is recorded as `interrupted`, so nothing is shown as running forever. It finished, as far as
   * anyone can tell, when its log was last written: not at this start, which may come hours after a crash.
   * In a cluster, the queue and the other instances' deployments go on: only those recorded as running on this
   * instance's name are interrupted (an earlier process of the same name ran them, and no longer does).
   */
  static async load(store: LogStore, options: DeploymentsOptions = {}): Promise<Deployments> {
    const now = options.now ?? (() => new Date());
    const shared = options.shared;
    const deployments = new Deployments(store, options.keep ?? Infinity, shared);
    const listed = shared ? await shared.listen(deployments.#listener()) : await store.list();
    const records = listed.sort((a, b) => -newestFirst(a, b));
    for (const record of records) {
      // Heard while listing, and applied already.
      if (deployments.#records.has(record.id)) continue;
      deployments.#set(record);
      if (isFinal(record.status)) deployments.#finished.push(record);
      else if (!shared || (record.status === "running" && record.instance === shared.instance)) {
        deployments.interruptedAtLoad.push(record.id);
      }
    }
    // One sort of all, not a binary insertion each (which would shift the whole list for every record).
    deployments.#order = [...deployments.#records.values()].map(cursorOf).sort(newestFirst);
    await forEachAtOnce(deployments.interruptedAtLoad, WRITES_AT_ONCE, async (id) => {
      const record = deployments.#records.get(id)!;
      const reason = `shiplog stopped while this deployment was ${record.status}`;
      try {
        // When it finished is read before the notice is written: the notice is not a sign of its life.
        const finishedAt = await lastSignOfLife(store, record, now());
        await deployments.update(id, { status: "interrupted", finishedAt, reason }, {
          notice: interruptedNotice(reason),
        });
      } catch (error) {
        // A full disk or a read-only directory must not keep every log from being served: the record is
        // interrupted in memory (update() changes it before it writes), and written after the next write
        // that succeeds, or by the next start.
        console.error(`shiplog: cannot record deployment ${id} as interrupted: ${(error as Error).message}`);
      }
    });
    await deployments.#prune();
    return deployments;
  }

  /** Every deployment, newest first. */
  list(): Deployment[] {
    return this.#ordered().map(({ id }) => this.#records.get(id)!);
  }

  /**
   * The deployments that match `query`, newest first, at most `query.limit` of them, from its cursor on. It
   * walks the list from there, never sorting: with a filter that few match, it may look at every record once.
   */
  page(query: DeploymentQuery): DeploymentPage {
    const order = this.#ordered();
    const records: Deployment[] = [];
    for (let index = query.before ? placeOf(order, query.before, true) : 0; index < order.length; index++) {
      const record = this.#records.get(order[index].id)!;
      if (!matchesFilter(record, query)) continue;
      if (records.length === query.limit) return { records, next: cursorOf(records[records.length - 1]) };
      records.push(record);
    }
    return { records, next: null };
  }

  get(id: string): Deployment | undefined {
    return this.#records.get(id);
  }

  /** How many deployments have each status (none: no entry). */
  countByStatus(): Map<Status, number> {
    return new Map([...this.#counts].filter(([, count]) => count > 0));
  }

  /**
   * Creates a `queued` deployment with an empty log, with the id given (a Start's guard chooses it first, to
   * find out whether a creation that timed out was made) or a fresh one.
   */
  async create(
    command: string | null,
    options: CreateOptions = {},
  ): Promise<Deployment> {
    const { now = new Date(), id = crypto.randomUUID() } = options;
    const deployment: Deployment = {
      id,
      status: "queued",
      target: options.target ?? DEFAULT_TARGET,
      params: { ...options.params },
      command,
      createdAt: now.toISOString(),
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      reason: null,
      startedBy: options.startedBy ?? null,
      cancelledBy: null,
      rerunOf: options.rerunOf ?? null,
    };
    if (this.#shared) {
      await this.#shared.create(deployment);
      // Claimed by another instance meanwhile, and heard of: that record is the newer one.
      this.apply(deployment);
    } else {
      await this.#store.save(deployment);
      this.#set(deployment);
      this.dispatchEvent(new CustomEvent("change", { detail: deployment }));
    }
    await this.saveUnsaved();
    return deployment;
  }

  /**
   * Applies a record as stored by someone else (another instance, or a script of the cluster's), and tells
   * listeners if it changed anything. Changes are applied in the order of a deployment's life and never back:
   * an older copy heard late (the echo of this instance's own write) changes nothing. A stored ended record wins
   * over this instance's view, even an ended one: the store never replaces an ended record, so it is the truth.
   */
  apply(record: Deployment): void {
    const current = this.#records.get(record.id);
    if (current) {
      if (sameRecord(current, record)) return;
      if (isFinal(current.status) ? !isFinal(record.status) : stage(record) < stage(current)) return;
    }
    this.#set(record);
    if (isFinal(record.status)) {
      // What this instance could not write (Redis away) is not what the store keeps: nothing left to write.
      this.#unsaved.delete(record.id);
      this.#finished.push(record);
    }
    this.dispatchEvent(new CustomEvent("change", { detail: record }));
    if (isFinal(record.status)) this.#prune().catch(() => {});
  }

  /** Forgets a deployment deleted by someone else, and tells listeners. */
  applyRemoval(id: string): void {
    const current = this.#records.get(id);
    if (!current) return;
    this.#delete(current);
    this.#unsaved.delete(id);
    this.dispatchEvent(new CustomEvent("remove", { detail: id }));
  }

  /**
   * Deletes the finished deployments beyond the number to keep (in a cluster, when no other instance does at
   * the time): after every end, and from time to time in a cluster, where another instance may have been
   * pruning when this one's deployment ended.
   */
  async prune(): Promise<void> {
    await this.#prune();
  }

  /** Changes a record, writes it to the store, then tells listeners. An ended deployment never changes. */
  async update(
    id: string,
    patch: Partial<Omit<Deployment, "id">>,
    options: UpdateOptions = {},
  ): Promise<Deployment> {
    const before = this.#records.get(id);
    if (options.notice !== undefined && before && !isFinal(before.status)) {
      await writeNotice(this.#store, id, options.notice);
    }
    const current = this.#records.get(id);
    if (!current) throw new RangeError(`Cannot update deployment ${id}: no such deployment`);
    if (isFinal(current.status)) return current;
    const next = { ...current, ...patch };
    this.#set(next);
    let ended: Deployment | undefined;
    try {
      await this.#store.save(next);
      this.#unsaved.delete(id);
    } catch (error) {
      if (!(error instanceof RecordEndedError)) {
        this.#unsaved.add(id);
        throw error;
      }
      ended = error.stored;
    } finally {
      // Even when the record could not be written (a full disk), this process knows the truth: say it. Unless,
      // in a cluster, what another instance stored won meanwhile.
      if (!ended && (!this.#shared || this.#records.get(id) === next)) {
        this.dispatchEvent(new CustomEvent("change", { detail: next }));
        // Only once its write is over: deleted as too old while the write is under way, it would come back.
        if (isFinal(next.status)) this.#finished.push(next);
      }
    }
    if (ended) {
      // Another instance ended it first (a reaper that found its lease lapsed): the stored end is the truth.
      if (this.#records.get(id) === next) this.#set(current);
      this.apply(ended);
      return this.#records.get(id) ?? ended;
    }
    await this.saveUnsaved();
    if (isFinal(next.status)) await this.#prune();
    return next;
  }

  /**
   * Gives every deployment of `ids` the same change (at shutdown, the queue's), {@linkcode WRITES_AT_ONCE}
   * writes at a time. A record that cannot be written stays changed in memory and is left to
   * {@linkcode saveUnsaved}, which says whether all were written in the end.
   */
  async updateAll(
    ids: readonly string[],
    patch: Partial<Omit<Deployment, "id">>,
    options: UpdateOptions = {},
  ): Promise<void> {
    await forEachAtOnce(
      ids,
      WRITES_AT_ONCE,
      (id) => this.update(id, patch, options).then(() => {}, () => {}),
    );
  }

  /**
   * From now on (a shutdown) deletes nothing: the deadline goes to writing what happened to every deployment,
   * and the next start deletes those beyond the number to keep.
   */
  stopPruning(): void {
    this.#pruning = false;
  }

  /** Writes the records whose last write failed; true when none is left unwritten. */
  async saveUnsaved(): Promise<boolean> {
    // Not a copy of the set: this runs after every write, and the set may be long while the disk is full.
    for (const id of this.#unsaved) {
      try {
        // Written again if it changed meanwhile (an update racing this write): an older copy must not land last.
        for (let record = this.#records.get(id); record;) {
          try {
            await this.#store.save(record);
          } catch (error) {
            if (!(error instanceof RecordEndedError)) throw error;
            // Ended by another instance meanwhile: that is what stays.
            this.apply(error.stored);
            break;
          }
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

  /** What the cluster's feed calls. */
  #listener(): RecordsListener {
    return {
      change: (record) => this.apply(record),
      remove: (id) => this.applyRemoval(id),
      reload: (records) => {
        const listed = new Set(records.map(({ id }) => id));
        for (const record of records) this.apply(record);
        for (const [id, record] of this.#records) {
          // Not stored (Redis lost its data, or has not got this instance's writes yet): what this instance
          // runs and what it could not write yet are written again by it, so they stay.
          const ours = !isFinal(record.status) && record.instance === this.#shared?.instance;
          if (!listed.has(id) && !ours && !this.#unsaved.has(id)) this.applyRemoval(id);
        }
      },
    };
  }

  /** Puts a record in memory, new or changed, and counts its status. */
  #set(record: Deployment): void {
    const before = this.#records.get(record.id);
    if (before) this.#count(before.status, -1);
    this.#count(record.status, 1);
    this.#records.set(record.id, record);
    // A change keeps its place (the id and creation never change); a new record goes where it belongs, near the
    // top unless a clock was set back.
    if (!before && this.#order) {
      const cursor = cursorOf(record);
      this.#order.splice(placeOf(this.#order, cursor, false), 0, cursor);
    }
  }

  #delete(record: Deployment): void {
    this.#records.delete(record.id);
    this.#count(record.status, -1);
    if (this.#order) {
      const index = placeOf(this.#order, record, false);
      if (this.#order[index]?.id === record.id) this.#order.splice(index, 1);
    }
  }

  /** The list's order; before load has built it (records heard while listing), a sort of what there is. */
  #ordered(): DeploymentCursor[] {
    return this.#order ?? [...this.#records.values()].map(cursorOf).sort(newestFirst);
  }

  #count(status: Status, by: number): void {
    this.#counts.set(status, (this.#counts.get(status) ?? 0) + by);
  }

  /**
   * Deletes the finished deployments beyond the number to keep, those that finished longest ago first, records
   * and logs alike. By when they finished, not when they were created: a long deployment that ends after
   * shorter ones started later is the newest news, not the first to go.
   */
  async #prune(): Promise<void> {
    if (!this.#pruning || this.#finished.size <= this.#keep) return;
    if (this.#shared) {
      // Redis away: the next end, or the cluster's next look, prunes.
      await this.#shared.prune(() => this.#pruneNow()).catch(() => {});
    } else {
      await this.#pruneNow();
    }
  }

  async #pruneNow(): Promise<void> {
    const old: string[] = [];
    while (this.#pruning && this.#finished.size > this.#keep) {
      const record = this.#finished.pop()!;
      // Replaced since (in a cluster, by the stored ended record) or deleted by another instance: not counted.
      if (this.#records.get(record.id) !== record) continue;
      this.#delete(record);
      this.dispatchEvent(new CustomEvent("remove", { detail: record.id }));
      old.push(record.id);
    }
    // Many at a start after a long queue was stopped, or after --keep was lowered.
    await forEachAtOnce(old, WRITES_AT_ONCE, async (id) => {
      try {
        await this.#store.remove(id);
      } catch (error) {
        console.error(`shiplog: cannot delete old deployment ${id}:`, error);
      }
    });
  }
}

/** Calls `task` for every item, at most `limit` at once, in the items' order; resolves when all have settled. */
async function forEachAtOnce<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const pending = items.values();
  const worker = async () => {
    for (const item of pending) await task(item);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Where a record is in its deployment's life: queued, running, ended. */
function stage(record: Deployment): number {
  return record.status === "queued" ? 0 : record.status === "running" ? 1 : 2;
}

/** True when two records say the same (whatever the order of their fields: Redis's scripts write their own). */
function sameRecord(a: Deployment, b: Deployment): boolean {
  return a.id === b.id && a.status === b.status && a.command === b.command && a.createdAt === b.createdAt &&
    a.startedAt === b.startedAt && a.finishedAt === b.finishedAt && a.exitCode === b.exitCode &&
    a.reason === b.reason && (a.instance ?? null) === (b.instance ?? null) && a.target === b.target &&
    a.startedBy === b.startedBy && a.cancelledBy === b.cancelledBy && a.rerunOf === b.rerunOf &&
    sameParams(a.params, b.params);
}

/** True when two sets of parameters hold the same values (in any order: cjson writes a table's keys in its own). */
function sameParams(a: Record<string, string>, b: Record<string, string>): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => b[name] === a[name]);
}

/** Newest first; ids break ties of the same millisecond, so the order is the same after a restart. */
function newestFirst(a: DeploymentCursor, b: DeploymentCursor): number {
  return compareText(b.createdAt, a.createdAt) || compareText(b.id, a.id);
}

/** True when `record` is one that `filter` asks for. */
export function matchesFilter(record: Deployment, filter: DeploymentFilter): boolean {
  return (filter.target === undefined || record.target === filter.target) &&
    (filter.status === undefined || record.status === filter.status);
}

/** Where a page after `record` starts. */
function cursorOf({ createdAt, id }: DeploymentCursor): DeploymentCursor {
  return { createdAt, id };
}

/**
 * The first place in `order` (newest first) that comes after `cursor` (`after`), or at or after it: a binary
 * search.
 */
function placeOf(order: readonly DeploymentCursor[], cursor: DeploymentCursor, after: boolean): number {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const comparison = newestFirst(order[middle], cursor);
    if (comparison < 0 || (after && comparison === 0)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Text by code points: ISO dates and lowercase UUIDs sort as they should, faster than `localeCompare`. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
