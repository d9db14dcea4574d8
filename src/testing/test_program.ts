/**
 * @module
 * The real program for the end-to-end tests: `deno run main.ts` as its own process, with the permissions of
 * `deno task start`, on a free port; and the waits those tests share. Pair it with the HTTP helpers of
 * `test_app.ts`, which take its `url`.
 */

import assert from "node:assert/strict";
import type { Deployment, Status } from "../logs/deployment.ts";
import { createDeployment, getDeployment, type Listening } from "./test_app.ts";
import { waitForValue } from "./test_helpers.ts";

const root = new URL("../..", import.meta.url);

/** A spawned shiplog; SIGKILLed when disposed if still running. */
export interface Program extends AsyncDisposable {
  process: Deno.ChildProcess;
  pid: number;
  url: string;
  /** Everything the program printed to stderr so far. */
  stderr(): string;
}

/** Options of {@linkcode spawnShiplog}. */
export interface SpawnOptions {
  /**
   * Run with `--allow-all` instead of the permissions of `deno task start`. Deno asks for it to read
   * `/proc/<pid>/environ` (how a restart finds a crashed server's orphans) and to write a device such as
   * `/dev/full`; without it those fail (the orphans are then silently left running). Default false.
   */
  allowAll?: boolean;
  /** Variables set in its environment, besides those it inherits from the test. */
  env?: Record<string, string>;
  /**
   * Run under `ulimit -f` of this many blocks of 512 bytes, with SIGXFSZ ignored: a write past it fails, as on
   * a full disk. Default none.
   */
  fileSizeBlocks?: number;
  /** Run under this open file limit (`ulimit -n`, soft and hard). Default: this process's. */
  openFileLimit?: number;
}

/** The permissions of `deno task start`. */
const START_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
];

/**
 * Starts `main.ts` on a free port with its deployments in `dir`, plus `args`, and waits (up to 15 s) for its
 * listening line; use it with `await using`.
 */
export async function spawnShiplog(
  dir: string,
  args: string[] = [],
  options: SpawnOptions = {},
): Promise<Program> {
  const permissions = options.allowAll ? ["--allow-all"] : START_PERMISSIONS;
  const command = [Deno.execPath(), "run", ...permissions, "main.ts", "--port", "0", "--dir", dir, ...args];
  // Limits as a shell sets them, then the program in the shell's place.
  const limits = [
    ...options.fileSizeBlocks === undefined ? [] : [`trap '' XFSZ; ulimit -f ${options.fileSizeBlocks}`],
    ...options.openFileLimit === undefined ? [] : [`ulimit -n ${options.openFileLimit}`],
  ];
  const limited = limits.length === 0
    ? command
    : ["sh", "-c", `${limits.join(" && ")} && exec "$0" "$@"`, ...command];
  const process = new Deno.Command(limited[0], {
    args: limited.slice(1),
    cwd: root,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const errorsRead = (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) errors += chunk;
  })();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = setTimeout(() => process.kill("SIGKILL"), 15_000);
  try {
    while (!/http:\/\/\S+\/\n/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`shiplog exited before listening: ${out}${errors}`);
      out += value;
    }
  } catch (error) {
    await process.status;
    await errorsRead;
    throw error;
  } finally {
    clearTimeout(deadline);
  }
  // Keep draining stdout so the program never blocks on a full pipe.
  const outRead = (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    process,
    pid: process.pid,
    url: out.match(/(http:\/\/\S+\/)\n/)![1],
    stderr: () => errors,
    async [Symbol.asyncDispose]() {
      try {
        process.kill("SIGKILL");
      } catch { /* already exited */ }
      await process.status;
      await Promise.all([errorsRead, outRead]);
    },
  };
}

/** SIGTERM, then the exit status and how long it took; SIGKILL after `ms`. */
export async function terminate(program: Program, ms = 10_000): Promise<{ code: number; elapsedMs: number }> {
  const started = performance.now();
  program.process.kill("SIGTERM");
  const timer = setTimeout(() => program.process.kill("SIGKILL"), ms);
  try {
    const status = await program.process.status;
    return { code: status.code, elapsedMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, and asserts exit status 0 (within {@linkcode terminate}'s 10 s). */
export async function assertExitsCleanly(program: Program): Promise<void> {
  const { code } = await terminate(program);
  assert.equal(code, 0, program.stderr());
}

/** Starts a deployment (`POST /start`, asserting 201) and returns its id. */
export async function startDeployment(program: Listening): Promise<string> {
  return (await createDeployment(program)).id;
}

/** Waits until the deployment `id` has `status`, and returns its record then. */
export async function waitForStatus(
  program: Listening,
  id: string,
  status: Status,
  timeoutMs = 10_000,
): Promise<Deployment> {
  return await waitForValue(`deployment ${id} to be ${status}`, async () => {
    const record = await getDeployment(program, id);
    return record.status === status ? record : undefined;
  }, { timeoutMs, intervalMs: 25 });
}
