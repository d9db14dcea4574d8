/**
 * @module
 * A watchdog for `deno test`, which has no deadline of its own: a test that spins or awaits what never comes
 * stalls the run for good, and a spinning test cannot be stopped from inside its own isolate. This runs the
 * command given after its options (`deno test …`), passes its output through unchanged, follows in Deno's
 * test reporter which test and step of which file is running, and stops the command with every process it
 * started when no test or step has started or ended for `--test-seconds` (default 180), or when the whole run
 * passes `--total-seconds` (default 1800), or when it gets SIGINT or SIGTERM itself. It then says which test hung
 * and exits 1; otherwise it exits with
 * the command's status.
 *
 * Usage: `deno run --allow-all tools/test_with_deadline.ts [--test-seconds S] [--total-seconds S] deno test …`
 *
 * It reads the pretty reporter (the default), test files one after another (no `--parallel`). The test clock
 * starts with the first `running N tests from` line: type checking before it counts against the total only.
 * On Linux every descendant (found through `/proc`, hence `--allow-all`) and its process group are stopped;
 * elsewhere only the command itself.
 */

/** Options of {@linkcode runWithDeadline}. */
export interface DeadlineOptions {
  /** Longest time without any test or step starting or ending, in milliseconds. Default 180,000. */
  testMs?: number;
  /** Longest time for the whole command, in milliseconds. Default 1,800,000. */
  totalMs?: number;
  /** How often the deadlines are checked, in milliseconds. Default 500. */
  checkIntervalMs?: number;
}

/** What test files Deno's pretty reporter says are running, from its output fed in as it comes. */
export class TestProgress {
  #file: string | undefined;
  /** The running test and its running steps, outermost first. */
  #running: string[] = [];
  #partial = "";
  #inOutput = false;
  #over = false;
  #lastChange: number | undefined;

  /** Takes the next piece of output; `now` is when it came, in `performance.now()` milliseconds. */
  feed(text: string, now: number): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!;
    for (const line of lines) this.#readLine(stripAnsi(line), true, now);
    // A test with no steps and no output is named ("name ...") and then nothing until it ends.
    if (this.#partial !== "") this.#readLine(stripAnsi(this.#partial), false, now);
  }

  /** When a test or step last started or ended (or the first file began), or `undefined` before any file. */
  get lastChange(): number | undefined {
    return this.#lastChange;
  }

  /** Where the run is, for a message: `"test › step" in ./file_test.ts`, or what came last. */
  describe(): string {
    if (this.#over) return "after the last test (in the summary or the teardown)";
    if (this.#file === undefined) return "before any test file began";
    if (this.#running.length === 0) return `between tests of ${this.#file} (loading a file, or its teardown)`;
    return `"${this.#running.join(" › ")}" in ${this.#file}`;
  }

  #readLine(line: string, complete: boolean, now: number): void {
    if (this.#over) return;
    // What a test prints comes between these two lines, and is not the reporter's.
    if (complete && /^-+ output(?: end)? -+$/.test(line)) {
      this.#inOutput = !line.includes(" end ");
      return;
    }
    if (this.#inOutput) return;
    const file = /^running \d+ tests? from (.+)$/.exec(line)?.[1];
    if (complete && file !== undefined) {
      this.#file = file;
      this.#running = [];
      this.#lastChange = now;
      return;
    }
    if (complete && (line === " ERRORS " || /^(ok|FAILED) \| \d+ passed/.test(line))) {
      this.#over = true;
      this.#lastChange = now;
      return;
    }
    const match = /^((?: {2})*)(\S.*?) \.\.\.(?: (ok|FAILED|ignored|cancelled)\b.*)?$/.exec(line);
    if (match === null || this.#file === undefined) return;
    const depth = match[1].length / 2;
    const [name, result] = [match[2], match[3]];
    if (result !== undefined) {
      this.#running.length = Math.min(this.#running.length, depth);
      this.#lastChange = now;
    } else if (this.#running.length !== depth + 1 || this.#running[depth] !== name) {
      // Seen before when its line is completed by a step or by output: only a new start is a change.
      this.#running.length = Math.min(this.#running.length, depth);
      this.#running.push(name);
      this.#lastChange = now;
    }
  }
}

/** Deno's reporter colours its output even into a pipe. */
function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Runs `command`, its output passed through, until it ends or a deadline passes; resolves with its exit code,
 * or 1 after a deadline (with the reason on stderr).
 */
export async function runWithDeadline(command: string[], options: DeadlineOptions = {}): Promise<number> {
  const testMs = options.testMs ?? 180_000;
  const totalMs = options.totalMs ?? 1_800_000;
  const started = performance.now();
  const child = new Deno.Command(command[0], { args: command.slice(1), stdout: "piped", stderr: "piped" })
    .spawn();
  const progress = new TestProgress();
  const [forOutput, forProgress] = child.stdout.tee();
  const passed = Promise.all([
    forOutput.pipeTo(Deno.stdout.writable, { preventClose: true }),
    child.stderr.pipeTo(Deno.stderr.writable, { preventClose: true }),
    forProgress.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (text) => progress.feed(text, performance.now()) }),
    ),
  ]).catch(() => {});
  let expired: string | undefined;
  const timer = setInterval(() => {
    const now = performance.now();
    const last = progress.lastChange;
    if (now - started > totalMs) {
      expired = `The tests did not finish within ${totalMs / 1000} s (now ${progress.describe()})`;
    } else if (last !== undefined && now - last > testMs) {
      expired = `A test hung: ${progress.describe()} did not finish within ${testMs / 1000} s`;
    } else return;
    clearInterval(timer);
    stopTree(child);
  }, options.checkIntervalMs ?? 500);
  // Stopped itself (a CI run cancelled, a supervisor): not without what it started, which would run on.
  const onSignal = () => {
    expired ??= "The tests were stopped by a signal";
    clearInterval(timer);
    stopTree(child);
  };
  for (const name of STOP_SIGNALS) Deno.addSignalListener(name, onSignal);
  const status = await child.status;
  clearInterval(timer);
  for (const name of STOP_SIGNALS) Deno.removeSignalListener(name, onSignal);
  // A process the tests left running may still hold the output open: that must not hold this up too.
  let outputTimer: ReturnType<typeof setTimeout> | undefined;
  const outputHeld = await Promise.race([
    passed.then(() => false),
    new Promise<boolean>((resolve) => outputTimer = setTimeout(() => resolve(true), 5000)),
  ]);
  clearTimeout(outputTimer);
  if (outputHeld) {
    console.error("test_with_deadline: a process the tests started still holds their output open");
  }
  if (expired === undefined) return status.code;
  console.error(`\ntest_with_deadline: ${expired}; stopped it and every process it started.`);
  return 1;
}

/**
 * SIGKILL to `child` and everything it started. Each process is stopped (SIGSTOP) first, so that none starts
 * another meanwhile; then every process and the process groups they are in (a deploy command's own group, say)
 * are killed, except the group of this program.
 */
function stopTree(child: Deno.ChildProcess): void {
  let processes: Map<number, ProcessEntry>;
  try {
    processes = processTable();
  } catch {
    // No /proc: only the command itself.
    child.kill("SIGKILL");
    return;
  }
  const own = processes.get(Deno.pid)?.group;
  const groups = new Map<number, number>();
  for (let round = 0; round < 10; round++) {
    const found = descendants(child.pid, processes).filter((pid) => !groups.has(pid));
    if (found.length === 0) break;
    for (const pid of found) {
      signal(pid, "SIGSTOP");
      groups.set(pid, processes.get(pid)?.group ?? pid);
    }
    processes = processTable();
  }
  for (const pid of groups.keys()) signal(pid, "SIGKILL");
  for (const group of new Set(groups.values())) if (group !== own && group > 1) signal(-group, "SIGKILL");
}

function signal(pid: number, name: Deno.Signal): void {
  try {
    Deno.kill(pid, name);
  } catch {
    // Gone already.
  }
}

interface ProcessEntry {
  parent: number;
  group: number;
}

/** Every live process by pid, from `/proc`. Throws where there is none. */
function processTable(): Map<number, ProcessEntry> {
  const processes = new Map<number, ProcessEntry>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const [, parent, group] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    processes.set(Number(entry.name), { parent: Number(parent), group: Number(group) });
  }
  return processes;
}

/** `root` and every process below it. */
function descendants(root: number, processes: Map<number, ProcessEntry>): number[] {
  const found = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, { parent }] of processes) {
      if (found.has(parent) && !found.has(pid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return [...found];
}

/** Reads the options and the command from `args`; throws a `TypeError` that says what is wrong. */
export function parseArgs(args: string[]): { command: string[]; options: DeadlineOptions } {
  const options: DeadlineOptions = {};
  let rest = args;
  while (rest.length > 0 && rest[0].startsWith("--") && rest[0] !== "--") {
    const [flag, value] = rest;
    const seconds = Number(value);
    if (value === undefined || !(seconds > 0)) {
      throw new TypeError(`Cannot parse ${flag} "${value ?? ""}": expected a number of seconds above 0`);
    }
    if (flag === "--test-seconds") options.testMs = seconds * 1000;
    else if (flag === "--total-seconds") options.totalMs = seconds * 1000;
    else throw new TypeError(`Unknown option ${flag}: expected --test-seconds or --total-seconds`);
    rest = rest.slice(2);
  }
  const command = rest[0] === "--" ? rest.slice(1) : rest;
  if (command.length === 0) throw new TypeError("No command given: expected one, e.g. deno test --allow-all");
  return { command, options };
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseArgs(Deno.args);
  } catch (error) {
    console.error(`test_with_deadline: ${(error as Error).message}`);
    Deno.exit(2);
  }
  Deno.exit(await runWithDeadline(parsed.command, parsed.options));
}
