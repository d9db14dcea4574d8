/**
 * Tests of the runner with the real registry and file store: real `sh` commands in their own process groups,
 * real signals, and the processes checked through `/proc` afterwards.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "../logs/deployment.ts";
import { isFinal } from "../logs/deployment.ts";
import { Deployments } from "./deployments.ts";
import { FileStore } from "../logs/file_store.ts";
import { Runner, type RunnerOptions } from "./runner.ts";
import { Targets } from "./targets.ts";
import {
  delay,
  isProcessAlive,
  makeTempDir,
  processesInGroup,
  waitFor,
  withDeadline,
} from "../testing/test_helpers.ts";

/**
 * A runner on a fresh store; shuts the runner down and removes everything when disposed. `targetNames`: targets
 * of those names, each running `command`, instead of the one target.
 */
async function startRunner(options: RunnerOptions & { targetNames?: string[] } = {}) {
  const temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  const deployments = await Deployments.load(store);
  const { targetNames, ...runnerOptions } = options;
  const targets = targetNames && new Targets(targetNames.map((name) => ({
    name,
    description: null,
    command: options.command ?? null,
    cwd: null,
    params: new Map(),
  })));
  const runner = new Runner(deployments, store, { graceMs: 200, targets, ...runnerOptions });
  return {
    runner,
    deployments,
    store,
    dir: temp.path,
    /** Creates a deployment (of `target`, default the one target) and queues it. */
    async start(target?: string): Promise<string> {
      const deployment = await runner.start(() => deployments.create(runner.command, { target }));
      assert.ok(deployment, "started");
      return deployment.id;
    },
    status: (id: string) => deployments.get(id)!.status,
    readLog: (id: string) => Deno.readTextFile(join(temp.path, `${id}.log`)),
    /** Waits until the deployment has ended and returns its record. */
    async ended(id: string, timeoutMs = 5000): Promise<Deployment> {
      await waitFor(`deployment ${id} to end`, () => isFinal(deployments.get(id)!.status), { timeoutMs });
      return deployments.get(id)!;
    },
    /** Waits until the log has a line matching `pattern` and returns the pattern's first group. */
    async logMatch(id: string, pattern: RegExp): Promise<string> {
      let match: RegExpMatchArray | null = null;
      await waitFor(`a line matching ${pattern}`, async () => {
        match = (await Deno.readTextFile(join(temp.path, `${id}.log`))).match(pattern);
        return match !== null;
      });
      return match![1];
    },
    async [Symbol.asyncDispose]() {
      await runner.shutdown();
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

/** A command that waits until the file `$GATE_DIR/<deployment id>` exists, and the function that opens it. */
function gated(dir: string, before = "", after = "") {
  return {
    command: `${before}\nwhile [ ! -e "${dir}/gate-$SHIPLOG_DEPLOYMENT_ID" ]; do sleep 0.01; done\n${after}`,
    open: (id: string) => Deno.writeTextFile(join(dir, `gate-${id}`), ""),
  };
}

const isLinux = Deno.build.os === "linux";

Deno.test("Runner appends stdout and stderr lines as they come, while the command still runs", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path, "echo early out; echo early err >&2", "echo late");
  await using fixture = await startRunner({ command: gate.command });
  const id = await fixture.start();
  await waitFor("both early lines", async () => (await fixture.readLog(id)).split("\n").length === 3);
  const log = await fixture.readLog(id);
  assert.deepEqual(log.split("\n").sort(), ["", "early err", "early out"]);
  assert.equal(fixture.status(id), "running");
  await gate.open(id);
  const ended = await fixture.ended(id);
  assert.equal(ended.status, "succeeded");
  assert.match(await fixture.readLog(id), /\nlate\n$/);
});

Deno.test("Runner gives the command SHIPLOG_DEPLOYMENT_ID and the server's environment", async () => {
  await using fixture = await startRunner({ command: 'echo "id=$SHIPLOG_DEPLOYMENT_ID"; echo "path=$PATH"' });
  const id = await fixture.start();
  await fixture.ended(id);
  assert.equal(await fixture.readLog(id), `id=${id}\npath=${Deno.env.get("PATH")}\n`);
});

Deno.test("Runner given an environment gives the command that and its own variables, nothing inherited", async () => {
  // `env` prints the environment as the command gets it; HOME, set for the test, is not passed on.
  assert.ok(Deno.env.get("HOME"), "the test has a HOME to leave out");
  await using fixture = await startRunner({
    command: "env | sort",
    env: { PATH: Deno.env.get("PATH")!, DEPLOY_TARGET: "staging", SHIPLOG_DEPLOYMENT_ID: "forged" },
  });
  const id = await fixture.start();
  await fixture.ended(id);
  const lines = (await fixture.readLog(id)).split("\n").filter((line) => line !== "");
  // `sh` adds PWD of its own.
  assert.deepEqual(lines.filter((line) => !line.startsWith("PWD=")), [
    "DEPLOY_TARGET=staging",
    `PATH=${Deno.env.get("PATH")}`,
    `SHIPLOG_DEPLOYMENT_ID=${id}`,
    "SHIPLOG_STARTED_BY=",
    "SHIPLOG_TARGET=default",
  ]);
});

Deno.test("Runner records exit 0 as succeeded and exit 3 as failed, with the exit code", async (t) => {
  await t.step("exit 0", async () => {
    await using fixture = await startRunner({ command: "echo fine; exit 0" });
    const id = await fixture.start();
    const ended = await fixture.ended(id);
    assert.equal(ended.status, "succeeded");
    assert.equal(ended.exitCode, 0);
    assert.equal(ended.reason, null);
    assert.ok(ended.startedAt && ended.finishedAt && ended.startedAt <= ended.finishedAt);
  });
  await t.step("exit 3", async () => {
    await using fixture = await startRunner({ command: "echo broken >&2; exit 3" });
    const id = await fixture.start();
    const ended = await fixture.ended(id);
    assert.equal(ended.status, "failed");
    assert.equal(ended.exitCode, 3);
    assert.equal(ended.reason, "exit code 3");
    assert.equal(await fixture.readLog(id), "broken\n");
  });
});

Deno.test("Runner flushes an unterminated last line of stdout and of stderr", async () => {
  await using fixture = await startRunner({ command: "printf 'first\\nno newline' ; printf 'err end' >&2" });
  const id = await fixture.start();
  await fixture.ended(id);
  const lines = (await fixture.readLog(id)).split("\n");
  assert.equal(lines.pop(), "", "the log ends with a line ending");
  assert.deepEqual(lines.sort(), ["err end", "first", "no newline"]);
});

Deno.test("Runner with maxRunning 1 runs deployments first in first out, the others queued", async (t) => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path);
  await using fixture = await startRunner({ command: gate.command, maxRunning: 1 });
  const [a, b, c] = [await fixture.start(), await fixture.start(), await fixture.start()];

  await t.step("the first runs, the others wait", async () => {
    await waitFor("a to run", () => fixture.status(a) === "running");
    await delay(50);
    assert.deepEqual([fixture.status(b), fixture.status(c)], ["queued", "queued"]);
    assert.equal(fixture.runner.runningCount, 1);
  });
  await t.step("the second starts only when the first has ended", async () => {
    await gate.open(a);
    await waitFor("b to run", () => fixture.status(b) === "running");
    assert.equal(fixture.status(a), "succeeded");
    assert.equal(fixture.status(c), "queued");
  });
  await t.step("then the third", async () => {
    await gate.open(b);
    await waitFor("c to run", () => fixture.status(c) === "running");
    await gate.open(c);
    await fixture.ended(c);
  });
  const [ra, rb, rc] = [a, b, c].map((id) => fixture.deployments.get(id)!);
  assert.ok(ra.finishedAt! <= rb.startedAt!, "b started after a ended");
  assert.ok(rb.finishedAt! <= rc.startedAt!, "c started after b ended");
});

Deno.test("Runner.cancel() of a queued deployment records it cancelled without running it", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path, "echo ran");
  await using fixture = await startRunner({ command: gate.command, maxRunning: 1 });
  const first = await fixture.start();
  const queued = await fixture.start();
  await waitFor("the first to run", () => fixture.status(first) === "running");

  assert.equal(await withDeadline("cancel", fixture.runner.cancel(queued)), true);
  const cancelled = fixture.deployments.get(queued)!;
  assert.equal(cancelled.status, "cancelled");
  assert.equal(cancelled.startedAt, null);
  assert.ok(cancelled.finishedAt);

  await gate.open(first);
  await fixture.ended(first);
  await delay(50);
  assert.equal(fixture.deployments.get(queued)!.status, "cancelled", "it was not started later");
  assert.equal(await fixture.readLog(queued), "shiplog: cancelled\n", "the notice alone: it never ran");
  assert.equal(await fixture.runner.cancel(queued), false, "an ended deployment cannot be cancelled");
  assert.equal(await fixture.runner.cancel(crypto.randomUUID()), false, "nor an unknown one");
});

Deno.test({
  name: "Runner.cancel() of a running deployment stops its whole process group, background children included",
  ignore: !isLinux,
  async fn() {
    await using fixture = await startRunner({
      command: 'echo "shell=$$"; sleep 60 & echo "child=$!"; wait',
    });
    const id = await fixture.start();
    const shell = Number(await fixture.logMatch(id, /^shell=(\d+)$/m));
    const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));
    assert.ok(isProcessAlive(child));
    assert.deepEqual(processesInGroup(shell).sort(), [shell, child].sort());

    assert.equal(await withDeadline("cancel", fixture.runner.cancel(id)), true);
    const ended = fixture.deployments.get(id)!;
    assert.equal(ended.status, "cancelled");
    assert.equal(ended.exitCode, null);
    await waitFor("the background child to be gone", () => !isProcessAlive(child), { timeoutMs: 1000 });
    assert.deepEqual(processesInGroup(shell), []);
  },
});

Deno.test({
  name: "Runner.cancel() sends SIGINT to every process of the group, not only to the command's shell",
  ignore: !isLinux,
  async fn() {
    await using temp = await makeTempDir();
    const marker = join(temp.path, "member-got-SIGINT");
    // The member runs in the foreground, in the shell's group. The shell's own trap only waits for it: so the
    // command exits once the member has written its marker, and no SIGTERM to the group can come first.
    await using fixture = await startRunner({
      command: `echo "shell=$$"; trap : INT
sh -c 'trap "echo SIGINT > ${marker}; exit 0" INT; echo "member=$$"; while :; do sleep 0.05; done'`,
      graceMs: 2000,
    });
    const id = await fixture.start();
    const shell = Number(await fixture.logMatch(id, /^shell=(\d+)$/m));
    const member = Number(await fixture.logMatch(id, /^member=(\d+)$/m));
    assert.notEqual(member, shell);
    assert.ok(processesInGroup(shell).includes(member), "the member is in the command's process group");

    assert.equal(await withDeadline("cancel", fixture.runner.cancel(id), 10_000), true);
    assert.equal(fixture.status(id), "cancelled");
    const got = await Deno.readTextFile(marker).catch(() => "nothing");
    assert.equal(got, "SIGINT\n", "the group member was sent SIGINT");
  },
});

Deno.test({
  name:
    "Runner.cancel() of a command that ignores SIGINT and SIGTERM ends it with SIGKILL after the grace periods",
  ignore: !isLinux,
  async fn() {
    await using fixture = await startRunner({
      command: `trap '' INT TERM; echo "shell=$$"; sleep 60 & echo "child=$!"; while :; do sleep 0.05; done`,
      graceMs: 200,
    });
    const id = await fixture.start();
    const shell = Number(await fixture.logMatch(id, /^shell=(\d+)$/m));
    const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));

    const started = performance.now();
    await withDeadline("cancel", fixture.runner.cancel(id));
    const elapsed = performance.now() - started;
    assert.equal(fixture.status(id), "cancelled");
    assert.ok(
      elapsed >= 380,
      `SIGKILL came after SIGINT and SIGTERM were each given 200 ms (took ${elapsed} ms)`,
    );
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    await waitFor("the group to be gone", () => processesInGroup(shell).length === 0, { timeoutMs: 1000 });
    assert.equal(isProcessAlive(child), false);
  },
});

Deno.test({
  name: "Runner stops the children a command leaves running when it exits",
  ignore: !isLinux,
  async fn(t) {
    // What, the command (which prints its child's pid), and the status it ends with (null: not checked).
    const cases: [string, string, string | null][] = [
      ["a child still holding the output pipes", 'sleep 60 & echo "child=$!"', "succeeded"],
      ["a child with its output elsewhere", 'sleep 60 >/dev/null 2>&1 & echo "child=$!"', "succeeded"],
      [
        "a child that ignores SIGTERM, with its output elsewhere",
        `(trap '' TERM; exec sleep 60) >/dev/null 2>&1 & echo "child=$!"`,
        null,
      ],
      // The pause lets the child leave the group before the command exits.
      [
        "a child that left the process group (setsid), holding the output pipes",
        'setsid sleep 60 & echo "child=$!"; sleep 0.3',
        "succeeded",
      ],
      [
        "a child that left the process group holding the output open for reading and writing",
        'exec 3<>/proc/self/fd/1; setsid sleep 60 >&3 2>&3 3>&- & echo "child=$!"; exec 3>&-; sleep 0.3',
        "succeeded",
      ],
    ];
    for (const [what, command, status] of cases) {
      await t.step(what, async () => {
        await using fixture = await startRunner({ command });
        const id = await fixture.start();
        const ended = await fixture.ended(id);
        if (status !== null) assert.equal(ended.status, status);
        const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));
        await waitFor("the child to be gone", () => !isProcessAlive(child), { timeoutMs: 1000 });
        assert.doesNotMatch(await fixture.readLog(id), /still holds its output open/);
      });
    }

    await t.step("but not a daemon: out of the group, with its output elsewhere", async () => {
      await using fixture = await startRunner({
        command: 'setsid sleep 60 >/dev/null 2>&1 & echo "child=$!"; sleep 0.3',
      });
      const id = await fixture.start();
      const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));
      try {
        assert.equal((await fixture.ended(id)).status, "succeeded");
        await delay(300);
        assert.ok(isProcessAlive(child), "started on purpose, and maybe used by other deployments");
      } finally {
        Deno.kill(child, "SIGKILL");
      }
    });

    await t.step(
      "a daemon is left alone while another process that left the group holding the output is stopped",
      async () => {
        await using fixture = await startRunner({
          command:
            'setsid sleep 60 >/dev/null 2>&1 & echo "daemon=$!"; setsid sleep 60 & echo "holder=$!"; sleep 0.3',
        });
        const id = await fixture.start();
        const daemon = Number(await fixture.logMatch(id, /^daemon=(\d+)$/m));
        const holder = Number(await fixture.logMatch(id, /^holder=(\d+)$/m));
        try {
          assert.equal((await fixture.ended(id)).status, "succeeded");
          await waitFor("the holder to be gone", () => !isProcessAlive(holder), { timeoutMs: 1000 });
          assert.ok(isProcessAlive(daemon), "the daemon let go of the output: started on purpose");
        } finally {
          for (const pid of [daemon, holder]) if (isProcessAlive(pid)) Deno.kill(pid, "SIGKILL");
        }
      },
    );
  },
});

Deno.test({
  name: "Runner.cancel() stops a child that left the group holding the output without waiting a grace period",
  ignore: !isLinux,
  async fn() {
    // A cancel (or a shutdown, which has a deadline) has spent its grace periods on the group already.
    await using fixture = await startRunner({
      command: 'setsid sleep 60 & echo "child=$!"; sleep 60',
      graceMs: 3000,
    });
    const id = await fixture.start();
    const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));
    try {
      const started = performance.now();
      await withDeadline("cancel", fixture.runner.cancel(id));
      const elapsed = performance.now() - started;
      assert.equal(fixture.status(id), "cancelled");
      assert.ok(elapsed < 2000, `took ${elapsed} ms, not less than the 3000 ms grace period`);
      await waitFor("the child to be gone", () => !isProcessAlive(child), { timeoutMs: 1000 });
    } finally {
      if (isProcessAlive(child)) Deno.kill(child, "SIGKILL");
    }
  },
});

Deno.test({
  name: "Runner ends a deployment whose leftover process cannot be found and still holds the output open",
  ignore: !isLinux,
  async fn() {
    // Out of the group and without SHIPLOG_DEPLOYMENT_ID: nothing identifies it as this deployment's.
    await using fixture = await startRunner({
      command: 'env -i setsid sleep 60 & echo "child=$!"; sleep 0.3',
      graceMs: 500,
    });
    const started = performance.now();
    const id = await fixture.start();
    const child = Number(await fixture.logMatch(id, /^child=(\d+)$/m));
    try {
      const ended = await fixture.ended(id);
      assert.equal(ended.status, "succeeded");
      // The command's 0.3 s, then one grace period (0.5 s) for the output to end; nothing found is waited for
      // (it was three grace periods: 1.8 s).
      const elapsed = performance.now() - started;
      assert.ok(
        elapsed < 1400,
        `took ${Math.round(elapsed)} ms, more than one grace period after the command`,
      );
      assert.match(
        await fixture.readLog(id),
        /^\[shiplog\] a process the command left running still holds its output open$/m,
      );
    } finally {
      Deno.kill(child, "SIGKILL");
    }
  },
});

Deno.test("Runner.shutdown() records running and queued deployments as interrupted and stops the commands", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path, 'echo "shell=$$"');
  await using fixture = await startRunner({ command: gate.command, maxRunning: 1 });
  const running = await fixture.start();
  const queued = await fixture.start();
  const shell = Number(await fixture.logMatch(running, /^shell=(\d+)$/m));

  await withDeadline("shutdown", fixture.runner.shutdown());
  for (const id of [running, queued]) {
    const record = fixture.deployments.get(id)!;
    assert.equal(record.status, "interrupted", id === running ? "running" : "queued");
    assert.equal(record.reason, "shiplog was stopped");
    assert.ok(record.finishedAt);
  }
  assert.equal(
    (await fixture.readLog(running)).split("\n").at(-2),
    "shiplog: interrupted: shiplog was stopped",
  );
  assert.equal(await fixture.readLog(queued), "shiplog: interrupted: shiplog was stopped\n");
  assert.equal(fixture.deployments.get(queued)!.startedAt, null);
  assert.equal(fixture.runner.runningCount, 0);
  if (isLinux) assert.deepEqual(processesInGroup(shell), []);
});

Deno.test("Runner without a command runs the simulated deployment: [n/m] steps, then succeeded", async () => {
  await using fixture = await startRunner({ simulationLineDelayMs: 1 });
  assert.equal(fixture.runner.command, null);
  const id = await fixture.start();
  const ended = await fixture.ended(id);
  assert.equal(ended.status, "succeeded");
  assert.equal(ended.exitCode, 0);
  assert.equal(ended.command, null);
  const steps = [...(await fixture.readLog(id)).matchAll(/\[(\d+)\/(\d+)\]/g)].map((m) => `${m[1]}/${m[2]}`);
  assert.ok(steps.length >= 3, `steps: ${steps}`);
  assert.deepEqual(steps, steps.map((_, i) => `${i + 1}/${steps.length}`));
});

Deno.test("Runner.cancel() of the simulated deployment records it cancelled at once", async () => {
  await using fixture = await startRunner({ simulationLineDelayMs: 1000 });
  const id = await fixture.start();
  await waitFor("it to run", () => fixture.status(id) === "running");
  await withDeadline("cancel", fixture.runner.cancel(id), 1000);
  assert.equal(fixture.status(id), "cancelled");
});

Deno.test("Runner.start() refuses past maxQueued, counting starts under way, and creates nothing then", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path);
  await using fixture = await startRunner({ command: gate.command, maxRunning: 1, maxQueued: 2 });
  const running = await fixture.start();
  await waitFor("the first to run", () => fixture.status(running) === "running");
  let created = 0;
  const create = () => {
    created++;
    return fixture.deployments.create(fixture.runner.command);
  };
  // Three at once for two places: the third is refused before the other two have been created.
  const starts = await Promise.all([1, 2, 3].map(() => fixture.runner.start(create)));
  assert.equal(starts.filter((each) => each !== undefined).length, 2);
  assert.equal(created, 2, "nothing created for the refused start");
  assert.equal(await fixture.runner.start(create), undefined);
  assert.equal(fixture.deployments.list().length, 3);

  // A cancel makes room.
  await fixture.runner.cancel(starts[0]!.id);
  const another = await fixture.runner.start(create);
  assert.equal(another?.status, "queued");
  await gate.open(running);
  await waitFor("the next to run", () => fixture.status(starts[1]!.id) === "running");
  assert.ok(await fixture.runner.start(create), "a start that ran makes room");
});

Deno.test("Runner.shutdown() interrupts a deployment whose creation was under way, and refuses new starts", async () => {
  await using fixture = await startRunner({ command: "sleep 30", maxRunning: 1 });
  const running = await fixture.start();
  await waitFor("the first to run", () => fixture.status(running) === "running");
  const creating = Promise.withResolvers<void>();
  const late = fixture.runner.start(async () => {
    await creating.promise;
    return await fixture.deployments.create(fixture.runner.command);
  });
  const stopped = fixture.runner.shutdown();
  assert.equal(fixture.runner.stopping, true);
  assert.equal(await fixture.runner.start(() => fixture.deployments.create(null)), undefined);
  creating.resolve();
  await withDeadline("shutdown", stopped);
  const made = await late;
  assert.ok(made);
  assert.equal(fixture.deployments.get(made.id)?.status, "interrupted");
  assert.equal(fixture.deployments.get(running)?.status, "interrupted");
  assert.equal(fixture.deployments.list().length, 2);
});

Deno.test("Runner runs one deployment at a time per target, a free target's not held up behind a busy one", async (t) => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path);
  await using fixture = await startRunner({
    command: gate.command,
    maxRunning: 3,
    targetNames: ["production", "staging"],
  });
  const prod1 = await fixture.start("production");
  const prod2 = await fixture.start("production");
  const staging = await fixture.start("staging");
  const prod3 = await fixture.start("production");

  await t.step("the first of each target runs, the others of production wait", async () => {
    await waitFor(
      "both to run",
      () => fixture.status(prod1) === "running" && fixture.status(staging) === "running",
    );
    await delay(100);
    assert.deepEqual([fixture.status(prod2), fixture.status(prod3)], ["queued", "queued"]);
    assert.equal(fixture.runner.runningCount, 2, "a slot stays free: nothing else may run");
  });
  await t.step("production's next, in order, once its first has ended", async () => {
    await gate.open(prod1);
    await waitFor("the second to run", () => fixture.status(prod2) === "running");
    assert.equal(fixture.status(prod3), "queued");
    await gate.open(prod2);
    await waitFor("the third to run", () => fixture.status(prod3) === "running");
  });
  for (const id of [staging, prod3]) await gate.open(id);
  for (const id of [staging, prod3]) await fixture.ended(id);
  const [r1, r2, r3] = [prod1, prod2, prod3].map((id) => fixture.deployments.get(id)!);
  assert.ok(r1.finishedAt! <= r2.startedAt! && r2.finishedAt! <= r3.startedAt!, "never two at once");
});

Deno.test("Runner with maxRunning 1 runs one deployment in all, whatever the targets", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path);
  await using fixture = await startRunner({
    command: gate.command,
    maxRunning: 1,
    targetNames: ["production", "staging"],
  });
  const production = await fixture.start("production");
  const staging = await fixture.start("staging");
  await waitFor("the first to run", () => fixture.status(production) === "running");
  await delay(100);
  assert.equal(fixture.status(staging), "queued", "capped by maxRunning, not by its target");
  await gate.open(production);
  await waitFor("the other to run", () => fixture.status(staging) === "running");
  await gate.open(staging);
  await fixture.ended(staging);
});

Deno.test("Runner.cancel() by a person records cancelledBy and writes who into the log, running or queued", async (t) => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path, "echo started");
  await using fixture = await startRunner({ command: gate.command, maxRunning: 1 });
  const running = await fixture.start();
  const queued = await fixture.start();
  await fixture.logMatch(running, /^(started)$/m);

  await t.step("a queued one: the notice alone", async () => {
    assert.equal(await withDeadline("cancel", fixture.runner.cancel(queued, { by: "bob" })), true);
    const record = fixture.deployments.get(queued)!;
    assert.deepEqual([record.status, record.cancelledBy], ["cancelled", "bob"]);
    assert.equal(await fixture.readLog(queued), "shiplog: cancelled by bob\n");
  });
  await t.step("a running one: its output, then the notice, then the end", async () => {
    assert.equal(await withDeadline("cancel", fixture.runner.cancel(running, { by: "alice" })), true);
    const record = fixture.deployments.get(running)!;
    assert.deepEqual([record.status, record.cancelledBy, record.reason], ["cancelled", "alice", null]);
    assert.equal(await fixture.readLog(running), "started\nshiplog: cancelled by alice\n");
  });
  await t.step("one cancelled by nobody named says so", async () => {
    const id = await fixture.start();
    await fixture.logMatch(id, /^(started)$/m);
    await withDeadline("cancel", fixture.runner.cancel(id));
    assert.equal(fixture.deployments.get(id)!.cancelledBy, null);
    assert.equal(await fixture.readLog(id), "started\nshiplog: cancelled\n");
  });
  await t.step("the first cancel is the one recorded", async () => {
    const id = await fixture.start();
    await fixture.logMatch(id, /^(started)$/m);
    await Promise.all([
      fixture.runner.cancel(id, { by: "carol" }),
      fixture.runner.cancel(id, { by: "dave" }),
    ]);
    assert.equal(fixture.deployments.get(id)!.cancelledBy, "carol");
    assert.equal(await fixture.readLog(id), "started\nshiplog: cancelled by carol\n");
  });
});

Deno.test("Runner reads stdout and stderr apart: stderr lines marked, each line with the time it was read", async () => {
  await using temp = await makeTempDir();
  const gate = gated(temp.path, "echo out 1; echo err 2 >&2", "echo out 3; printf 'err 4, unterminated' >&2");
  await using fixture = await startRunner({ command: gate.command });
  const id = await fixture.start();
  await fixture.logMatch(id, /(err 2)/);
  await fixture.logMatch(id, /(out 1)/);
  const opened = Date.now();
  await gate.open(id);
  assert.equal((await fixture.ended(id)).status, "succeeded");
  const lines: { text: string; time: number; stderr: boolean }[] = [];
  for await (const batch of fixture.store.readLines(id, 0, { times: true })) {
    batch.lines.forEach((text, i) =>
      lines.push({ text, time: batch.times![i], stderr: batch.stderr!.includes(batch.firstLine + i) })
    );
  }
  const of = (text: string) => lines.find((line) => line.text === text)!;
  assert.deepEqual(lines.map((line) => line.text).sort(), ["err 2", "err 4, unterminated", "out 1", "out 3"]);
  assert.deepEqual(lines.filter((line) => line.stderr).map((line) => line.text).sort(), [
    "err 2",
    "err 4, unterminated",
  ]);
  for (const text of ["out 1", "err 2"]) {
    assert.ok(of(text).time > 0 && of(text).time <= opened, `${text} before`);
  }
  for (const text of ["out 3", "err 4, unterminated"]) {
    assert.ok(of(text).time >= opened, `${text} after the gate`);
  }
});
