/**
 * @module
 * The built-in deployment that runs when no `--command` is given, so that a first `deno task start` shows the
 * whole product: a realistic 10 to 20 second sequence of steps, a few lines each, with `[n/m]` progress lines
 * and some colour. It runs in-process (no external program) and stops at once when its signal aborts.
 */

/** Options of {@linkcode simulateDeployment}. */
export interface SimulationOptions {
  /** Milliseconds between two lines, on average. Default 350 (about 10 s in all). */
  lineDelayMs?: number;
  /** Stops the simulation; it then resolves with exit code 130, like a command stopped by Ctrl-C. */
  signal?: AbortSignal;
}

const STEPS: [string, string[]][] = [
  ["Checking out revision", [
    "HEAD is now at 4f2a9c1 Release 2.14.0",
    "\u001b[2mverified signature of 4f2a9c1\u001b[0m",
  ]],
  ["Installing dependencies", ["resolved 412 packages in 1.2s", "added 412 packages, audited 413"]],
  ["Running tests", [
    "\u001b[32m✓\u001b[0m unit (1,204 tests)",
    "\u001b[32m✓\u001b[0m integration (87 tests)",
    "\u001b[33m!\u001b[0m 2 tests skipped",
  ]],
  ["Building image", [
    "Step 1/6 : FROM denoland/deno:2.9.6",
    "Step 4/6 : RUN deno cache main.ts",
    "Successfully built 9c3e1f0a2b7d",
  ]],
  ["Pushing image", ["pushing registry.internal/shiplog-demo:2.14.0", "digest: sha256:5b1e…f03a size: 2417"]],
  ["Migrating database", ["applying 20261124_add_index.sql", "  CREATE INDEX deployments_created_at (0.4s)"]],
  ["Rolling out", [
    "replica 1/3 healthy",
    "replica 2/3 healthy",
    "replica 3/3 healthy",
  ]],
  ["Verifying", ["GET /healthz -> 200 in 12ms", "\u001b[1;32mDeployment complete.\u001b[0m"]],
];

/** Runs the simulated deployment, writing its lines through `write`; resolves with the exit code. */
export async function simulateDeployment(
  write: (lines: string[]) => Promise<void>,
  options: SimulationOptions = {},
): Promise<number> {
  const delay = options.lineDelayMs ?? 350;
  const signal = options.signal;
  for (const [index, [title, details]] of STEPS.entries()) {
    for (const line of [`\u001b[1m[${index + 1}/${STEPS.length}] ${title}\u001b[0m`, ...details]) {
      // Jitter makes the log look alive; it stays within 50% to 150% of the delay.
      if (!await sleep(delay * (0.5 + Math.random()), signal)) return 130;
      await write([line]);
    }
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (completed: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(completed);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
