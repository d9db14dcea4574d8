/**
 * @module
 * Runs deployments: at most `maxRunning` at once and one at a time per target, the rest `queued` first in first
 * out (see {@linkcode RunQueue}). A deployment is its target's command run with `sh -c` in the target's folder
 * and its own process group (so stopping it stops everything it started), or the built-in simulation. The
 * deployment's parameters reach the command as environment variables, never as shell text. Its stdout and
 * stderr are read apart and appended to the log line by line as they come, each line with the time it was read
 * and, for stderr, its mark. Cancel sends SIGINT to the group, then SIGTERM,
 * then SIGKILL, each after a grace period, and the log gets a notice of who cancelled (`shiplog: cancelled by
 * alice`), as it gets one of a shutdown (`shiplog: interrupted: shiplog was stopped`). When the command exits,
 * what it left running is stopped: its group, and processes that left the group but still hold its output.
 * Where the queue is kept is the {@linkcode RunQueue}'s business: this process's memory, or Redis, shared with
 * the other instances of a cluster.
 */

import { type Deployment, isFinal } from "../logs/deployment.ts";
import type { DeploymentChange, Deployments } from "./deployments.ts";
import { LineSplitter } from "../logs/line_splitter.ts";
import { type LogAppender, type LogStore, RecordEndedError, type WriteOptions } from "../logs/log_store.ts";
import { findOrphanGroups } from "./orphans.ts";
import { OutputFilter } from "../logs/output_filter.ts";
import {
  type CancelOptions,
  LocalRunQueue,
  type RunQueue,
  type StopReason,
  type StopRequest,
} from "./run_queue.ts";
import { cancelledNotice, interruptedNotice } from "./log_notice.ts";
import { settlesWithin } from "../logs/settles_within.ts";
import { simulateDeployment } from "./simulated_deployment.ts";
import { PARAM_NAME, type Target, Targets } from "./targets.ts";

/** Options of {@linkcode Runner}. */
export interface RunnerOptions {
  /** The deploy command for `sh -c` of the one target, when there is no `targets`; `undefined`: the simulation. */
  command?: string;
  /** Where deployments go: each runs its target's command. Default: `Targets.single(command)`. */
  targets?: Targets;
  /** Deployments running at once. Default 2. */
  maxRunning?: number;
  /** Milliseconds between SIGINT, SIGTERM and SIGKILL when stopping a command. Default 2000. */
  graceMs?: number;
  /** Milliseconds between two lines of the simulation. Default 350. */
  simulationLineDelayMs?: number;
  /**
   * The command's environment, besides the variables shiplog defines for it (`SHIPLOG_DEPLOYMENT_ID`,
   * `SHIPLOG_TARGET`, `SHIPLOG_STARTED_BY`, `SHIPLOG_PARAM_<NAME>`). Default: shiplog's own, inherited as it is.
   */
  env?: Readonly<Record<string, string>>;
  /** Values replaced by `***` before a line is written. */
  secrets?: readonly string[];
  /** Bytes a log may reach; past it one notice is written and further output dropped. Default: no cap. */
  maxLogBytes?: number;
  /** Deployments that may wait `queued`; {@linkcode Runner.start} refuses more. Default 1000. */
  maxQueued?: number;
  /** Where queued deployments wait. Default: a {@linkcode LocalRunQueue}, this process's own. */
  queue?: RunQueue;
}

interface Running {
  stop: AbortController;
  done: Promise<void>;
  /** Who cancelled it, once cancelled (`null`: nobody named). */
  cancelledBy: string | null;
}

/** Queues and runs deployments, writing their output to the store and their statuses to the registry. */
export class Runner {
  #deployments: Deployments;
  #store: LogStore;
  #targets: Targets;
  #maxRunning: number;
  #graceMs: number;
  #lineDelayMs: number | undefined;
  #env: Readonly<Record<string, string>> | undefined;
  #secrets: readonly string[];
  #maxLogBytes: number | undefined;
  #maxQueued: number;
  #queue: RunQueue;
  /** Claims asked of a shared queue and not answered yet: they count against the slots. */
  #claims = new Set<Promise<unknown>>();
  /** Starts whose deployment is being created: they count against the cap, and shutdown waits for them. */
  #starting = new Set<Promise<unknown>>();
  #running = new Map<string, Running>();
  #shuttingDown = false;

  constructor(deployments: Deployments, store: LogStore, options: RunnerOptions = {}) {
    this.#deployments = deployments;
    this.#store = store;
    this.#targets = options.targets ?? Targets.single(options.command);
    this.#maxRunning = options.maxRunning ?? 2;
    this.#graceMs = options.graceMs ?? 2000;
    this.#lineDelayMs = options.simulationLineDelayMs;
    this.#env = options.env;
    this.#secrets = options.secrets ?? [];
    this.#maxLogBytes = options.maxLogBytes;
    this.#maxQueued = options.maxQueued ?? 1000;
    this.#queue = options.queue ?? new LocalRunQueue(deployments);
    this.#queue.addEventListener("available", this.#onAvailable);
    this.#queue.addEventListener("stop", this.#onStop);
    deployments.addEventListener("change", this.#onChange);
  }

  #onAvailable = () => this.#startNext();
  #onStop = (event: Event) => {
    const { id, reason, by } = (event as StopRequest).detail;
    const running = this.#running.get(id);
    if (running) this.#stop(running, reason, by);
  };
  /**
   * A deployment running here that ended elsewhere (another instance recorded it interrupted: this one was
   * cut off from Redis past its lease) is stopped: the record says it is over, and it must not run on.
   */
  #onChange = (event: Event) => {
    const record = (event as DeploymentChange).detail;
    if (isFinal(record.status)) this.#running.get(record.id)?.stop.abort("interrupted" satisfies StopReason);
  };

  /** Where deployments go, and the command each runs. */
  get targets(): Targets {
    return this.#targets;
  }

  /** The command of the only target (`null`: the simulation, or several targets, each with its own). */
  get command(): string | null {
    return this.#targets.only?.command ?? null;
  }

  get runningCount(): number {
    return this.#running.size;
  }

  /** How many deployments {@linkcode start} takes at most while others wait. */
  get maxQueued(): number {
    return this.#maxQueued;
  }

  /** True once {@linkcode shutdown} was called: {@linkcode start} takes nothing more. */
  get stopping(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Creates a deployment (`queued`) with `create`, queues it and starts it when a slot is free. Resolves with
   * `undefined`, having created nothing, when `maxQueued` deployments wait already (counting those being
   * created) or when shutting down.
   */
  async start(create: () => Promise<Deployment>): Promise<Deployment | undefined> {
    if (this.#shuttingDown || this.#queue.size + this.#starting.size >= this.#maxQueued) return undefined;
    // Queued even when shutdown has begun meanwhile: shutdown waits for this, then interrupts the queue.
    const started = create().then((deployment) => {
      this.#queue.add(deployment.id);
      this.#startNext();
      return deployment;
    });
    this.#starting.add(started);
    try {
      return await started;
    } finally {
      this.#starting.delete(started);
    }
  }

  /**
   * Stops a queued or running deployment, recording who did (`by`, in `cancelledBy` and the log's notice);
   * resolves once it has ended. False when it was not active.
   */
  async cancel(id: string, options: CancelOptions = {}): Promise<boolean> {
    const running = this.#running.get(id);
    if (!running) return await this.#queue.cancel(id, options);
    this.#stop(running, "cancelled", options.by ?? null);
    await running.done;
    return true;
  }

  /**
   * Stops everything: queued and running deployments end `interrupted`. The queue's records are written a few
   * at a time while the running ones stop, so that a long queue is on disk within the shutdown deadline.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    // A claim answered now runs a deployment recorded running here: it stops with the others.
    await Promise.allSettled(this.#claims);
    this.#queue.removeEventListener("available", this.#onAvailable);
    const stopped = [...this.#running.values()].map((running) => {
      this.#stop(running, "interrupted", null);
      return running.done;
    });
    // A start under way ends in the queue, interrupted with the rest.
    await Promise.allSettled(this.#starting);
    const queued = this.#queue.close();
    const finishedAt = new Date().toISOString();
    await Promise.all([
      this.#deployments.updateAll(queued, { status: "interrupted", finishedAt, reason: STOPPED }, {
        notice: interruptedNotice(STOPPED),
      }),
      ...stopped,
    ]);
    this.#queue.removeEventListener("stop", this.#onStop);
    this.#deployments.removeEventListener("change", this.#onChange);
  }

  #startNext(): void {
    while (
      !this.#shuttingDown && this.#running.size + this.#claims.size < this.#maxRunning && this.#queue.size > 0
    ) {
      const claimed = this.#queue.claim();
      if (!(claimed instanceof Promise)) {
        if (claimed === undefined) return;
        this.#launch(claimed);
        continue;
      }
      // Only a claim that found one asks for the next: none found, the queue says when one is `available`.
      const claim: Promise<unknown> = claimed.then((id) => {
        if (id !== undefined) this.#launch(id);
        return id;
      }, () => undefined).then((id) => {
        this.#claims.delete(claim);
        if (id !== undefined) this.#startNext();
      });
      this.#claims.add(claim);
    }
  }

  /** Stops a running deployment for `reason`; the first stop asked is the one recorded. */
  #stop(running: Running, reason: StopReason, by: string | null): void {
    if (running.stop.signal.aborted) return;
    if (reason === "cancelled") running.cancelledBy = by;
    running.stop.abort(reason);
  }

  #launch(id: string): void {
    const stop = new AbortController();
    const done = this.#run(id, stop.signal).catch((error) => {
      console.error(`shiplog: deployment ${id} could not be run:`, error);
    }).finally(() => {
      this.#running.delete(id);
      this.#queue.finished(id);
      this.#startNext();
    });
    this.#running.set(id, { stop, done, cancelledBy: null });
  }

  async #run(id: string, signal: AbortSignal): Promise<void> {
    let log: LogAppender | undefined;
    let writeError: Error | undefined;
    const failed = new AbortController();
    /** The store refused a write: the deployment has ended in its stored record. */
    const ended = new AbortController();
    try {
      log = await this.#store.openAppender(id);
      // A shared queue's claim recorded it running already; ended meanwhile (cancelled elsewhere), it is over.
      const record = this.#deployments.get(id);
      if (record === undefined || isFinal(record.status)) return;
      // The target as this server's config has it now: a queued deployment whose target was taken out of the
      // config (by a restart, or on another instance) has nothing to run.
      const target = this.#targets.get(record.target);
      if (target === undefined) {
        await this.#recordEnd(id, {
          status: "failed",
          finishedAt: new Date().toISOString(),
          reason: `Target "${record.target}" is not in this server's config`,
        });
        return;
      }
      if (record.status === "queued") {
        await this.#deployments.update(id, { status: "running", startedAt: new Date().toISOString() });
      }
      const appender = log;
      const filter = new OutputFilter({ secrets: this.#secrets, maxBytes: this.#maxLogBytes });
      const write = async (lines: string[], options?: WriteOptions) => {
        try {
          await appender.write(filter.filter(lines), options);
        } catch (error) {
          if (error instanceof RecordEndedError) {
            // Ended elsewhere (another instance recorded it interrupted while this one was cut off from Redis):
            // it stops as a stored end heard from the cluster stops it, and that end stays, not a failure.
            this.#deployments.apply(error.stored);
            ended.abort();
            return;
          }
          // A full disk or a broken file ends the deployment: output that cannot be kept must not be run blind.
          writeError ??= error as Error;
          failed.abort();
        }
      };
      const exitCode = await (target.command === null
        ? simulateDeployment(write, {
          signal: AbortSignal.any([signal, failed.signal, ended.signal]),
          lineDelayMs: this.#lineDelayMs,
        })
        : this.#runCommand(record, target, write, {
          signal: AbortSignal.any([signal, failed.signal, ended.signal]),
          // Past the size cap (or a write error, or the end) output is only drained, not split and decoded.
          keeping: () => !filter.full && writeError === undefined && !ended.signal.aborted,
        }));
      const stopped = !writeError && signal.aborted ? signal.reason as StopReason : undefined;
      const cancelledBy = stopped === "cancelled" ? this.#running.get(id)?.cancelledBy ?? null : null;
      // Said in the log, before the end (a cluster's store refuses lines after it), unless it ended elsewhere.
      const recorded = this.#deployments.get(id)?.status;
      if (stopped && !ended.signal.aborted && recorded !== undefined && !isFinal(recorded)) {
        await log.write([stopped === "cancelled" ? cancelledNotice(cancelledBy) : interruptedNotice(STOPPED)])
          .catch(() => {});
      }
      const finishedAt = new Date().toISOString();
      await this.#recordEnd(
        id,
        writeError
          ? { status: "failed", finishedAt, exitCode, reason: `Cannot write the log: ${writeError.message}` }
          : stopped
          ? {
            status: stopped,
            finishedAt,
            exitCode,
            reason: stopped === "interrupted" ? STOPPED : null,
            cancelledBy,
          }
          : {
            status: exitCode === 0 ? "succeeded" : "failed",
            finishedAt,
            exitCode,
            reason: exitCode === 0
              ? null
              : exitCode === null
              ? "the command was killed"
              : `exit code ${exitCode}`,
          },
      );
    } catch (error) {
      await this.#deployments.update(id, {
        status: "failed",
        finishedAt: new Date().toISOString(),
        reason: `Cannot run the deployment: ${(error as Error).message}`,
      }).catch(() => {});
      throw error;
    } finally {
      log?.close();
    }
  }

  /**
   * Records how a deployment ended. A store that cannot take it now (a full disk, Redis away) is not a failure
   * of the run: the record is changed in memory, and written after the next write that succeeds.
   */
  async #recordEnd(id: string, patch: Partial<Omit<Deployment, "id">>): Promise<void> {
    try {
      await this.#deployments.update(id, patch);
    } catch (error) {
      console.error(
        `shiplog: cannot write yet how deployment ${id} ended (${patch.status}): ${
          (error as Error).message
        }; ` +
          "it is written once the store takes writes again",
      );
    }
  }

  async #runCommand(
    deployment: Deployment,
    target: Target,
    write: (lines: string[], options: WriteOptions) => Promise<void>,
    { signal, keeping }: { signal: AbortSignal; keeping: () => boolean },
  ): Promise<number | null> {
    const { id } = deployment;
    const child = new Deno.Command("sh", {
      args: ["-c", target.command!],
      cwd: target.cwd ?? undefined,
      env: { ...this.#env && withoutOwnVariables(this.#env), ...commandVariables(deployment) },
      clearEnv: this.#env !== undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Its own session and process group, so that a signal to the group reaches every process it starts.
      detached: true,
    }).spawn();
    const stopping = this.#stopOnAbort(child, signal);
    const readers = [child.stdout.getReader(), child.stderr.getReader()];
    // Each pipe on its own, so that a line is known to be of stderr; a line's time is when its end was read.
    const copy = async (reader: ReadableStreamDefaultReader<Uint8Array>, stderr: boolean) => {
      const splitter = new LineSplitter({ maxLineBytes: MAX_LINE_BYTES });
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        if (keeping()) await write(splitter.push(chunk.value), { time: Date.now(), stderr });
      }
      if (keeping()) await write(splitter.flush(), { time: Date.now(), stderr });
    };
    const copied = Promise.all(readers.map((reader, i) => copy(reader, i === 1)));
    const status = await child.status;
    // The deployment is over when its command exits: processes it left behind are stopped like a cancel would
    // stop them, SIGTERM then SIGKILL, so nothing outlives its deployment, whether or not it holds the pipes.
    await this.#stopGroup(child.pid);
    // Output still open with the group gone: something left the group (setsid, a double fork) holding it, and
    // would keep the deployment running for ever. Its processes are found by the deployment's id in their
    // environment, as the orphans of a crashed shiplog are, and stopped. A daemon that let go of the output is
    // left alone: started on purpose, and maybe in use by other deployments. A stopped deployment (a cancel, a
    // shutdown with its deadline) has spent its grace periods on the group already: then a moment is enough
    // for the output to end.
    const drainMs = signal.aborted ? Math.min(this.#graceMs, STOPPED_DRAIN_MS) : this.#graceMs;
    if (!await settlesWithin(copied, drainMs)) {
      // SIGTERM, then SIGKILL if the output is still open after the grace period. Waiting for the output, not
      // for the processes to be gone: a process that died stays in its group as a zombie until init reaps it,
      // which some inits (or a shiplog running as PID 1) do late or never.
      const groups = await findOrphanGroups([id], { holdingOutput: true });
      for (const group of groups) killGroup(group, "SIGTERM");
      if (groups.length > 0 && !await settlesWithin(copied, this.#graceMs)) {
        for (const group of groups) killGroup(group, "SIGKILL");
        await settlesWithin(copied, this.#graceMs);
      }
    }
    // One that also cleared its environment cannot be found (nothing to wait for, then): the output it holds
    // is no longer read.
    if (!await settlesWithin(copied, 0)) {
      await Promise.all(readers.map((reader) => reader.cancel()));
      await copied;
      if (keeping()) {
        await write(["[shiplog] a process the command left running still holds its output open"], {});
      }
    }
    await copied;
    await stopping.finish();
    return status.signal === null ? status.code : null;
  }

  /** SIGTERM to a process group, then SIGKILL to what is left of it after the grace period. */
  async #stopGroup(groupId: number): Promise<void> {
    if (!killGroup(groupId, "SIGTERM")) return;
    const deadline = performance.now() + this.#graceMs;
    while (killGroup(groupId, PROBE) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    killGroup(groupId, "SIGKILL");
  }

  /** On abort, signals the child's process group with growing force until it has exited. */
  #stopOnAbort(child: Deno.ChildProcess, signal: AbortSignal): { finish(): Promise<void> } {
    let exited = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake: (() => void) | undefined;
    const escalate = async () => {
      for (const name of ["SIGINT", "SIGTERM", "SIGKILL"] as const) {
        if (exited) return;
        if (!killGroup(child.pid, name)) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, this.#graceMs);
        });
      }
    };
    let escalation: Promise<void> = Promise.resolve();
    const onAbort = () => escalation = escalate();
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    child.status.then(() => {
      exited = true;
      clearTimeout(timer);
      wake?.();
    });
    return {
      finish: async () => {
        signal.removeEventListener("abort", onAbort);
        await escalation;
      },
    };
  }
}

/** Why a deployment stopped at shutdown was interrupted. */
const STOPPED = "shiplog was stopped";
/** How long the output of a stopped deployment may take to end once its group is gone. */
const STOPPED_DRAIN_MS = 200;
/** Longer output lines are cut into pieces of this many bytes (lines sent from outside too). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Signal 0 (kill(2)) only checks that a process exists; `Deno.Signal` does not name it. */
const PROBE = 0 as unknown as Deno.Signal;

/** The variables shiplog defines for a deployment's command: its id, target, who started it, its parameters. */
export function commandVariables(deployment: Deployment): Record<string, string> {
  const variables: Record<string, string> = {
    SHIPLOG_DEPLOYMENT_ID: deployment.id,
    SHIPLOG_TARGET: deployment.target,
    // Empty when nobody named started it, so that a script under `set -u` can still read it.
    SHIPLOG_STARTED_BY: deployment.startedBy ?? "",
  };
  for (const [name, value] of Object.entries(deployment.params)) {
    // Checked names only (a record read from elsewhere could hold anything): one variable per parameter.
    if (PARAM_NAME.test(name)) variables[`SHIPLOG_PARAM_${name.toUpperCase()}`] = value;
  }
  return variables;
}

/** `env` without the variables of another deployment's parameters: those of this one are its own. */
function withoutOwnVariables(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("SHIPLOG_PARAM_")));
}

/** Signals every process of a group; false when none is left. */
function killGroup(groupId: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-groupId, signal);
    return true;
  } catch {
    return false;
  }
}
