/**
 * @module
 * Fan-out of live log lines: one follower of a deployment's log, shared by all of its viewers and closed with
 * the last one. Each new batch of lines is encoded as SSE once and the same bytes go to every viewer. When the
 * deployment ends, the hub reads the log to its end, hands out the last lines, and then tells every viewer.
 */

import { type Deployment, isFinal } from "../logs/deployment.ts";
import type { DeploymentChange, Deployments } from "../runs/deployments.ts";
import type { LineBatch, LogFollower, LogStore } from "../logs/log_store.ts";
import { settlesWithin } from "../logs/settles_within.ts";
import { encodeLogLines } from "../logs/sse_encoder.ts";

/**
 * Consecutive log lines as SSE events, encoded once and shared by every viewer. Only the bytes, not the lines'
 * text: a batch may wait in the queues of slow viewers, and the text would double what it holds.
 */
export interface EncodedBatch {
  /** The number of the first line, also the id of the first event. */
  firstLine: number;
  /** How many lines, one event each. */
  count: number;
  /** Where the batch ends in the log, in bytes (see {@linkcode LineBatch}). */
  end: number;
  bytes: Uint8Array;
  /** When each line was first seen and which were of stderr (see {@linkcode LineBatch}), for `times` events. */
  times: readonly number[];
  stderr: readonly number[];
  /** The `times` event of the whole batch, encoded by the first viewer that sends it, for all the others. */
  timesBytes?: Uint8Array;
}

/** What a viewer of one deployment's log is told. */
export interface LogViewer {
  /** Lines appended to the log. */
  lines(batch: EncodedBatch): void;
  /** The deployment's record changed. */
  status(deployment: Deployment): void;
  /** The log was truncated, replaced or deleted. */
  reset(): void;
  /** The deployment ended and every line appended until then has been handed out. */
  end(deployment: Deployment): void;
  /** Bytes handed to this viewer that its client has not read yet; `undefined` while it reads the log itself. */
  readonly backlog: number | undefined;
  /** Resolves once the client has read everything handed to it, or the viewer has gone. */
  drained(): Promise<void>;
}

/**
 * How long a viewer stays: until it ends. An event stream is one; a plain callback, not an abort listener,
 * because thousands of idle viewers each pay for whatever this costs.
 */
export interface ViewerLifetime {
  readonly closed: boolean;
  /** Calls `callback` once when the viewer goes (at once if it has). */
  onEnd(callback: () => void): void;
}

interface Channel {
  viewers: Set<LogViewer>;
  follower: Promise<LogFollower>;
  ending: boolean;
}

const encoder = new TextEncoder();

/**
 * In a burst, the follower reads on at once while some viewer of live lines has less than this waiting, and
 * otherwise waits for one to catch up: the fastest viewer sets the pace, memory holds about this much per log,
 * and a viewer that falls far behind the others reads from the file on its own.
 */
const PACE_BYTES = 1024 * 1024;
/** While it waits, the follower looks again this often: a viewer that joined or caught up may take more. */
const PACE_RECHECK_MS = 50;

/** Shares one log follower per deployment among its viewers. */
export class LogHub {
  #store: LogStore;
  #deployments: Deployments;
  #channels = new Map<string, Channel>();
  /** Deployments that ended and whose viewers are being told, so shutdown can wait for them. */
  #ending = new Set<Promise<void>>();
  #onChange = (event: Event) => this.#changed((event as DeploymentChange).detail);
  /** Set at shutdown: the followers read on without waiting for viewers. */
  #unpaced = false;

  constructor(store: LogStore, deployments: Deployments) {
    this.#store = store;
    this.#deployments = deployments;
    deployments.addEventListener("change", this.#onChange);
  }

  /** Viewers connected, over all deployments. */
  get viewerCount(): number {
    let count = 0;
    for (const channel of this.#channels.values()) count += channel.viewers.size;
    return count;
  }

  /** Deployments whose log is being followed. */
  get followedCount(): number {
    return this.#channels.size;
  }

  /**
   * Registers a viewer until its `lifetime` ends. Resolves once the log is followed: every line appended from then
   * on reaches the viewer, so a history read after this resolves leaves no gap.
   */
  async subscribe(id: string, viewer: LogViewer, lifetime: ViewerLifetime): Promise<void> {
    // A viewer already gone would be kept, and its log followed, for nothing.
    if (lifetime.closed) return;
    let channel = this.#channels.get(id);
    if (!channel) {
      const created: Channel = { viewers: new Set(), follower: Promise.resolve(null!), ending: false };
      created.follower = this.#store.follow(id, {
        onLines: (batch) => this.#broadcast(created, batch),
        onReset: () => {
          for (const each of created.viewers) each.reset();
        },
        pace: () => this.#pace(created),
      });
      channel = created;
      this.#channels.set(id, channel);
      channel.follower.catch(() => this.#closeChannel(id, created));
    }
    const joined = channel;
    joined.viewers.add(viewer);
    lifetime.onEnd(() => {
      joined.viewers.delete(viewer);
      if (joined.viewers.size === 0) this.#closeChannel(id, joined);
    });
    await joined.follower;
    // The deployment may have ended while the follower opened, before this viewer could hear of it.
    const deployment = this.#deployments.get(id);
    if (deployment && isFinal(deployment.status) && !joined.ending) this.#end(id, joined, deployment);
  }

  /**
   * At shutdown: stops pacing bursts to viewers (they resume from whoever serves next), and resolves once the
   * viewers of every deployment that has ended so far have been told (`end`).
   */
  async settled(): Promise<void> {
    this.#unpaced = true;
    await Promise.all(this.#ending);
  }

  /** Stops following every log. */
  close(): void {
    this.#unpaced = true;
    this.#deployments.removeEventListener("change", this.#onChange);
    for (const [id, channel] of this.#channels) this.#closeChannel(id, channel);
  }

  #broadcast(channel: Channel, batch: LineBatch): void {
    if (channel.viewers.size === 0) return;
    const { firstLine, lines, end } = batch;
    const bytes = encoder.encode(encodeLogLines(firstLine, lines));
    const times = batch.times ?? new Array<number>(lines.length).fill(0);
    const encoded = { firstLine, count: lines.length, end, bytes, times, stderr: batch.stderr ?? [] };
    for (const viewer of channel.viewers) viewer.lines(encoded);
  }

  /** Undefined when the follower may read on now, else a promise that resolves when it may. */
  #pace(channel: Channel): Promise<void> | undefined {
    const behind = this.#behind(channel);
    return behind && this.#waitForRoom(channel, behind);
  }

  /** The viewers of live lines if every one has PACE_BYTES or more waiting; else (or when stopping) none. */
  #behind(channel: Channel): LogViewer[] | undefined {
    if (this.#unpaced) return undefined;
    let behind: LogViewer[] | undefined;
    for (const viewer of channel.viewers) {
      const backlog = viewer.backlog;
      // A viewer reading the file on its own does not wait for the next lines, nor do they crowd it.
      if (backlog === undefined) continue;
      if (backlog < PACE_BYTES) return undefined;
      (behind ??= []).push(viewer);
    }
    return behind;
  }

  /** Waits until a viewer has taken all it was given, looking again now and then for one that joined or left. */
  async #waitForRoom(channel: Channel, behind: LogViewer[] | undefined): Promise<void> {
    for (; behind; behind = this.#behind(channel)) {
      await settlesWithin(Promise.race(behind.map((viewer) => viewer.drained())), PACE_RECHECK_MS);
    }
  }

  #changed(deployment: Deployment): void {
    const channel = this.#channels.get(deployment.id);
    if (!channel) return;
    for (const viewer of channel.viewers) viewer.status(deployment);
    if (isFinal(deployment.status) && !channel.ending) this.#end(deployment.id, channel, deployment);
  }

  #end(id: string, channel: Channel, deployment: Deployment): void {
    channel.ending = true;
    const ending = (async () => {
      try {
        await (await channel.follower).catchUp();
      } catch (error) {
        console.error(`shiplog: reading the end of the log of ${id} failed:`, error);
      }
      for (const viewer of [...channel.viewers]) viewer.end(deployment);
      this.#closeChannel(id, channel);
    })();
    this.#ending.add(ending);
    ending.finally(() => this.#ending.delete(ending));
  }

  #closeChannel(id: string, channel: Channel): void {
    if (this.#channels.get(id) === channel) this.#channels.delete(id);
    channel.follower.then((follower) => follower.close(), () => {});
  }
}
