/**
 * @module
 * `deno task bench`: measures shiplog's live-log fan-out against a baseline, the smallest Deno SSE fan-out
 * (`baseline_server.ts`), with the same viewers (`viewer.ts`) and the same writer process (`writer.ts`) in one run,
 * and reports shiplog's figures as ratios to the baseline's (absolute times on shared machines drift).
 *
 * Every scenario starts a fresh server process (so peak RSS and CPU time belong to that scenario alone), opens
 * the viewers in this process, warms the path up with a few unmeasured `warmup=N` lines, lets a separate writer
 * process append numbered, time-stamped lines, and checks that every viewer received every line exactly once and
 * in order. Server CPU time comes from `/proc/<pid>/stat` (utime + stime), memory from `/proc/<pid>/status`
 * (VmHWM, VmRSS). The machine may be shared: the CPU other processes used during each measurement is reported,
 * and most scenarios run three times per system, alternating which goes first, reporting the median run.
 * Scenarios 1 to 6 are those of the benchmark's issue; 7 (resuming with `Last-Event-ID`) is shiplog's alone,
 * as the baseline keeps no line numbers.
 *
 * Scenario 8 is shiplog's alone too: cluster mode beside file mode in the same run. It starts a `redis-server`
 * of its own as the tests start theirs (`src/testing/redis_server.ts`: a free port, a temporary directory,
 * `deploy/redis.conf`), with `appendfsync everysec`, and two instances on it, `a` running the deployment and `b` only serving, opens 10 viewers
 * alternating between them, and has the writer `POST /api/deployments/<id>/log` to `a` (in cluster mode the log
 * is not a file): 500 lines at 50 lines/s, one per request, for latency; 500,000 lines, 1,000 per request, for
 * throughput. Then the same load against one file-mode shiplog, written through the same route. Its table rows
 * put the cluster in the shiplog column and file mode in the baseline column (ratio = cluster ÷ file mode); the
 * CPU per delivered line is both instances' together, redis-server's apart. It needs `redis-server` on PATH.
 *
 * Scenario 9 is the deployment page in Debian's Chromium (`bench/page_log.ts` measures inside the page): a
 * finished 1,000,000-line log (about 60 MB, eight steps in groups, one error line) opened, to its last line on
 * screen, with the longest main-thread task after the first paint (the Long Tasks API) and the most line
 * elements in any frame; a search for the error and one with about a thousand matches, Enter to the count
 * shown; then a live log at 5,000 lines/s for 20 s followed, the lag of the last line on screen behind its
 * writer in every frame. It needs `/usr/bin/chromium` (or `SHIPLOG_TEST_CHROMIUM`).
 *
 * Prints a Markdown table on stdout, progress on stderr, and writes all figures (every run) as JSON to
 * `bench/results/<timestamp>.json` (git-ignored).
 *
 * Options: `--only shiplog|baseline`, `--scenarios 1,2,…` (default all nine), `--rounds N` (runs per system
 * instead of each scenario's default), `--profile DIR` (V8 CPU profiles of the servers, `deno run --cpu-prof`;
 * scenario 8's named `-instance-a`, `-instance-b` and `-file-mode`).
 */

import {
  LatencyRecorder,
  type LatencySummary,
  openViewer,
  openViewers,
  type Viewer,
  wallClock,
} from "./viewer.ts";
import { readClockTicks, statCpuMs } from "./proc_stat.ts";
import { startRedisServer } from "../src/testing/redis_server.ts";
import { chromium as findChromium, launchChromium } from "../src/testing/chromium.ts";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import type { Browser } from "npm:puppeteer-core@25.16.0";
import {
  longestAfter,
  openProbed,
  pageWeight,
  readProbe,
  type SearchTiming,
  timeSearch,
  waitInPage,
} from "./page_log.ts";
import type { WriterReport, WriterSpec, WriterTarget } from "./writer.ts";

const REPO_ROOT = new URL("..", import.meta.url);
const REPO_ROOT_PATH = decodeURIComponent(REPO_ROOT.pathname);
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;

type SystemName = "shiplog" | "baseline";
const SYSTEMS: SystemName[] = ["shiplog", "baseline"];

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const benchStart = performance.now();

function progress(message: string): void {
  console.error(`[bench ${((performance.now() - benchStart) / 1000).toFixed(1).padStart(6)}s] ${message}`);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Resolves with `promise`, or rejects with a TimeoutError naming `what` after `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  // A decoder, not TextDecoderStream: with the DOM's types (the page scenario's) its stream types disagree.
  const decoder = new TextDecoder();
  let rest = "";
  for await (const bytes of stream) {
    const parts = (rest + decoder.decode(bytes, { stream: true })).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest !== "") yield rest;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and /proc

let clockTicks = 100;

/** CPU time (user + system, all threads) of a process in ms. */
function cpuMs(pid: number): number {
  return statCpuMs(Deno.readTextFileSync(`/proc/${pid}/stat`), clockTicks);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function isLiveResult(result: unknown): result is LiveResult {
  return typeof result === "object" && result !== null && "cpuPerLineUs" in result;
}

/** CPU time (ms) of several processes together (a cluster's instances). */
function cpuOfMs(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
}

/** CPU time (ms) of each thread of some processes, summed by thread name (`deno`, `notify-rs inotify`, …). */
function cpuByThreadMs(pids: number[]): Map<string, number> {
  const byName = new Map<string, number>();
  for (const pid of pids) {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      let stat: string;
      try {
        stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
      } catch {
        continue; // The thread ended meanwhile.
      }
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      byName.set(name, (byName.get(name) ?? 0) + statCpuMs(stat, clockTicks));
    }
  }
  return byName;
}

/** The name the kernel gives the thread of `Deno.watchFs` (notify's inotify loop, cut to 15 characters). */
const WATCHER_THREAD = /^notify-rs/;

/** VmHWM (peak) and VmRSS of a process in KiB. */
function memoryKiB(pid: number): { peak: number; rss: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peak: field("VmHWM"), rss: field("VmRSS") };
}

/** VmHWM and VmRSS of several processes, summed (KiB). */
function memoryOfKiB(pids: number[]): { peak: number; rss: number } {
  const each = pids.map(memoryKiB);
  return { peak: each.reduce((sum, m) => sum + m.peak, 0), rss: each.reduce((sum, m) => sum + m.rss, 0) };
}

/** CPU time (ms) the whole machine spent busy, from the first line of /proc/stat. */
function machineBusyMs(): number {
  const fields = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7];
  return busy * 1000 / clockTicks;
}

/** CPU time (ms) of this process alone: the viewers. */
function viewerCpuMs(): number {
  return cpuMs(Deno.pid);
}

/** CPU time (ms) of this process plus its reaped children (the writer processes). */
function ownCpuMs(): number {
  return statCpuMs(Deno.readTextFileSync("/proc/self/stat"), clockTicks, true);
}

/**
 * CPU used by other processes of the machine while a measurement runs, as a percentage of all cores: the
 * benchmark shares the machine, and a busy neighbour shows up here instead of silently in the figures.
 */
function otherLoad(serverPids: number[]): () => number {
  const start = {
    machine: machineBusyMs(),
    own: ownCpuMs(),
    server: cpuOfMs(serverPids),
    at: performance.now(),
  };
  return () => {
    const machine = machineBusyMs() - start.machine;
    const ours = ownCpuMs() - start.own + cpuOfMs(serverPids) - start.server;
    const elapsed = performance.now() - start.at;
    return Math.max(0, (machine - ours) / (elapsed * navigator.hardwareConcurrency)) * 100;
  };
}

/** Descendants of a process (children first), from /proc/<pid>/task/<tid>/children. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let tasks: string[] = [];
    try {
      tasks = [...Deno.readDirSync(`/proc/${parent}/task`)].map((entry) => entry.name);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${parent}/task/${task}/children`);
      } catch {
        continue;
      }
      for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

function commandLine(pid: number): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return null;
  }
}

/** A server process: started, its stdout scanned for the listening line, its output kept for diagnostics. */
class ServerProcess {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly tail: string[] = [];
  /** Descendant processes left behind after the server exited (a shiplog cleanup bug if not empty). */
  orphans: number[] = [];
  #exited = false;

  constructor(name: string, args: string[]) {
    this.name = name;
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT_PATH,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.child.pid;
    this.child.status.then(() => this.#exited = true);
    this.#drain(this.child.stderr, "stderr");
  }

  #keep(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 40) this.tail.shift();
  }

  #drain(stream: ReadableStream<Uint8Array>, label: string): void {
    (async () => {
      for await (const line of linesOf(stream)) this.#keep(`${label}: ${line}`);
    })().catch(() => {});
  }

  /** Waits for the stdout line matching `pattern` and keeps draining stdout afterwards. */
  async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    const lines = linesOf(this.child.stdout);
    const found = await within(
      START_TIMEOUT_MS,
      `${this.name} printing its listening line`,
      (async () => {
        for await (const line of lines) {
          this.#keep(`stdout: ${line}`);
          const match = pattern.exec(line);
          if (match) return match;
        }
        throw new Error(`${this.name} exited before listening:\n${this.tail.join("\n")}`);
      })(),
    );
    (async () => {
      for await (const line of lines) this.#keep(`stdout: ${line}`);
    })().catch(() => {});
    return found;
  }

  /** SIGTERM, then SIGKILL after a grace period; then kills descendants it left behind, by pid. */
  async stop(): Promise<void> {
    const before = descendants(this.pid).map((pid) => ({ pid, cmd: commandLine(pid) }));
    if (!this.#exited) {
      try {
        this.child.kill("SIGTERM");
      } catch { /* already gone */ }
      const exited = await Promise.race([
        this.child.status.then(() => true),
        delay(STOP_GRACE_MS).then(() => false),
      ]);
      if (!exited) {
        progress(`${this.name} (pid ${this.pid}) ignored SIGTERM for ${STOP_GRACE_MS} ms; sending SIGKILL`);
        for (const { pid } of before) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
        try {
          this.child.kill("SIGKILL");
        } catch { /* gone */ }
        await this.child.status;
      }
    }
    // Same pid and same command line as before: still our descendant, not a reused pid.
    this.orphans = before.filter(({ pid, cmd }) => cmd !== null && commandLine(pid) === cmd).map(({ pid }) =>
      pid
    );
    for (const pid of this.orphans) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    if (this.orphans.length > 0) {
      progress(`${this.name} left ${this.orphans.length} child process(es); killed them`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The two systems under test, behind one interface

interface System {
  name: SystemName;
  /** The process that takes the writes and serves the scenarios that need one viewer at a time. */
  pid: number;
  /** Every server process whose CPU time and memory count as the server's: `[pid]`, or a cluster's instances. */
  pids: number[];
  /** A cluster's `redis-server`, whose CPU time is reported apart from the instances'. */
  redisPid?: number;
  /** `http://127.0.0.1:PORT/` of the process at `pid`. */
  base: string;
  /** Creates `n` deployments (shiplog) or channels (baseline) ready to be written to and viewed. */
  createChannels(n: number): Promise<string[]>;
  eventsUrl(channel: string): string;
  /** The channel's event stream on every instance: live scenarios spread their viewers over them in turn. */
  eventsUrls(channel: string): string[];
  writerTarget(channels: string[]): WriterTarget;
  /** Ends a channel so that a new viewer gets its whole history and then `done`. */
  finish(channel: string): Promise<void>;
  stop(): Promise<void>;
}

/** How the writer reaches a shiplog: appending to the log files, or `POST /api/deployments/<id>/log`. */
type WriteOver = "files" | "http";

/** The writes of a POST batch stay under the default `--max-body-bytes` (64 KiB): lines are about 32 bytes. */
const HTTP_BATCH = 1000;

/** shiplog's HTTP API, as the scenarios use it, on the instance at `base`. */
function shiplogApi(base: string) {
  const statusOf = async (id: string): Promise<string> => {
    const response = await fetch(`${base}api/deployments/${id}`, { signal: AbortSignal.timeout(5_000) });
    return (await response.json()).status;
  };
  return {
    status: statusOf,
    /** `n` deployments of the server's command, through `POST /start`. */
    async start(n: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const response = await fetch(`${base}start`, {
          method: "POST",
          headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
          body: "",
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        if (response.status !== 201) {
          throw new Error(`POST /start -> ${response.status}: ${text.slice(0, 200)}`);
        }
        ids.push(JSON.parse(text).id);
      }
      return ids;
    },
    /** Waits until every deployment of `ids` is running. */
    async running(ids: string[]): Promise<void> {
      await within(
        15_000,
        "shiplog running the deployments",
        (async () => {
          for (const id of ids) while (await statusOf(id) !== "running") await delay(20);
        })(),
      );
    },
    async finish(id: string): Promise<void> {
      const response = await fetch(`${base}api/deployments/${id}/cancel`, {
        method: "POST",
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      if (response.status !== 200) {
        throw new Error(`cancel ${id} -> ${response.status}: ${text.slice(0, 200)}`);
      }
      await within(
        10_000,
        `deployment ${id} finishing after cancel`,
        (async () => {
          while (["queued", "running"].includes(await statusOf(id))) await delay(20);
        })(),
      );
    },
    logUrl: (id: string) => `${base}api/deployments/${id}/log`,
  };
}

/** Starts a shiplog process; resolves with it and its `http://127.0.0.1:PORT/`. */
async function startShiplogProcess(name: string, args: string[]): Promise<[ServerProcess, string]> {
  const server = new ServerProcess(name, args);
  try {
    return [server, (await server.waitFor(/http:\/\/127\.0\.0\.1:\d+\//))[0]];
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function startShiplog(
  extraArgs: string[],
  runtimeFlags: string[],
  writeOver: WriteOver = "files",
  command = "sleep 600",
): Promise<System> {
  const dir = await Deno.makeTempDir({ prefix: "shiplog-bench-" });
  let server: ServerProcess;
  let base: string;
  try {
    [server, base] = await startShiplogProcess("shiplog", [
      "run",
      "-A",
      ...runtimeFlags,
      "main.ts",
      "--port",
      "0",
      "--dir",
      dir,
      "--command",
      command,
      ...extraArgs,
    ]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const api = shiplogApi(base);
  const logPath = (id: string) => `${dir}/${id}.log`;
  return {
    name: "shiplog",
    pid: server.pid,
    pids: [server.pid],
    base,
    async createChannels(n) {
      const ids = await api.start(n);
      if (writeOver === "http") {
        await api.running(ids);
        return ids;
      }
      // The writer appends to the log file; wait until the runner has created it.
      await within(
        15_000,
        "shiplog creating the deployments' log files",
        (async () => {
          for (const id of ids) {
            for (;;) {
              try {
                await Deno.stat(logPath(id));
                break;
              } catch {
                await delay(20);
              }
            }
          }
        })(),
      );
      return ids;
    },
    eventsUrl: (id) => `${base}events/${id}`,
    eventsUrls: (id) => [`${base}events/${id}`],
    writerTarget: (ids) =>
      writeOver === "http"
        ? { kind: "http", urls: ids.map(api.logUrl) }
        : { kind: "files", paths: ids.map(logPath) },
    finish: api.finish,
    async stop() {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** `--cpu-prof-name=X.cpuprofile` made `X-<part>.cpuprofile`, for a scenario with several server processes. */
function profileFlags(runtimeFlags: string[], part: string): string[] {
  return runtimeFlags.map((flag) =>
    flag.startsWith("--cpu-prof-name=") ? flag.replace(/\.cpuprofile$/, `-${part}.cpuprofile`) : flag
  );
}

/**
 * Two shiplog instances on one `redis-server` of their own: `a` runs the deployments and takes the writes
 * (`POST /api/deployments/<id>/log`, the one way in from outside in cluster mode), `b` (`--max-running 0`)
 * only serves, so that every line reaches b's viewers through Redis.
 */
async function startCluster(runtimeFlags: string[]): Promise<System> {
  const started: { stop(): Promise<void> }[] = [];
  const dirs: string[] = [];
  let stopping: Promise<void> | undefined;
  // Once, however often called (an interrupt and the scenario's end may both ask); the instances before Redis,
  // which they need to stop cleanly.
  const stop = () =>
    stopping ??= (async () => {
      for (const part of [...started].reverse()) await part.stop();
      for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  try {
    const redis = await startRedisServer({ appendFsync: "everysec" });
    started.push({ stop: async () => await redis[Symbol.asyncDispose]() });
    const prefix = `bench-${crypto.randomUUID().slice(0, 8)}`;
    const instance = async (name: string, extraArgs: string[]) => {
      const dir = await Deno.makeTempDir({ prefix: `shiplog-bench-${name}-` });
      dirs.push(dir);
      const [server, base] = await startShiplogProcess(`shiplog ${name}`, [
        "run",
        "-A",
        ...profileFlags(runtimeFlags, `instance-${name}`),
        "main.ts",
        "--port",
        "0",
        "--dir",
        dir,
        "--redis",
        redis.url,
        "--redis-prefix",
        prefix,
        "--instance",
        name,
        "--command",
        "sleep 600",
        ...extraArgs,
      ]);
      started.push(server);
      return { pid: server.pid, base };
    };
    const a = await instance("a", []);
    const b = await instance("b", ["--max-running", "0"]);
    const api = shiplogApi(a.base);
    return {
      name: "shiplog",
      pid: a.pid,
      pids: [a.pid, b.pid],
      redisPid: redis.pid!,
      base: a.base,
      async createChannels(n) {
        const ids = await api.start(n);
        await api.running(ids);
        return ids;
      },
      eventsUrl: (id) => `${a.base}events/${id}`,
      eventsUrls: (id) => [`${a.base}events/${id}`, `${b.base}events/${id}`],
      writerTarget: (ids) => ({ kind: "http", urls: ids.map(api.logUrl) }),
      finish: api.finish,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startBaseline(runtimeFlags: string[]): Promise<System> {
  const server = new ServerProcess("baseline", ["run", "-A", ...runtimeFlags, "bench/baseline_server.ts"]);
  let match: RegExpExecArray;
  try {
    match = await server.waitFor(/(http:\/\/127\.0\.0\.1:\d+\/) control=(\d+)/);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const base = match[1];
  const controlPort = Number(match[2]);
  let next = 0;
  return {
    name: "baseline",
    pid: server.pid,
    pids: [server.pid],
    base,
    createChannels: (n) => Promise.resolve(Array.from({ length: n }, () => `c${++next}`)),
    eventsUrl: (channel) => `${base}events/${channel}`,
    eventsUrls: (channel) => [`${base}events/${channel}`],
    writerTarget: (channels) => ({ kind: "baseline", port: controlPort, channels }),
    async finish(channel) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: controlPort });
      try {
        await conn.write(new TextEncoder().encode(`E ${channel}\n`));
      } finally {
        conn.close();
      }
    },
    stop: () => server.stop(),
  };
}

function startSystem(name: SystemName, shiplogArgs: string[], runtimeFlags: string[]): Promise<System> {
  return name === "shiplog" ? startShiplog(shiplogArgs, runtimeFlags) : startBaseline(runtimeFlags);
}

/** Runs the writer process; resolves with its report. */
async function runWriter(spec: WriterSpec, timeoutMs: number): Promise<WriterReport> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/writer.ts", JSON.stringify(spec)],
    cwd: REPO_ROOT_PATH,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const output = await within(timeoutMs, "the writer process", child.output());
    if (!output.success) throw new Error(`writer failed: ${new TextDecoder().decode(output.stderr)}`);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

interface LiveOptions {
  deployments: number;
  viewersPerDeployment: number;
  lines: number;
  /** Lines/s per deployment; 0 = as fast as the writer can. */
  rate: number;
  deadlineMs: number;
  /**
   * Lines per deployment written (as `warmup=N`, same rate) and delivered before the measurement starts, so that
   * both servers are measured warm; they take line numbers 1…warmup, and ids are still checked.
   */
  warmup: number;
  /** With rate 0: lines per write (the writer's default unless given). */
  batch?: number;
  /**
   * End the deployments once measured, for another measurement on the same server: a target runs one
   * deployment at a time, so the next one would wait behind these.
   */
  endAfter?: boolean;
}

interface Delivery {
  viewers: number;
  expected: number;
  delivered: number;
  errors: number;
  sampleErrors: string[];
  foreign: number;
  /** Viewers that did not receive all lines by the deadline. */
  incomplete: number;
}

interface LiveResult extends Delivery {
  latency: LatencySummary;
  /** CPU time of the server's processes (a cluster's instances together). */
  serverCpuMs: number;
  cpuPerLineUs: number;
  /** CPU time of each server process, in the order of `System.pids`. */
  cpuByProcessMs: number[];
  /** A cluster's redis-server: its CPU time meanwhile, and per delivered line (µs). */
  redisCpuMs?: number;
  redisCpuPerLineUs?: number;
  /** Server CPU time by thread name meanwhile (ms). */
  serverCpuByThreadMs: Record<string, number>;
  /** Server CPU per delivered line spent in the thread of `Deno.watchFs` (µs); 0 for the baseline. */
  watcherCpuPerLineUs: number;
  /** Server CPU per delivered line in all other threads (µs). */
  otherCpuPerLineUs: number;
  peakRssMiB: number;
  rssMiB: number;
  /** Slowest viewer's lines/s, from the writer's first time stamp to its last arrival. */
  minLinesPerSecond: number;
  writer: WriterReport;
  durationMs: number;
  /** CPU time of the viewers' process meanwhile: near `durationMs` means the viewers, not the server, set the pace. */
  viewerCpuMs: number;
  /** CPU other processes used meanwhile, % of all cores. */
  otherLoadPercent: number;
}

function delivery(viewers: Viewer[], linesEach: number): Delivery {
  const sampleErrors: string[] = [];
  for (const viewer of viewers) {
    for (const error of viewer.errors) if (sampleErrors.length < 5) sampleErrors.push(error);
  }
  return {
    viewers: viewers.length,
    expected: viewers.length * linesEach,
    delivered: viewers.reduce((n, v) => n + v.lines, 0),
    errors: viewers.reduce((n, v) => n + v.errorCount, 0),
    sampleErrors,
    foreign: viewers.reduce((n, v) => n + v.foreign, 0),
    incomplete: viewers.filter((v) => v.lastSeq < linesEach).length,
  };
}

async function liveScenario(system: System, options: LiveOptions): Promise<LiveResult> {
  const channels = await system.createChannels(options.deployments);
  // Viewers go round robin over these: in a cluster, a channel's viewers alternate between the instances.
  const urls = channels.flatMap((channel) => system.eventsUrls(channel));
  const total = options.deployments * options.viewersPerDeployment;
  const abort = new AbortController();
  const latency = new LatencyRecorder();
  let finished = 0;
  let allFinished!: () => void;
  const everyone = new Promise<void>((resolve) => allFinished = resolve);
  try {
    const viewers = await within(
      60_000,
      `opening ${total} viewers`,
      openViewers(urls, total, {
        expectedLines: options.lines,
        latency,
        signal: abort.signal,
        onFinished: () => {
          if (++finished === total) allFinished();
        },
      }),
    );
    const failed = viewers.filter((v) => Number.isNaN(v.connectedAt)).length;
    progress(`  ${system.name}: ${total - failed}/${total} viewers connected; warming up`);
    if (options.warmup > 0) {
      await runWriter({
        target: system.writerTarget(channels),
        lines: options.warmup,
        rate: options.rate,
        prefix: "warmup",
        batch: options.batch,
      }, options.deadlineMs);
      await within(
        options.deadlineMs,
        "the warm-up lines reaching every viewer",
        (async () => {
          while (viewers.some((v) => v.foreign < options.warmup && !v.isFinished)) await delay(20);
        })(),
      );
    }
    await delay(200); // let the subscriptions settle
    progress(`  ${system.name}: writing`);
    const redisPids = system.redisPid === undefined ? [] : [system.redisPid];
    const load = otherLoad([...system.pids, ...redisPids]);
    const threadsBefore = cpuByThreadMs(system.pids);
    const cpuBefore = system.pids.map(cpuMs);
    const redisCpuBefore = cpuOfMs(redisPids);
    const viewerCpuBefore = viewerCpuMs();
    const started = wallClock();
    const writer = runWriter({
      target: system.writerTarget(channels),
      lines: options.lines,
      rate: options.rate,
      batch: options.batch,
    }, options.deadlineMs);
    // Awaited below; should the measurement fail before that, its failure must not go unhandled.
    writer.catch(() => {});
    const deadline = delay(options.deadlineMs, abort.signal).then(() => "deadline");
    const outcome = await Promise.race([everyone.then(() => "all"), deadline]);
    const cpuByProcessMs = system.pids.map((pid, i) => cpuMs(pid) - cpuBefore[i]);
    const redisCpuMs = cpuOfMs(redisPids) - redisCpuBefore;
    const serverCpuByThreadMs: Record<string, number> = {};
    for (const [name, ms] of cpuByThreadMs(system.pids)) {
      // A thread that ended meanwhile takes its time with it: never below zero.
      serverCpuByThreadMs[name] = Math.max(0, ms - (threadsBefore.get(name) ?? 0));
    }
    const viewerCpu = viewerCpuMs() - viewerCpuBefore;
    const otherLoadPercent = load();
    const durationMs = wallClock() - started;
    const memory = memoryOfKiB(system.pids);
    const writerReport = await writer;
    if (outcome !== "all") progress(`  ${system.name}: deadline of ${options.deadlineMs} ms reached`);
    await delay(300); // anything arriving now would be a duplicate
    const result = delivery(viewers, options.lines);
    if (options.endAfter) { for (const channel of channels) await system.finish(channel); }
    const serverCpuMs = cpuByProcessMs.reduce((sum, ms) => sum + ms, 0);
    const watcherCpuUs = Object.entries(serverCpuByThreadMs)
      .filter(([name]) => WATCHER_THREAD.test(name))
      .reduce((sum, [, ms]) => sum + ms, 0) * 1000;
    const minLinesPerSecond = Math.min(
      ...viewers.map((v) =>
        v.lastSeq >= options.lines ? options.lines / ((v.lastArrival - writerReport.firstT) / 1000) : 0
      ),
    );
    return {
      ...result,
      latency: latency.summary(),
      serverCpuMs,
      cpuPerLineUs: serverCpuMs * 1000 / Math.max(1, result.delivered),
      cpuByProcessMs,
      ...(system.redisPid === undefined
        ? {}
        : { redisCpuMs, redisCpuPerLineUs: redisCpuMs * 1000 / Math.max(1, result.delivered) }),
      serverCpuByThreadMs,
      watcherCpuPerLineUs: watcherCpuUs / Math.max(1, result.delivered),
      otherCpuPerLineUs: (serverCpuMs * 1000 - watcherCpuUs) / Math.max(1, result.delivered),
      peakRssMiB: memory.peak / 1024,
      rssMiB: memory.rss / 1024,
      minLinesPerSecond,
      writer: writerReport,
      durationMs,
      viewerCpuMs: viewerCpu,
      otherLoadPercent,
    };
  } finally {
    abort.abort();
  }
}

interface CatchUpResult extends Delivery {
  lines: number;
  logBytes: number;
  /** Time from the request to the last line, per attempt (ms). */
  timesMs: number[];
  medianMs: number;
  peakRssMiB: number;
  otherLoadPercent: number;
}

async function catchUpScenario(system: System, lines: number): Promise<CatchUpResult> {
  const [channel] = await system.createChannels(1);
  const load = otherLoad([system.pid]);
  const target = system.writerTarget([channel]);
  await runWriter({ target, lines, rate: 0, padTo: 100, batch: 2000 }, 60_000);
  const logBytes = target.kind === "files" ? (await Deno.stat(target.paths[0])).size : NaN;
  await system.finish(channel);
  await delay(300);
  const timesMs: number[] = [];
  const viewers: Viewer[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const abort = new AbortController();
    try {
      const viewer = openViewer(system.eventsUrl(channel), { expectedLines: lines, signal: abort.signal });
      viewers.push(viewer);
      await within(30_000, `a new viewer receiving ${lines} lines`, viewer.finished);
      timesMs.push(viewer.lastArrival - viewer.openedAt);
    } finally {
      abort.abort();
    }
    await delay(200);
  }
  return {
    ...delivery(viewers, lines),
    lines,
    logBytes,
    timesMs,
    medianMs: median(timesMs),
    peakRssMiB: memoryKiB(system.pid).peak / 1024,
    otherLoadPercent: load(),
  };
}

interface ResumeResult extends Delivery {
  lines: number;
  resumes: number;
  /** Server CPU time per resume (ms), over all of them. */
  cpuPerResumeMs: number;
  /** From the request to `done`, per resume (ms). */
  medianMs: number;
  otherLoadPercent: number;
}

/**
 * Viewers that resume a finished log near its end (`Last-Event-ID`, as EventSource sends after a network blip),
 * one after another: what one costs the server. Only shiplog takes `Last-Event-ID`.
 */
async function resumeScenario(system: System, lines: number, resumes: number): Promise<ResumeResult> {
  const [channel] = await system.createChannels(1);
  const load = otherLoad([system.pid]);
  await runWriter(
    { target: system.writerTarget([channel]), lines, rate: 0, padTo: 100, batch: 2000 },
    60_000,
  );
  await system.finish(channel);
  await delay(300);
  const after = lines - 10;
  const viewers: Viewer[] = [];
  const timesMs: number[] = [];
  const cpuBefore = cpuMs(system.pid);
  for (let i = 0; i < resumes; i++) {
    const abort = new AbortController();
    try {
      const viewer = openViewer(system.eventsUrl(channel), {
        expectedLines: lines,
        lastEventId: after,
        signal: abort.signal,
      });
      viewers.push(viewer);
      await within(10_000, `a viewer resuming after line ${after}`, viewer.finished);
      timesMs.push(viewer.lastArrival - viewer.openedAt);
    } finally {
      abort.abort();
    }
  }
  const cpuPerResumeMs = (cpuMs(system.pid) - cpuBefore) / resumes;
  return {
    ...delivery(viewers, lines - after),
    lines,
    resumes,
    cpuPerResumeMs,
    medianMs: median(timesMs),
    otherLoadPercent: load(),
  };
}

/** The cluster scenario's two measurements, on one system. */
interface ClusterPart {
  /** 10 viewers, 500 lines at 50 lines/s, one line per request. */
  latency: LiveResult;
  /** 10 viewers, 500,000 lines as fast as the writer can, 1,000 lines per request. */
  throughput: LiveResult;
}

interface ClusterResult {
  /** One shiplog in file mode, written through the same route as the cluster: the comparison. */
  file: ClusterPart;
  /** Two instances on one Redis, the viewers alternating between them, the writer on the first. */
  cluster: ClusterPart;
  /** The worst of the four measurements. */
  otherLoadPercent: number;
}

const CLUSTER_LATENCY: LiveOptions = {
  deployments: 1,
  viewersPerDeployment: 10,
  lines: 500,
  rate: 50,
  deadlineMs: 20_000,
  warmup: 25,
  endAfter: true,
};

const CLUSTER_THROUGHPUT: LiveOptions = {
  deployments: 1,
  viewersPerDeployment: 10,
  lines: 500_000,
  rate: 0,
  deadlineMs: 30_000,
  warmup: HTTP_BATCH,
  batch: HTTP_BATCH,
};

/**
 * Cluster mode beside file mode, in one run and under the same load: two instances on a `redis-server` of their
 * own (first, so that a missing redis-server fails at once), then one shiplog in file mode. Both are written
 * through `POST /api/deployments/<id>/log`, the one way in from outside in cluster mode, so the comparison is
 * like for like.
 */
async function clusterScenario(runtimeFlags: string[]): Promise<ClusterResult> {
  const measure = (mode: string) => async (system: System): Promise<ClusterPart> => {
    progress(`  ${mode}: latency, 50 lines/s`);
    const latency = await liveScenario(system, CLUSTER_LATENCY);
    progress(`  ${mode}: throughput, ${CLUSTER_THROUGHPUT.lines.toLocaleString("en-US")} lines`);
    return { latency, throughput: await liveScenario(system, CLUSTER_THROUGHPUT) };
  };
  const cluster = await withSystem(() => startCluster(runtimeFlags), measure("cluster"));
  const file = await withSystem(
    () => startShiplog([], profileFlags(runtimeFlags, "file-mode"), "http"),
    measure("file mode"),
  );
  const parts = [file.latency, file.throughput, cluster.latency, cluster.throughput];
  return { file, cluster, otherLoadPercent: Math.max(...parts.map((r) => r.otherLoadPercent)) };
}

/** The page scenario's figures: a finished log opened, searched, then a live log followed. */
interface PageResult {
  lines: number;
  logBytes: number;
  /** From navigation start to the log's last line on screen (ms). */
  lastLineMs: number;
  firstPaintMs: number;
  /** The longest long task after the first paint, while the log loaded and for a second after (ms). */
  maxLongTaskMs: number;
  /** Long tasks after the first paint, over 50 ms each. */
  longTasks: number;
  /** The most line elements in any frame, while it loaded and while it was searched. */
  maxLineElements: number;
  /** Once loaded: the elements in the document and the JavaScript heap. */
  elements: number;
  jsHeapMiB: number;
  searches: SearchTiming[];
  live: {
    lines: number;
    rate: number;
    /** The largest lag of the last line on screen behind its writer, over every frame (ms). */
    maxLagMs: number;
    /** From the writer's last line to its being on screen (ms). */
    endLagMs: number;
    maxLongTaskMs: number;
    maxLineElements: number;
  };
  otherLoadPercent: number;
}

const PAGE_LOG_LINES = 1_000_000;
const PAGE_LOG_STEPS = 8;
/** The line a person looks for: the one error of the finished log. */
const PAGE_NEEDLE = {
  line: 777_777,
  text: "ERROR: checksum mismatch in out/777777.o",
  query: "checksum mismatch",
};
/** A query with about a thousand matches spread over every step. */
const PAGE_FREQUENT_QUERY = "module_42.c";
const PAGE_LIVE = { lines: 100_000, rate: 5000 };

/**
 * The finished log: `PAGE_LOG_STEPS` steps `[k/8]`, each in groups of 5,000 lines (`::group::`), lines of about
 * 60 bytes with a colour code, the one error at `PAGE_NEEDLE.line`, and a last line that says the build
 * failed. Appended in chunks while the deployment runs, as a deploy script would write it, so that shiplog
 * stamps each line's time.
 */
async function writePageLog(path: string): Promise<void> {
  const stepLines = PAGE_LOG_LINES / PAGE_LOG_STEPS;
  const file = await Deno.open(path, { append: true });
  try {
    const encoder = new TextEncoder();
    let chunk: string[] = [];
    for (let line = 1; line <= PAGE_LOG_LINES; line++) {
      const inStep = (line - 1) % stepLines;
      let text: string;
      if (inStep === 0) {
        text = `[${(line - 1) / stepLines + 1}/${PAGE_LOG_STEPS}] Step ${(line - 1) / stepLines + 1}`;
      } else if (line === PAGE_NEEDLE.line) text = `\x1b[31m${PAGE_NEEDLE.text}\x1b[0m`;
      else if (inStep % 5000 === 1) text = `::group::Batch ${Math.ceil(line / 5000)}`;
      else if (line === PAGE_LOG_LINES) text = "Build failed: 1 error (out/777777.o)";
      else if (inStep % 5000 === 0 || line === PAGE_LOG_LINES - 1) text = "::endgroup::";
      else text = `cc -O2 -c src/module_${line % 997}.c -o out/${line}.o \x1b[32mok\x1b[0m`;
      chunk.push(text);
      if (chunk.length === 10_000) {
        await file.write(encoder.encode(chunk.join("\n") + "\n"));
        chunk = [];
      }
    }
    if (chunk.length > 0) await file.write(encoder.encode(chunk.join("\n") + "\n"));
  } finally {
    file.close();
  }
}

/**
 * The deployment page in Chromium (`bench/page_log.ts`): a finished 1,000,000-line log opened (time to its last
 * line on screen, the longest main-thread task after the first paint, the most line elements), searched (a
 * rare and a frequent query), then a live log at 5,000 lines/s for 20 s followed (its lag behind the writer).
 * Each deployment's command waits for a file, then fails, so that each log ends as a failed deploy's does.
 */
async function pageScenario(runtimeFlags: string[]): Promise<PageResult> {
  const chromium = findChromium("bench (scenario 9)");
  if (!chromium.found) {
    throw new Error(`scenario 9 needs Chromium at ${chromium.path} (apt-get install chromium)`);
  }
  // The browser's profile and the file that lets a deployment's command end.
  const control = await Deno.makeTempDir({ prefix: "shiplog-bench-page-" });
  const release = `${control}/release`;
  const command = `while [ ! -e '${release}' ]; do sleep 0.05; done; rm -f '${release}'; exit 1`;
  try {
    return await withSystem(
      () => startShiplog([], runtimeFlags, "files", command),
      (system) => measurePage(system, chromium, control, release),
    );
  } finally {
    await Deno.remove(control, { recursive: true }).catch(() => {});
  }
}

/** {@linkcode pageScenario}'s measurements, on a shiplog whose deployments end when `release` appears. */
async function measurePage(
  system: System,
  chromium: ReturnType<typeof findChromium>,
  control: string,
  release: string,
): Promise<PageResult> {
  const load = otherLoad([system.pid]);
  const base = system.base;
  const api = shiplogApi(base);
  const logPath = (id: string) => {
    const target = system.writerTarget([id]);
    if (target.kind !== "files") throw new Error("scenario 9 appends to the log files");
    return target.paths[0];
  };
  const linesAfter = async (id: string, after: number): Promise<number> => {
    const page = await (await fetch(`${base}api/deployments/${id}/lines?after=${after}&limit=100`)).json();
    return page.nextLine - 1;
  };
  const end = async (id: string) => {
    await Deno.writeTextFile(release, "");
    await within(
      15_000,
      `deployment ${id} failing`,
      (async () => {
        while (await api.status(id) !== "failed") await delay(50);
      })(),
    );
  };
  let browser: Browser | undefined;
  try {
    progress(`  writing a finished log of ${PAGE_LOG_LINES.toLocaleString("en-US")} lines`);
    const [finished] = await system.createChannels(1);
    await writePageLog(logPath(finished));
    await within(
      60_000,
      "shiplog taking every line",
      (async () => {
        while (await linesAfter(finished, PAGE_LOG_LINES - 1) < PAGE_LOG_LINES) await delay(100);
      })(),
    );
    await end(finished);
    const lines = await linesAfter(finished, PAGE_LOG_LINES - 1);
    const logBytes = (await Deno.stat(logPath(finished))).size;

    browser = await launchChromium(chromium, `${control}/chromium`);
    progress("  opening it in Chromium");
    const page = await openProbed(browser, `${base}deployment/${finished}`, { target: lines });
    await waitInPage(page, "globalThis.__probe.targetSeenMs !== null", 60_000);
    await delay(1000);
    const loaded = await readProbe(page);
    const weight = await pageWeight(page);
    progress("  searching it");
    const searches = [
      await timeSearch(page, PAGE_NEEDLE.query),
      await timeSearch(page, PAGE_FREQUENT_QUERY),
    ];
    if (searches[0].count !== "1 of 1" || searches[0].currentLine !== PAGE_NEEDLE.line) {
      throw new Error(`the search for the error found ${JSON.stringify(searches[0])}`);
    }
    const searched = await readProbe(page);
    await page.close();

    progress(`  following a live log at ${PAGE_LIVE.rate} lines/s`);
    const [live] = await system.createChannels(1);
    const livePage = await openProbed(browser, `${base}deployment/${live}`, { lastSeq: PAGE_LIVE.lines });
    await waitInPage(livePage, `document.querySelector("#connection")?.dataset.state === "live"`, 15_000);
    const liveStart = (await livePage.evaluate(() => performance.now())) as number;
    const writer = await runWriter(
      { target: system.writerTarget([live]), lines: PAGE_LIVE.lines, rate: PAGE_LIVE.rate },
      PAGE_LIVE.lines / PAGE_LIVE.rate * 1000 + 30_000,
    );
    await waitInPage(livePage, "globalThis.__probe.lastSeqSeenAt !== null", 15_000);
    const followed = await readProbe(livePage);
    await livePage.close();
    await end(live);
    return {
      lines,
      logBytes,
      lastLineMs: loaded.targetSeenMs!,
      firstPaintMs: loaded.firstPaintMs ?? NaN,
      maxLongTaskMs: longestAfter(loaded, loaded.firstPaintMs ?? 0),
      longTasks: loaded.longTasks.filter(([start]) => start >= (loaded.firstPaintMs ?? 0)).length,
      maxLineElements: searched.maxLineElements,
      ...weight,
      searches,
      live: {
        ...PAGE_LIVE,
        maxLagMs: followed.maxLagMs,
        endLagMs: followed.lastSeqSeenAt! - writer.lastT,
        maxLongTaskMs: longestAfter(followed, liveStart),
        maxLineElements: followed.maxLineElements,
      },
      otherLoadPercent: load(),
    };
  } finally {
    await browser?.close().catch(() => {});
  }
}

interface IdleResult {
  viewers: number;
  connected: number;
  errors: number;
  sampleErrors: string[];
  rssBeforeMiB: number;
  rssAfterMiB: number;
  perViewerKiB: number;
  otherLoadPercent: number;
}

async function idleScenario(system: System, count: number): Promise<IdleResult> {
  const [channel] = await system.createChannels(1);
  const url = system.eventsUrl(channel);
  // Warm up the path with a few viewers so one-time allocations are not charged to the idle viewers.
  const abort = new AbortController();
  try {
    const load = otherLoad([system.pid]);
    const warm = await openViewers([url], 20, { expectedLines: Infinity, signal: abort.signal });
    await delay(500);
    const rssBefore = memoryKiB(system.pid).rss;
    const viewers = await within(
      60_000,
      `opening ${count} idle viewers`,
      openViewers([url], count, { expectedLines: Infinity, signal: abort.signal }),
    );
    await delay(1500);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      samples.push(memoryKiB(system.pid).rss);
      await delay(300);
    }
    const rssAfter = median(samples);
    const all = [...warm, ...viewers];
    const sampleErrors = all.flatMap((v) => v.errors).slice(0, 5);
    return {
      viewers: count,
      connected: viewers.filter((v) => !Number.isNaN(v.connectedAt) && v.errorCount === 0 && !v.ended).length,
      errors: all.reduce((n, v) => n + v.errorCount, 0),
      sampleErrors,
      rssBeforeMiB: rssBefore / 1024,
      rssAfterMiB: rssAfter / 1024,
      perViewerKiB: (rssAfter - rssBefore) / count,
      otherLoadPercent: load(),
    };
  } finally {
    abort.abort();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Table

interface Row {
  scenario: string;
  shiplog: string;
  baseline: string;
  ratio: string;
  target: string;
}

function fmt(value: number | undefined, digits = 1): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function ratioOf(shiplog: number | undefined, baseline: number | undefined): number | undefined {
  if (shiplog === undefined || baseline === undefined || baseline === 0) return undefined;
  return shiplog / baseline;
}

function verdict(met: boolean | undefined, why: string): string {
  if (met === undefined) return `n/a (${why})`;
  return `${met ? "yes" : "**no**"} (${why})`;
}

function deliveredCell(d: Delivery | undefined): string {
  if (d === undefined) return "—";
  const checks = d.errors === 0 ? "in order, no dup" : `${d.errors} errors`;
  return `${d.delivered.toLocaleString("en-US")}/${d.expected.toLocaleString("en-US")}, ${checks}`;
}

function catchUpCell(r: CatchUpResult | undefined): string {
  return r === undefined ? "—" : `${fmt(r.medianMs, 0)} (first ${fmt(r.timesMs[0], 0)})`;
}

function allDelivered(d: Delivery | undefined): boolean | undefined {
  return d === undefined ? undefined : d.delivered === d.expected && d.errors === 0;
}

/** CPU per delivered line (µs) of one of the server's processes (a cluster's instance `index`). */
function perLineUs(r: LiveResult, index: number): number | undefined {
  const ms = r.cpuByProcessMs[index];
  return ms === undefined ? undefined : ms * 1000 / Math.max(1, r.delivered);
}

type Results = Record<string, Partial<Record<SystemName, unknown>>>;

function buildRows(results: Results): Row[] {
  const rows: Row[] = [];
  const live = (n: string) => results[n] as Partial<Record<SystemName, LiveResult>> | undefined;
  const latencyRows = (n: string, label: string, p99Target: "ratio" | "absolute") => {
    const r = live(n);
    if (r === undefined) return;
    const s = r.shiplog;
    const b = r.baseline;
    for (const key of ["p50", "p99", "max"] as const) {
      const ratio = ratioOf(s?.latency[key], b?.latency[key]);
      let target = "—";
      if (key === "p99") {
        target = p99Target === "ratio"
          ? verdict(ratio === undefined ? undefined : ratio <= 1.5, "≤ 1.5× baseline")
          : verdict(s === undefined ? undefined : s.latency.p99 <= 50, "≤ 50 ms");
      }
      rows.push({
        scenario: `${label}: latency ${key} (ms)`,
        shiplog: fmt(s?.latency[key], 2),
        baseline: fmt(b?.latency[key], 2),
        ratio: fmt(ratio, 2),
        target,
      });
    }
    const deliveredOk = allDelivered(s);
    rows.push({
      scenario: `${label}: lines delivered`,
      shiplog: deliveredCell(s),
      baseline: deliveredCell(b),
      ratio: "—",
      target: verdict(
        deliveredOk === undefined ? undefined : deliveredOk && (allDelivered(b) ?? true),
        "every line once, in order",
      ),
    });
  };
  const cpuRow = (n: string, label: string) => {
    const r = live(n);
    if (r === undefined) return;
    const ratio = ratioOf(r.shiplog?.cpuPerLineUs, r.baseline?.cpuPerLineUs);
    rows.push({
      scenario: `${label}: server CPU per delivered line (µs)`,
      shiplog: fmt(r.shiplog?.cpuPerLineUs, 2),
      baseline: fmt(r.baseline?.cpuPerLineUs, 2),
      ratio: fmt(ratio, 2),
      target: verdict(ratio === undefined ? undefined : ratio <= 1, "≤ baseline"),
    });
    // The part no file-tailing server can avoid: the thread of Deno.watchFs, woken once per append.
    rows.push({
      scenario: `${label}: of which the file watcher's thread (µs)`,
      shiplog: fmt(r.shiplog?.watcherCpuPerLineUs, 2),
      baseline: fmt(r.baseline?.watcherCpuPerLineUs, 2),
      ratio: "—",
      target: "—",
    });
    const ratioOutside = ratioOf(r.shiplog?.otherCpuPerLineUs, r.baseline?.otherCpuPerLineUs);
    rows.push({
      scenario: `${label}: server CPU per delivered line without that thread (µs)`,
      shiplog: fmt(r.shiplog?.otherCpuPerLineUs, 2),
      baseline: fmt(r.baseline?.otherCpuPerLineUs, 2),
      ratio: fmt(ratioOutside, 2),
      target: "—",
    });
  };

  latencyRows("1", "1 · 1 viewer, 50 lines/s", "ratio");
  latencyRows("2", "2 · 1,000 viewers, 10 lines/s", "ratio");
  cpuRow("2", "2 · 1,000 viewers");
  latencyRows("3", "3 · 200 deployments × 5 viewers", "absolute");
  cpuRow("3", "3 · 200 × 5");

  const four = results["4"] as Partial<Record<SystemName, CatchUpResult>> | undefined;
  if (four !== undefined) {
    const ratio = ratioOf(four.shiplog?.medianMs, four.baseline?.medianMs);
    const s = four.shiplog;
    rows.push({
      scenario: "4 · catch-up of 100,000 lines (~10 MB): time to last line (ms, median of 3; first)",
      shiplog: catchUpCell(s),
      baseline: catchUpCell(four.baseline),
      ratio: fmt(ratio, 2),
      target: verdict(
        s === undefined ? undefined : s.medianMs <= 500 && allDelivered(s) === true,
        "≤ 500 ms",
      ),
    });
    rows.push({
      scenario: "4 · catch-up: lines delivered",
      shiplog: deliveredCell(s),
      baseline: deliveredCell(four.baseline),
      ratio: "—",
      target: verdict(allDelivered(s), "every line once, in order"),
    });
  }

  const five = live("5");
  if (five !== undefined) {
    const s = five.shiplog;
    const b = five.baseline;
    const ratio = ratioOf(s?.minLinesPerSecond, b?.minLinesPerSecond);
    rows.push({
      scenario: "5 · throughput to 10 viewers: lines/s (slowest viewer)",
      shiplog: fmt(s?.minLinesPerSecond, 0),
      baseline: fmt(b?.minLinesPerSecond, 0),
      ratio: fmt(ratio, 2),
      target: verdict(
        s === undefined ? undefined : s.minLinesPerSecond >= 100_000 && (b === undefined || ratio! >= 1),
        "≥ 100,000 and ≥ baseline",
      ),
    });
    rows.push({
      scenario: "5 · throughput: lines delivered",
      shiplog: deliveredCell(s),
      baseline: deliveredCell(b),
      ratio: "—",
      target: verdict(allDelivered(s), "nothing lost"),
    });
    rows.push({
      scenario: "5 · throughput: server peak RSS (MiB)",
      shiplog: fmt(s?.peakRssMiB, 1),
      baseline: fmt(b?.peakRssMiB, 1),
      ratio: fmt(ratioOf(s?.peakRssMiB, b?.peakRssMiB), 2),
      target: verdict(s === undefined ? undefined : s.peakRssMiB < 200, "< 200 MB"),
    });
    // The viewers share one thread of this process: near 100%, they, not the server, set the pace.
    const viewerShare = (r?: LiveResult) => r === undefined ? undefined : 100 * r.viewerCpuMs / r.durationMs;
    rows.push({
      scenario: "5 · throughput: the viewers' CPU time (% of the run's time; 100 = one core busy)",
      shiplog: fmt(viewerShare(s), 0),
      baseline: fmt(viewerShare(b), 0),
      ratio: "—",
      target: "—",
    });
    rows.push({
      scenario: "5 · throughput: server CPU per delivered line (µs)",
      shiplog: fmt(s?.cpuPerLineUs, 2),
      baseline: fmt(b?.cpuPerLineUs, 2),
      ratio: fmt(ratioOf(s?.cpuPerLineUs, b?.cpuPerLineUs), 2),
      target: "—",
    });
  }

  const six = results["6"] as Partial<Record<SystemName, IdleResult>> | undefined;
  if (six !== undefined) {
    const ratio = ratioOf(six.shiplog?.perViewerKiB, six.baseline?.perViewerKiB);
    rows.push({
      scenario: "6 · 2,000 idle viewers: RSS growth per viewer (KiB)",
      shiplog: fmt(six.shiplog?.perViewerKiB, 1),
      baseline: fmt(six.baseline?.perViewerKiB, 1),
      ratio: fmt(ratio, 2),
      target: verdict(ratio === undefined ? undefined : ratio <= 1.2, "≤ 1.2× baseline"),
    });
    const connected = (r?: IdleResult) => r === undefined ? "—" : `${r.connected}/${r.viewers}`;
    rows.push({
      scenario: "6 · idle viewers still connected",
      shiplog: connected(six.shiplog),
      baseline: connected(six.baseline),
      ratio: "—",
      target: "—",
    });
  }
  const seven = results["7"] as Partial<Record<SystemName, ResumeResult>> | undefined;
  if (seven?.shiplog !== undefined) {
    const s = seven.shiplog;
    rows.push({
      scenario:
        `7 · ${s.resumes} resumes near the end of a finished 100,000-line log: server CPU per resume (ms)`,
      shiplog: `${fmt(s.cpuPerResumeMs, 1)} (${fmt(s.medianMs, 1)} ms to done)`,
      baseline: "—",
      ratio: "—",
      target: "—",
    });
    rows.push({
      scenario: "7 · resume: lines delivered",
      shiplog: deliveredCell(s),
      baseline: "—",
      ratio: "—",
      target: verdict(allDelivered(s), "every line after Last-Event-ID once, in order"),
    });
  }
  const eight = results["8"] as Partial<Record<SystemName, ClusterResult>> | undefined;
  const e = eight?.shiplog;
  if (e !== undefined) {
    // The shiplog column is the cluster, the baseline column shiplog in file mode; the ratio cluster ÷ file.
    const c = e.cluster;
    const f = e.file;
    const label = "8 · cluster vs file mode, 10 viewers (5 + 5 in the cluster), written by POST";
    for (const key of ["p50", "p99", "max"] as const) {
      const ratio = ratioOf(c.latency.latency[key], f.latency.latency[key]);
      rows.push({
        scenario: `${label}, 50 lines/s: latency ${key} (ms)`,
        shiplog: fmt(c.latency.latency[key], 2),
        baseline: fmt(f.latency.latency[key], 2),
        ratio: fmt(ratio, 2),
        target: key !== "p99" ? "—" : verdict(
          ratio !== undefined && ratio <= 2 && c.latency.latency.p99 < 100,
          "≤ 2× file mode, < 100 ms",
        ),
      });
    }
    const both = (a: Delivery, b: Delivery) => (allDelivered(a) ?? false) && (allDelivered(b) ?? false);
    rows.push({
      scenario: "8 · 50 lines/s: lines delivered",
      shiplog: deliveredCell(c.latency),
      baseline: deliveredCell(f.latency),
      ratio: "—",
      target: verdict(both(c.latency, f.latency), "every line once, in order"),
    });
    const cpuRows = (part: "latency" | "throughput", what: string) => {
      rows.push({
        scenario: `8 · ${what}: server CPU per delivered line (µs; the cluster: both instances)`,
        shiplog: `${fmt(c[part].cpuPerLineUs, 2)} (a ${fmt(perLineUs(c[part], 0), 2)}, b ${
          fmt(perLineUs(c[part], 1), 2)
        })`,
        baseline: fmt(f[part].cpuPerLineUs, 2),
        ratio: fmt(ratioOf(c[part].cpuPerLineUs, f[part].cpuPerLineUs), 2),
        target: "—",
      });
      rows.push({
        scenario: `8 · ${what}: redis-server's CPU per delivered line (µs)`,
        shiplog: fmt(c[part].redisCpuPerLineUs, 2),
        baseline: "—",
        ratio: "—",
        target: "—",
      });
    };
    cpuRows("latency", "50 lines/s");
    const ratio = ratioOf(c.throughput.minLinesPerSecond, f.throughput.minLinesPerSecond);
    rows.push({
      scenario: `8 · throughput, ${
        c.throughput.writer.written.toLocaleString("en-US")
      } lines, ${HTTP_BATCH} per POST: lines/s (slowest viewer)`,
      shiplog: fmt(c.throughput.minLinesPerSecond, 0),
      baseline: fmt(f.throughput.minLinesPerSecond, 0),
      ratio: fmt(ratio, 2),
      target: verdict(c.throughput.minLinesPerSecond >= 100_000, "≥ 100,000"),
    });
    rows.push({
      scenario: "8 · throughput: lines delivered",
      shiplog: deliveredCell(c.throughput),
      baseline: deliveredCell(f.throughput),
      ratio: "—",
      target: verdict(both(c.throughput, f.throughput), "nothing lost"),
    });
    const viewerShare = (r: LiveResult) => 100 * r.viewerCpuMs / r.durationMs;
    rows.push({
      scenario: "8 · throughput: the viewers' CPU time (% of the run's time; 100 = one core busy)",
      shiplog: fmt(viewerShare(c.throughput), 0),
      baseline: fmt(viewerShare(f.throughput), 0),
      ratio: "—",
      target: "—",
    });
    cpuRows("throughput", "throughput");
  }
  const page = results["9"]?.shiplog as PageResult | undefined;
  if (page !== undefined) {
    const lines = `${page.lines.toLocaleString("en-US")} lines, ${fmt(page.logBytes / 1e6, 0)} MB`;
    const row = (scenario: string, value: string, target = "—") =>
      rows.push({ scenario: `9 · ${scenario}`, shiplog: value, baseline: "—", ratio: "—", target });
    row(
      `page, finished log of ${lines}: its last line on screen (ms)`,
      fmt(page.lastLineMs, 0),
      verdict(page.lastLineMs <= 10_000, "≤ 10,000"),
    );
    row("page: first paint (ms)", fmt(page.firstPaintMs, 0));
    row(
      "page: longest main-thread task after the first paint (ms)",
      fmt(page.maxLongTaskMs, 0),
      verdict(page.maxLongTaskMs <= 300, "≤ 300"),
    );
    row("page: main-thread tasks over 50 ms after the first paint", fmt(page.longTasks, 0));
    row(
      "page: most line elements in any frame, loading and searching",
      fmt(page.maxLineElements, 0),
      verdict(page.maxLineElements < 5000, "< 5,000"),
    );
    row(
      "page, loaded: elements in the document; JavaScript heap (MiB)",
      `${fmt(page.elements, 0)}; ${fmt(page.jsHeapMiB, 0)}`,
    );
    for (const search of page.searches) {
      row(
        `page: search "${search.query}" (${search.count}): Enter to the count shown (ms)`,
        fmt(search.ms, 0),
        verdict(search.ms <= 500, "≤ 500"),
      );
    }
    const live = `live log, ${page.live.rate.toLocaleString("en-US")} lines/s for ${
      page.live.lines / page.live.rate
    } s`;
    row(
      `page, ${live}: largest lag of the last line on screen (ms)`,
      fmt(page.live.maxLagMs, 0),
      verdict(page.live.maxLagMs <= 1000, "≤ 1,000"),
    );
    row(`page, ${live}: the writer's last line to the screen (ms)`, fmt(page.live.endLagMs, 0));
    row(`page, ${live}: longest main-thread task (ms)`, fmt(page.live.maxLongTaskMs, 0));
    row(
      `page, ${live}: most line elements`,
      fmt(page.live.maxLineElements, 0),
      verdict(page.live.maxLineElements < 5000, "< 5,000"),
    );
  }
  return rows;
}

function markdownTable(rows: Row[]): string {
  const header = ["scenario", "shiplog", "baseline", "ratio", "target met"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => " --- ").join("|")}|`];
  for (const row of rows) {
    lines.push(`| ${row.scenario} | ${row.shiplog} | ${row.baseline} | ${row.ratio} | ${row.target} |`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Main

interface Args {
  only: SystemName[];
  scenarios: string[];
  /** Directory for the servers' V8 CPU profiles (`deno run --cpu-prof`), one per scenario and system. */
  profileDir?: string;
  /** Runs per system and scenario, instead of each scenario's default. */
  rounds?: number;
  /**
   * An A/A run: the baseline also runs in shiplog's place, so the ratios measure how much two runs of the same
   * server differ on this machine, the noise against which shiplog's ratios are read.
   */
  aa: boolean;
}

function parseArgs(args: string[]): Args {
  const parsed: Args = { only: SYSTEMS, scenarios: Object.keys(SCENARIOS), aa: false };
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (args[i] === "--only" && (value === "shiplog" || value === "baseline")) {
      parsed.only = [value];
      i++;
    } else if (args[i] === "--scenarios" && value !== undefined && /^[1-9](,[1-9])*$/.test(value)) {
      parsed.scenarios = value.split(",");
      i++;
    } else if (args[i] === "--rounds" && /^[1-9]$/.test(value ?? "")) {
      parsed.rounds = Number(value);
      i++;
    } else if (args[i] === "--profile" && value !== undefined && !value.startsWith("--")) {
      parsed.profileDir = value;
      i++;
    } else if (args[i] === "--aa") {
      parsed.aa = true;
    } else {
      const expected =
        "--only shiplog|baseline, --scenarios N[,N…] with N from 1 to 9, --rounds N from 1 to 9, --profile DIR or --aa";
      throw new TypeError(`Cannot parse argument "${args[i]}": expected ${expected}`);
    }
  }
  return parsed;
}

async function machine(): Promise<Record<string, string | number>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const ulimit = await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" }).output()
    .then((o) => new TextDecoder().decode(o.stdout).trim()).catch(() => "?");
  clockTicks = readClockTicks();
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "?",
    cores: navigator.hardwareConcurrency,
    memoryMiB: Math.round(Deno.systemMemoryInfo().total / 1024 / 1024),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    ulimitNofile: ulimit,
    clockTicks,
  };
}

/**
 * A live scenario's run: a fresh server (with `shiplogArgs` for shiplog), then {@linkcode liveScenario}.
 * `flags`: extra `deno run` flags for the server processes (profiling).
 */
function live(options: LiveOptions, shiplogArgs: string[] = []) {
  return (name: SystemName, flags: string[]) =>
    withSystem(() => startSystem(name, shiplogArgs, flags), (s) => liveScenario(s, options));
}

const SCENARIOS: Record<
  string,
  {
    title: string;
    /** Runs per system, alternating which goes first; the run with the median `key` is reported. */
    rounds: number;
    /** The systems it applies to, if not both. */
    systems?: SystemName[];
    key: (result: never) => number;
    run: (name: SystemName, flags: string[]) => Promise<unknown>;
  }
> = {
  "1": {
    title: "1 deployment, 1 viewer, 200 lines at 50 lines/s",
    rounds: 3,
    key: (r: LiveResult) => r.latency.p99,
    run: live({
      deployments: 1,
      viewersPerDeployment: 1,
      lines: 200,
      rate: 50,
      deadlineMs: 20_000,
      warmup: 25,
    }),
  },
  "2": {
    title: "1 deployment, 1,000 viewers, 100 lines at 10 lines/s",
    rounds: 3,
    key: (r: LiveResult) => r.latency.p99,
    run: live({
      deployments: 1,
      viewersPerDeployment: 1000,
      lines: 100,
      rate: 10,
      deadlineMs: 30_000,
      warmup: 5,
    }),
  },
  "3": {
    title: "200 deployments × 5 viewers, 20 lines each at 2 lines/s per deployment",
    rounds: 3,
    key: (r: LiveResult) => r.latency.p99,
    run: live({
      deployments: 200,
      viewersPerDeployment: 5,
      lines: 20,
      rate: 2,
      deadlineMs: 30_000,
      warmup: 1,
    }, ["--max-running", "1000"]),
  },
  "4": {
    title: "catch-up: a new viewer of a finished 100,000-line (~10 MB) log",
    rounds: 1,
    key: (r: CatchUpResult) => r.medianMs,
    run: (name, flags) => withSystem(() => startSystem(name, [], flags), (s) => catchUpScenario(s, 100_000)),
  },
  "5": {
    title: "throughput: 1,000,000 lines as fast as the writer can, 10 viewers",
    rounds: 3,
    key: (r: LiveResult) => r.minLinesPerSecond,
    run: live({
      deployments: 1,
      viewersPerDeployment: 10,
      lines: 1_000_000,
      rate: 0,
      deadlineMs: 60_000,
      warmup: 1_000,
    }),
  },
  "6": {
    title: "memory: 2,000 idle viewers",
    rounds: 3,
    key: (r: IdleResult) => r.perViewerKiB,
    run: (name, flags) => withSystem(() => startSystem(name, [], flags), (s) => idleScenario(s, 2000)),
  },
  "7": {
    title:
      "resume: 100 viewers, one after another, resuming after line 99,990 of a finished 100,000-line log",
    rounds: 1,
    systems: ["shiplog"],
    key: (r: ResumeResult) => r.cpuPerResumeMs,
    run: (name, flags) =>
      withSystem(() => startSystem(name, [], flags), (s) => resumeScenario(s, 100_000, 100)),
  },
  "8": {
    title:
      "cluster: 2 instances on 1 Redis, 10 viewers split between them, written over HTTP; beside file mode",
    rounds: 1,
    systems: ["shiplog"],
    key: (r: ClusterResult) => r.cluster.latency.latency.p99,
    run: (_name, flags) => clusterScenario(flags),
  },
  "9": {
    title:
      "the deployment page in Chromium: a finished 1,000,000-line log opened and searched; a live log at 5,000 lines/s",
    rounds: 1,
    systems: ["shiplog"],
    key: (r: PageResult) => r.lastLineMs,
    run: (_name, flags) => pageScenario(flags),
  },
};

const running = new Set<System>();

/** Runs `body` on the system `start` gives, stopping it afterwards (and on an interrupt meanwhile). */
async function withSystem<T>(start: () => Promise<System>, body: (s: System) => Promise<T>): Promise<T> {
  const system = await start();
  running.add(system);
  try {
    return await body(system);
  } finally {
    running.delete(system);
    await system.stop();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const facts = await machine();
  progress(`machine: ${JSON.stringify(facts)}`);
  const interrupt = () => {
    progress("interrupted; stopping servers");
    Promise.all([...running].map((s) => s.stop())).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);

  const results: Results = {};
  const runs: Record<string, Partial<Record<SystemName, unknown[]>>> = {};
  // Results stay filed under the column's name; in an A/A run the baseline runs in both columns.
  const runAs = (name: SystemName): SystemName => args.aa ? "baseline" : name;
  if (args.aa) progress("A/A run: the baseline runs in both columns; the ratios are this machine's noise");
  const failures: string[] = [];
  for (const n of args.scenarios) {
    const scenario = SCENARIOS[n];
    const rounds = args.rounds ?? scenario.rounds;
    runs[n] = {};
    for (let round = 1; round <= rounds; round++) {
      // Alternate which system goes first, so that a drift in the machine's speed favours neither.
      const systems = args.only.filter((name) => scenario.systems?.includes(runAs(name)) ?? true);
      const order = round % 2 === 1 ? systems : [...systems].reverse();
      for (const name of order) {
        progress(`scenario ${n} (${scenario.title}) on ${name}, round ${round} of ${rounds}`);
        try {
          const flags = args.profileDir === undefined ? [] : [
            "--cpu-prof",
            `--cpu-prof-dir=${args.profileDir}`,
            `--cpu-prof-name=${name}-scenario${n}-round${round}.cpuprofile`,
          ];
          const result = await within(120_000, `scenario ${n} on ${name}`, scenario.run(runAs(name), flags));
          (runs[n][name] ??= []).push(result);
          progress(
            `  ${name}: ${
              JSON.stringify(result, (_, v) => typeof v === "number" ? Number(v.toFixed(3)) : v)
            }`,
          );
        } catch (error) {
          const message = `scenario ${n} on ${name} (round ${round}) failed: ${
            error instanceof Error ? error.message : error
          }`;
          failures.push(message);
          progress(message);
        }
      }
    }
    results[n] = {};
    for (const [name, list] of Object.entries(runs[n]) as [SystemName, unknown[]][]) {
      const key = scenario.key as (result: unknown) => number;
      const sorted = [...list].sort((a, b) => key(a) - key(b));
      const picked = sorted[Math.floor((sorted.length - 1) / 2)];
      // CPU per line drifts from run to run on its own: its own median, not that of the run picked by latency.
      results[n][name] = isLiveResult(picked)
        ? {
          ...picked,
          cpuPerLineUs: median((list as LiveResult[]).map((r) => r.cpuPerLineUs)),
          watcherCpuPerLineUs: median((list as LiveResult[]).map((r) => r.watcherCpuPerLineUs)),
          otherCpuPerLineUs: median((list as LiveResult[]).map((r) => r.otherCpuPerLineUs)),
        }
        : picked;
    }
  }

  const rows = buildRows(results);
  const table = markdownTable(rows);
  if (args.aa) {
    console.log('A/A run: the column "shiplog" is the baseline too; a ratio\'s distance from 1 is noise.\n');
  }
  console.log(table);
  if (results["8"]?.shiplog !== undefined) {
    console.log(
      "\nScenario 8: the column shiplog is the cluster (instances a and b on one redis-server, appendfsync " +
        "everysec; the writer on a), the column baseline one shiplog in file mode under the same load, both " +
        "written through POST /api/deployments/<id>/log; ratio = cluster ÷ file mode.",
    );
  }
  if (failures.length > 0) console.log(`\nFailures:\n${failures.map((f) => `- ${f}`).join("\n")}`);
  const rounds = args.scenarios.map((n) => `${n}: ${args.rounds ?? SCENARIOS[n].rounds}`).join(", ");
  console.log(
    `\nEach figure is from the run with the median key figure, except CPU per line: the median over runs; runs per system (${rounds}).`,
  );
  const loads = Object.entries(runs).flatMap(([n, r]) =>
    Object.entries(r).map(([name, list]) => {
      const worst = Math.max(...(list as { otherLoadPercent: number }[]).map((x) => x.otherLoadPercent));
      return `${n} ${name} ${fmt(worst, 0)}%`;
    })
  );
  console.log(`CPU used by other processes, worst run (% of all cores): ${loads.join(", ")}.`);
  console.log(
    `\n${facts.cores} cores, ${facts.cpu}, Deno ${facts.deno}; ${
      ((performance.now() - benchStart) / 1000).toFixed(0)
    } s in all.`,
  );

  const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
  const dir = new URL("results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const file = new URL(`${stamp}.json`, dir);
  await Deno.writeTextFile(
    file,
    JSON.stringify(
      { date: new Date().toISOString(), args: Deno.args, machine: facts, results, runs, failures, rows },
      null,
      2,
    ) +
      "\n",
  );
  progress(`wrote ${decodeURIComponent(file.pathname)}`);
  Deno.removeSignalListener("SIGINT", interrupt);
  Deno.removeSignalListener("SIGTERM", interrupt);
  if (failures.length > 0) Deno.exitCode = 1;
}

if (import.meta.main) await main();
