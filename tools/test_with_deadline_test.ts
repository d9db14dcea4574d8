import assert from "node:assert/strict";
import { parseArgs, TestProgress } from "./test_with_deadline.ts";
import { isProcessAlive, makeTempDir, waitFor } from "../src/testing/test_helpers.ts";

const WATCHDOG = new URL("test_with_deadline.ts", import.meta.url).pathname;
const FIXTURE = new URL("test_with_deadline_fixture.ts", import.meta.url).pathname;

/** Runs the fixture's tests named `filter` through the watchdog with a test deadline of 2 s. */
async function watch(filter: string, env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-all", WATCHDOG, "--test-seconds", "2"],
      ...[Deno.execPath(), "test", "--allow-all", "--no-check", "--filter", filter, FIXTURE],
    ],
    env: { NO_COLOR: "1", ...env },
    // A watchdog that hangs too fails here, not in the suite's own watchdog.
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("test_with_deadline stops a spinning step and names it with its test and file", async () => {
  const { code, stdout, stderr } = await watch("fixture spins");
  assert.equal(code, 1, stderr);
  assert.match(stdout, /a step that ends \.\.\. ok/);
  assert.match(
    stderr,
    /A test hung: "fixture spins › a step that spins" in \.\/tools\/test_with_deadline_fixture\.ts did not finish within 2 s/,
  );
});

Deno.test("test_with_deadline stops a test that awaits forever, and the processes it started", async () => {
  await using dir = await makeTempDir();
  const pids = `${dir.path}/pids`;
  const { code, stderr } = await watch("fixture awaits forever", { FIXTURE_PIDS: pids });
  assert.equal(code, 1, stderr);
  assert.match(stderr, /A test hung: "fixture awaits forever" in \S+ did not finish within 2 s/);
  for (const pid of (await Deno.readTextFile(pids)).split(" ").map(Number)) {
    await waitFor(`process ${pid} to be stopped`, () => !isProcessAlive(pid));
  }
});

Deno.test("test_with_deadline given SIGTERM stops the tests and the processes they started", async () => {
  await using dir = await makeTempDir();
  const pids = `${dir.path}/pids`;
  const watchdog = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-all", WATCHDOG, "--test-seconds", "120"],
      ...[
        Deno.execPath(),
        "test",
        "--allow-all",
        "--no-check",
        "--filter",
        "fixture awaits forever",
        FIXTURE,
      ],
    ],
    env: { NO_COLOR: "1", FIXTURE_PIDS: pids },
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const output = watchdog.output();
  await waitFor(
    "the fixture's processes",
    async () => (await Deno.readTextFile(pids).catch(() => "")) !== "",
    {
      timeoutMs: 30_000,
    },
  );
  watchdog.kill("SIGTERM");
  const { code, stderr } = await output;
  assert.equal(code, 1);
  assert.match(new TextDecoder().decode(stderr), /The tests were stopped by a signal/);
  for (const pid of (await Deno.readTextFile(pids)).split(" ").map(Number)) {
    await waitFor(`process ${pid} to be stopped`, () => !isProcessAlive(pid));
  }
});

Deno.test("test_with_deadline passes the output and the exit status through", async () => {
  const passes = await watch("fixture passes");
  assert.equal(passes.code, 0, passes.stderr);
  assert.match(passes.stdout, /^ok \| 1 passed \| 0 failed \| 3 filtered out/m);
  const fails = await watch("fixture fails");
  assert.equal(fails.code, 1);
  assert.match(fails.stdout, /^FAILED \| 0 passed \| 1 failed \| 3 filtered out/m);
  assert.doesNotMatch(fails.stderr, /test_with_deadline/);
});

Deno.test("TestProgress follows tests and steps in pieces of output, and leaves out what tests print", () => {
  const progress = new TestProgress();
  const at = (text: string, now: number) => {
    progress.feed(text, now);
    return [progress.describe(), progress.lastChange];
  };
  assert.deepEqual(at("Check a_test.ts\n", 1), ["before any test file began", undefined]);
  assert.deepEqual(at("\x1b[0m\x1b[38;5;245mrunning 2 tests from ./a_test.ts\x1b[0m\nplain ...", 2), [
    '"plain" in ./a_test.ts',
    2,
  ]);
  assert.deepEqual(at(" \x1b[0m\x1b[32mok\x1b[0m (7ms)\nwith steps ...", 3), [
    '"with steps" in ./a_test.ts',
    3,
  ]);
  assert.deepEqual(at("\n  outer ...\n    inn", 4), ['"with steps › outer" in ./a_test.ts', 4]);
  assert.deepEqual(at("er ...\n------- output -------\nlooks like ...\n  a step ...\n", 5), [
    '"with steps › outer › inner" in ./a_test.ts',
    5,
  ]);
  // The step's line again after the output is no new start.
  assert.deepEqual(at("----- output end -----\n    inner ...", 6), [
    '"with steps › outer › inner" in ./a_test.ts',
    5,
  ]);
  assert.deepEqual(at(" FAILED (1ms)\n  outer ... FAILED (due to 1 failed step) (2ms)\n", 7), [
    '"with steps" in ./a_test.ts',
    7,
  ]);
  assert.deepEqual(at("with steps ... FAILED (3ms)\n", 8), [
    "between tests of ./a_test.ts (loading a file, or its teardown)",
    8,
  ]);
  assert.deepEqual(at("\n ERRORS \n\nwith steps => ./a_test.ts:3:6\nerror: x ...\n", 9), [
    "after the last test (in the summary or the teardown)",
    9,
  ]);
});

Deno.test("test_with_deadline's options: seconds above 0, then the command", () => {
  assert.deepEqual(parseArgs(["--test-seconds", "5", "--total-seconds", "60", "deno", "test"]), {
    command: ["deno", "test"],
    options: { testMs: 5000, totalMs: 60_000 },
  });
  assert.deepEqual(parseArgs(["--", "--weird", "x"]), { command: ["--weird", "x"], options: {} });
  assert.throws(
    () => parseArgs(["--test-seconds", "abc", "deno"]),
    new TypeError('Cannot parse --test-seconds "abc": expected a number of seconds above 0'),
  );
  assert.throws(() => parseArgs(["--total-seconds", "0", "deno"]), /expected a number of seconds above 0/);
  assert.throws(() => parseArgs(["--retries", "3", "deno"]), /Unknown option --retries/);
  assert.throws(() => parseArgs(["--test-seconds", "5"]), /No command given/);
});
