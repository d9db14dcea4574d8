/**
 * Tests of the runs of a cluster: several "instances" in this process (each its own RedisConnection,
 * RedisStore, RunCluster and Runner, with its own name) on one real redis-server, running real `sh` commands.
 * Leases and looks are short so that the bounds of the cluster (seen within 1 s, reaped within the lease and two
 * looks) are checked in seconds.
 */

import assert from "node:assert/strict";
import type { Deployment, Status } from "../logs/deployment.ts";
import type { DeploymentChange, DeploymentRemoval } from "./deployments.ts";
import { RedisConnection, type RedisConnectionOptions } from "../redis/redis_connection.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "../testing/redis_server.ts";
import { RedisStore } from "../logs/redis_store.ts";
import { RunCluster, type RunClusterOptions } from "./run_cluster.ts";
import { Runner, type RunnerOptions } from "./runner.ts";
import { Targets } from "./targets.ts";
import { startTcpProxy, type TcpProxy } from "../testing/tcp_proxy.ts";
import { delay, makeTempDir, processesInGroup, waitFor, waitForValue } from "../testing/test_helpers.ts";

const LEASE_MS = 1000;
const REAP_MS = 300;

interface InstanceOptions extends Partial<RunClusterOptions> {
  command?: string;
  /** The targets it runs, each with `command`. Default: the one target `default`. */
  targets?: string[];
  maxRunning?: number;
  maxQueued?: number;
  /** Where it reaches Redis (a proxy, say). Default: the server's URL. */
  url?: string;
  /** More options of its connection (its watchdog). */
  connection?: RedisConnectionOptions;
}

/** One shiplog instance's runs on `server`: shut down cleanly, or cut off as by kill -9, when disposed. */
async function startInstance(server: RedisServer, instance: string, options: InstanceOptions = {}) {
  const connection = await RedisConnection.connect(options.url ?? server.url, {
    commandTimeoutMs: 2000,
    ...options.connection,
  });
  const store = await RedisStore.open(connection);
  const cluster = await RunCluster.join(connection, store, {
    instance,
    graceMs: 200,
    leaseMs: LEASE_MS,
    renewMs: 300,
    reapMs: REAP_MS,
    pollMs: 100,
    ...options,
    commands: Object.fromEntries(
      (options.targets ?? ["default"]).map((name) => [name, options.command ?? null]),
    ),
  });
  const { deployments } = cluster;
  const runner = new Runner(
    deployments,
    store,
    {
      command: options.command,
      targets: options.targets && new Targets(options.targets.map((name) => ({
        name,
        description: null,
        command: options.command ?? null,
        cwd: null,
        params: new Map(),
      }))),
      maxRunning: options.maxRunning ?? 1,
      maxQueued: options.maxQueued,
      graceMs: 200,
      queue: cluster.queue,
    } satisfies RunnerOptions,
  );
  /** Every change heard, in order: id, status, instance. */
  const changes: Deployment[] = [];
  const removals: string[] = [];
  deployments.addEventListener("change", (event) => changes.push((event as DeploymentChange).detail));
  deployments.addEventListener("remove", (event) => removals.push((event as DeploymentRemoval).detail));
  let gone = false;
  return {
    instance,
    connection,
    deployments,
    runner,
    changes,
    removals,
    /** Creates a deployment (of `target`, default the one target) and queues it: its id. */
    async start(target?: string): Promise<string> {
      const deployment = await runner.start(() => deployments.create(runner.command, { target }));
      assert.ok(deployment, `started on ${instance}`);
      return deployment.id;
    },
    status: (id: string): Status | undefined => deployments.get(id)?.status,
    /** The lines of a deployment's log, as stored in Redis. */
    readLog: async (id: string): Promise<string[]> =>
      (await Array.fromAsync(store.readLines(id, 0))).flatMap((batch) => batch.lines),
    /** Stops as SIGTERM does. */
    async shutdown(): Promise<void> {
      if (gone) return;
      gone = true;
      deployments.stopPruning();
      await runner.shutdown();
      await deployments.saveUnsaved();
      await cluster.close();
      await store.close();
      await connection.close();
    },
    /** Cut off as by kill -9: nothing more reaches Redis; then its processes are stopped. */
    async kill(): Promise<void> {
      if (gone) return;
      gone = true;
      await connection.close();
      await cluster.close();
      await store.close();
      await runner.shutdown();
    },
    async [Symbol.asyncDispose]() {
      await this.shutdown();
    },
  };
}

type Instance = Awaited<ReturnType<typeof startInstance>>;

/** The statuses an instance heard for `id`, in order, each once. */
function statusesOf(instance: Instance, id: string): Status[] {
  const statuses: Status[] = [];
  for (const change of instance.changes) {
    if (change.id === id && statuses.at(-1) !== change.status) statuses.push(change.status);
  }
  return statuses;
}

/** A command that runs until the file `<dir>/gate-<id>` exists, printing its shell's pid first. */
function gated(dir: string) {
  return {
    command:
      `echo "shell=$$"; while [ ! -e "${dir}/gate-$SHIPLOG_DEPLOYMENT_ID" ]; do sleep 0.02; done; echo done`,
    open: (id: string) => Deno.writeTextFile(`${dir}/gate-${id}`, ""),
  };
}

Deno.test({
  name:
    "a deployment started on one instance is seen on another within 1 s, queued, running there, and ended",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using viewer = await startInstance(server, "web-1", { maxRunning: 0 });
    await using worker = await startInstance(server, "web-2", { command: "echo x; sleep 0.3" });
    const started = performance.now();
    const id = await viewer.start();
    await waitFor("the worker to know it", () => worker.deployments.get(id) !== undefined, {
      timeoutMs: 1000,
    });
    await waitFor("the viewer to see it running", () => viewer.status(id) === "running", { timeoutMs: 1000 });
    assert.ok(performance.now() - started < 1000, "running within 1 s");
    assert.equal(viewer.deployments.get(id)!.instance, "web-2", "the record names the instance running it");
    // Created where no command is set (the simulation), run where one is: the record says what ran, its fields
    // in their documented order although a Lua script wrote it.
    assert.equal(viewer.deployments.get(id)!.command, "echo x; sleep 0.3");
    assert.deepEqual(Object.keys(viewer.deployments.get(id)!), [
      "id",
      "status",
      "target",
      "params",
      "command",
      "createdAt",
      "startedAt",
      "finishedAt",
      "exitCode",
      "reason",
      "startedBy",
      "cancelledBy",
      "rerunOf",
      "instance",
    ]);
    await waitFor("the viewer to see it end", () => viewer.status(id) === "succeeded", { timeoutMs: 3000 });
    assert.deepEqual(statusesOf(viewer, id), ["queued", "running", "succeeded"]);
    assert.deepEqual(statusesOf(worker, id), ["queued", "running", "succeeded"]);
    assert.equal(viewer.changes.filter((change) => change.id === id).length, 3, "one change event each");
    assert.deepEqual(viewer.deployments.get(id), worker.deployments.get(id));
    assert.equal(viewer.runner.runningCount, 0, "maxRunning 0 never runs one");
  },
});

Deno.test({
  name: "the cluster's queue is first in first out, and no deployment runs on two instances",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using observer = await startInstance(server, "observer", { maxRunning: 0 });
    await using a = await startInstance(server, "a", { command: "sleep 0.1" });
    await using b = await startInstance(server, "b", { command: "sleep 0.1" });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await (i % 2 === 0 ? a : b).start());
    await waitFor(
      "all ten to end",
      () => ids.every((id) => observer.status(id) === "succeeded"),
      { timeoutMs: 15_000 },
    );
    const runs = observer.changes.filter((change) => change.status === "running");
    assert.deepEqual(runs.map((run) => run.id), ids, "started in the order they were queued, each once");
    for (const id of ids) {
      const ranOn = [a, b].filter((instance) =>
        instance.changes.some((change) => change.id === id && change.status === "running") &&
        instance.deployments.get(id)!.instance === instance.instance
      );
      assert.equal(ranOn.length, 1, `${id} ran on one instance`);
    }
    const instances = new Set(runs.map((run) => run.instance));
    assert.deepEqual([...instances].sort(), ["a", "b"], "both took some");
    assert.equal(await server.cli("LLEN", "shiplog:queue"), "0");
    await waitFor(
      "the leases to be let go",
      async () => await server.cli("ZCARD", "shiplog:running") === "0",
    );
  },
});

Deno.test({
  name:
    "one deployment at a time per target across the cluster: a free target's runs at once, a busy one's wait in order",
  ...REDIS_TEST,
  fn: async (t) => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    const targets = ["production", "staging"];
    await using front = await startInstance(server, "front", { maxRunning: 0 });
    // Slots to spare on both: only the targets hold deployments back.
    await using a = await startInstance(server, "a", { command: gate.command, targets, maxRunning: 2 });
    await using b = await startInstance(server, "b", { command: gate.command, targets, maxRunning: 2 });
    const prod1 = await a.start("production");
    const prod2 = await b.start("production");
    const staging = await front.start("staging");
    const prod3 = await front.start("production");

    await t.step("the first of each target runs, production's others wait with slots free", async () => {
      await waitFor(
        "production's first and staging to run",
        () => front.status(prod1) === "running" && front.status(staging) === "running",
      );
      await delay(500);
      assert.deepEqual([front.status(prod2), front.status(prod3)], ["queued", "queued"]);
      assert.equal(a.runner.runningCount + b.runner.runningCount, 2);
      assert.equal(front.deployments.get(prod1)!.command, gate.command, "the command of its target");
    });
    await t.step("production's next, in order, once the one before has ended", async () => {
      await gate.open(prod1);
      await waitFor("the second to run", () => front.status(prod2) === "running", { timeoutMs: 2000 });
      await delay(300);
      assert.equal(front.status(prod3), "queued");
      await gate.open(prod2);
      await waitFor("the third to run", () => front.status(prod3) === "running", { timeoutMs: 2000 });
    });
    for (const id of [staging, prod3]) await gate.open(id);
    await waitFor("all to end", () => [staging, prod3].every((id) => front.status(id) === "succeeded"));
    const [r1, r2, r3] = [prod1, prod2, prod3].map((id) => front.deployments.get(id)!);
    assert.ok(r1.finishedAt! <= r2.startedAt! && r2.finishedAt! <= r3.startedAt!, "never two at once");
  },
});

Deno.test({
  name: "a deployment queued anywhere starts within 1 s of a slot freeing on another instance",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using front = await startInstance(server, "front", { maxRunning: 0 });
    // Three targets: what waits, waits for a slot, not for its target.
    const targets = ["one", "two", "three"];
    await using a = await startInstance(server, "a", { command: gate.command, targets });
    await using b = await startInstance(server, "b", { command: gate.command, targets });
    const first = await front.start("one");
    const second = await front.start("two");
    await waitFor(
      "two to run",
      () => front.status(first) === "running" && front.status(second) === "running",
    );
    const waiting = await front.start("three");
    await delay(300);
    assert.equal(front.status(waiting), "queued", "no slot is free");
    const freed = front.deployments.get(second)!.instance;
    await gate.open(second);
    await waitFor("the slot to free", () => front.status(second) === "succeeded");
    const freedAt = performance.now();
    await waitFor("the waiting one to run", () => front.status(waiting) === "running", { timeoutMs: 1000 });
    assert.ok(performance.now() - freedAt < 1000);
    assert.equal(front.deployments.get(waiting)!.instance, freed, "on the instance whose slot freed");
    await gate.open(first);
    await gate.open(waiting);
    await waitFor(
      "both to end",
      () => front.status(first) === "succeeded" && front.status(waiting) === "succeeded",
    );
    assert.equal(a.runner.runningCount + b.runner.runningCount, 0);
  },
});

Deno.test({
  name:
    "cancel on another instance: a queued deployment ends cancelled unrun, a running one is stopped there",
  ...REDIS_TEST,
  fn: async (t) => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using front = await startInstance(server, "front", { maxRunning: 0 });
    await using worker = await startInstance(server, "worker", { command: gate.command });
    const running = await front.start();
    const queued = await front.start();
    await waitFor("the first to run on the worker", () => front.status(running) === "running");

    await t.step("the queued one", async () => {
      assert.equal(await front.runner.cancel(queued, { by: "bob" }), true);
      assert.equal(front.status(queued), "cancelled");
      assert.equal(front.deployments.get(queued)!.cancelledBy, "bob");
      assert.deepEqual(await front.readLog(queued), ["shiplog: cancelled by bob"], "the notice alone");
      assert.equal(front.deployments.get(queued)!.startedAt, null);
      await waitFor("the worker to hear it", () => worker.status(queued) === "cancelled", {
        timeoutMs: 1000,
      });
      assert.equal(await server.cli("LLEN", "shiplog:queue"), "0", "out of the queue");
    });

    await t.step("the running one", async () => {
      const log = await waitForValue("its shell's pid", async () => {
        const text = await server.cli("XRANGE", `shiplog:log:${running}`, "-", "+");
        return text.match(/shell=(\d+)/)?.[1];
      });
      const shell = Number(log);
      const began = performance.now();
      assert.equal(await front.runner.cancel(running, { by: "alice" }), true);
      assert.ok(performance.now() - began < 3000, "answered once it ended");
      assert.equal(front.status(running), "cancelled", "ended when the cancel answers");
      assert.equal(
        front.deployments.get(running)!.cancelledBy,
        "alice",
        "recorded by the instance running it",
      );
      assert.equal((await front.readLog(running)).at(-1), "shiplog: cancelled by alice");
      await waitFor("the worker's record", () => worker.status(running) === "cancelled", { timeoutMs: 1000 });
      await waitFor("the worker's run to be over", () => worker.runner.runningCount === 0, {
        timeoutMs: 1000,
      });
      if (Deno.build.os === "linux") assert.deepEqual(processesInGroup(shell), [], "its processes are gone");
    });

    await t.step("an ended one is not cancelled again", async () => {
      assert.equal(await front.runner.cancel(running), false);
      assert.equal(await front.runner.cancel(crypto.randomUUID()), false);
    });
  },
});

Deno.test({
  name:
    "an instance cut off as by kill -9 has its running deployment recorded interrupted by another, naming it",
  ...REDIS_TEST,
  fn: async (t) => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using survivor = await startInstance(server, "web-1", { maxRunning: 0 });
    const doomed = await startInstance(server, "web-2", { command: gate.command });
    let id = "";
    try {
      id = await survivor.start();
      await waitFor("it to run on web-2", () => survivor.status(id) === "running");
      const startedAt = survivor.deployments.get(id)!.startedAt!;

      await t.step("interrupted within the lease and two looks", async () => {
        const cutOff = Date.now();
        await doomed.kill();
        await waitFor("it to be reaped", () => survivor.status(id) === "interrupted", {
          timeoutMs: LEASE_MS + 3 * REAP_MS + 2000,
        });
        const record = survivor.deployments.get(id)!;
        assert.equal(record.reason, "instance web-2 stopped answering (its lease expired)");
        assert.equal(
          (await survivor.readLog(id)).at(-1),
          "shiplog: interrupted: instance web-2 stopped answering (its lease expired)",
          "the reaper's notice, in the log",
        );
        assert.equal(record.instance, "web-2");
        assert.ok(record.finishedAt! >= startedAt, "finished after it started");
        assert.ok(
          Date.parse(record.finishedAt!) <= cutOff + 100,
          "at its last sign of life, not when reaped",
        );
        assert.ok(Date.parse(record.finishedAt!) >= cutOff - 1000, "its last sign of life was recent");
        assert.equal(await server.cli("ZCARD", "shiplog:running"), "0");
      });

      await t.step("an instance of the same name started again does not bring it back", async () => {
        await using again = await startInstance(server, "web-2", { command: gate.command });
        assert.equal(again.status(id), "interrupted");
        await delay(LEASE_MS);
        assert.equal(survivor.status(id), "interrupted");
        assert.equal(again.runner.runningCount, 0);
      });
    } finally {
      await doomed.kill();
    }
  },
});

Deno.test({
  name: "an instance started again under its name records interrupted what its earlier process left running",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    // Leases long enough that no reaper acts first.
    await using other = await startInstance(server, "web-1", { maxRunning: 0, leaseMs: 60_000 });
    const before = await startInstance(server, "web-2", { command: gate.command, leaseMs: 60_000 });
    const id = await other.start();
    await waitFor("it to run on web-2", () => other.status(id) === "running");
    await before.kill();
    await using after = await startInstance(server, "web-2", { command: gate.command, leaseMs: 60_000 });
    assert.equal(after.status(id), "interrupted");
    assert.match(after.deployments.get(id)!.reason!, /shiplog stopped while this deployment was running/);
    assert.equal(
      (await after.readLog(id)).at(-1),
      "shiplog: interrupted: shiplog stopped while this deployment was running",
    );
    await waitFor("the other to hear it", () => other.status(id) === "interrupted", { timeoutMs: 1000 });
  },
});

Deno.test({
  name: "shutdown of one instance interrupts what it runs and leaves the queue to the others",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    const targets = ["one", "two", "three"];
    await using stays = await startInstance(server, "stays", { command: gate.command, targets });
    const leaves = await startInstance(server, "leaves", { command: gate.command, targets });
    try {
      const first = await stays.start("one");
      await waitFor("the first to run", () => stays.status(first) !== "queued");
      const second = await stays.start("two");
      await waitFor(
        "both to run",
        () => stays.status(first) === "running" && stays.status(second) === "running",
      );
      const onLeaving = stays.deployments.get(first)!.instance === "leaves" ? first : second;
      const onStaying = onLeaving === first ? second : first;
      const waiting = await stays.start("three");

      await leaves.shutdown();
      assert.equal(stays.status(waiting), "queued", "the queue is not interrupted");
      await waitFor("the stopped one's end", () => stays.status(onLeaving) === "interrupted", {
        timeoutMs: 1000,
      });
      assert.equal(stays.deployments.get(onLeaving)!.reason, "shiplog was stopped");
      assert.equal((await stays.readLog(onLeaving)).at(-1), "shiplog: interrupted: shiplog was stopped");

      await gate.open(onStaying);
      await waitFor(
        "the waiting one to run on the instance left",
        () => stays.status(waiting) === "running",
        {
          timeoutMs: 2000,
        },
      );
      assert.equal(stays.deployments.get(waiting)!.instance, "stays");
      await gate.open(waiting);
      await waitFor("it to end", () => stays.status(waiting) === "succeeded", { timeoutMs: 2000 });
    } finally {
      await leaves.shutdown();
    }
  },
});

Deno.test({
  name: "--keep holds for the cluster: one instance deletes each deployment beyond it, leaving no key behind",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    const listener = await RedisConnection.connect(server.url);
    const removed: string[] = [];
    await listener.subscribe("shiplog:changes", (message) => {
      const id = JSON.parse(message).remove;
      if (typeof id === "string") removed.push(id);
    });
    await using _ = { [Symbol.asyncDispose]: () => listener.close() };
    await using a = await startInstance(server, "a", { command: "echo x", keep: 2 });
    await using b = await startInstance(server, "b", { command: "echo x", keep: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = await (i % 2 === 0 ? a : b).start();
      await waitFor(
        `deployment ${i} to end`,
        () => a.status(id) === "succeeded" && b.status(id) === "succeeded",
      );
      ids.push(id);
    }
    await waitFor(
      "four deleted",
      () => a.deployments.list().length === 2 && b.deployments.list().length === 2,
      {
        timeoutMs: 3000,
      },
    );
    for (const instance of [a, b]) {
      assert.deepEqual(instance.deployments.list().map(({ id }) => id), ids.slice(4).reverse());
      assert.deepEqual([...instance.removals].sort(), ids.slice(0, 4).sort(), "each removal heard once");
    }
    await delay(3 * REAP_MS); // the looks, which prune too
    assert.deepEqual([...removed].sort(), ids.slice(0, 4).sort(), "each deleted once, by one instance");
    assert.equal(await server.cli("ZCARD", "shiplog:deployments"), "2");
    const keys = (await server.cli("KEYS", "*")).split("\n");
    for (const id of ids.slice(0, 4)) {
      assert.deepEqual(keys.filter((key) => key.includes(id)), [], `nothing left of ${id}`);
    }
  },
});

Deno.test({
  name:
    "leases that lapsed while Redis was away do not interrupt what still runs; records are written when it is back",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using watcher = await startInstance(server, "watcher", { maxRunning: 0 });
    await using worker = await startInstance(server, "worker", {
      command: gate.command,
      maxRunning: 2,
      targets: ["one", "two"],
    });
    const longer = await watcher.start("one");
    const shorter = await watcher.start("two");
    await waitFor(
      "both to run",
      () => watcher.status(longer) === "running" && watcher.status(shorter) === "running",
    );

    await server.stop();
    await waitFor("the worker to see Redis away", () => worker.connection.problem !== undefined);
    // Longer than a lease: every lease has lapsed when Redis comes back.
    await gate.open(shorter);
    await waitFor("the shorter one to end while Redis is away", () => worker.status(shorter) === "succeeded");
    await delay(LEASE_MS * 1.5);
    await server.start();

    await waitFor("the ended one's record", () => watcher.status(shorter) === "succeeded", {
      timeoutMs: 5000,
    });
    // Long enough for the reapers to look several times.
    await delay(LEASE_MS + 4 * REAP_MS);
    assert.equal(watcher.status(longer), "running", "not interrupted");
    assert.equal(worker.runner.runningCount, 1);
    await gate.open(longer);
    await waitFor("it to end as it would have", () => watcher.status(longer) === "succeeded", {
      timeoutMs: 3000,
    });
  },
});

Deno.test({
  name: "--max-queued counts the cluster's queue: a start on another instance is refused once it is full",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using a = await startInstance(server, "a", { maxRunning: 0, maxQueued: 2 });
    await using b = await startInstance(server, "b", { maxRunning: 0, maxQueued: 2 });
    await a.start();
    await a.start();
    await waitFor("b to know both", () => b.deployments.countByStatus().get("queued") === 2, {
      timeoutMs: 1000,
    });
    assert.equal(await b.runner.start(() => b.deployments.create(null)), undefined, "refused on b");
    assert.equal(await server.cli("LLEN", "shiplog:queue"), "2");
  },
});

Deno.test({
  name: "Redis restarted without its data: what an instance runs is written again, and its end recorded",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using watcher = await startInstance(server, "watcher", { maxRunning: 0 });
    await using worker = await startInstance(server, "worker", { command: gate.command });
    const id = await watcher.start();
    const ended = await watcher.start();
    await waitFor("the first to run", () => watcher.status(id) === "running");
    await server.cli("SET", "shiplog:marker", "before");

    await server.start({ wipe: true });
    await waitFor(
      "the record written again",
      async () => /"running"/.test(await server.cli("GET", `shiplog:deployment:${id}`)),
      {
        timeoutMs: 5000,
      },
    );
    assert.equal(await server.cli("GET", "shiplog:marker"), "", "the data was lost");
    await waitFor(
      "its lease taken again",
      async () => (await server.cli("GET", `shiplog:lease:${id}`)).startsWith("worker "),
      {
        timeoutMs: 3000,
      },
    );
    await waitFor(
      "the queued one, lost with the data, to be forgotten",
      () => watcher.status(ended) === undefined,
      {
        timeoutMs: 3000,
      },
    );
    await delay(LEASE_MS + 3 * REAP_MS);
    assert.equal(watcher.status(id), "running", "not reaped");
    assert.equal(worker.runner.runningCount, 1, "it ran on");
    await gate.open(id);
    await waitFor("its end on every instance", () => watcher.status(id) === "succeeded", { timeoutMs: 3000 });
  },
});

Deno.test({
  name:
    "a deployment recorded ended by another instance while it runs here is stopped, and the stored end stays",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    const gate = gated(temp.path);
    await using other = await startInstance(server, "other", { maxRunning: 0 });
    await using owner = await startInstance(server, "owner", { command: gate.command });
    const id = await other.start();
    await waitFor("it to run on the owner", () => owner.status(id) === "running");
    const shell = Number(
      await waitForValue("its shell's pid", async () => {
        const text = await server.cli("XRANGE", `shiplog:log:${id}`, "-", "+");
        return text.match(/shell=(\d+)/)?.[1];
      }),
    );
    // What a reaper that found its lease lapsed would write (the owner cut off from Redis, say).
    const ended: Deployment = {
      ...other.deployments.get(id)!,
      status: "interrupted",
      finishedAt: new Date().toISOString(),
      reason: "instance owner stopped answering (its lease expired)",
    };
    await other.deployments.update(id, ended);
    await waitFor("the owner to stop it", () => owner.runner.runningCount === 0, { timeoutMs: 2000 });
    assert.deepEqual(owner.deployments.get(id), other.deployments.get(id));
    assert.equal(owner.deployments.get(id)!.reason, "instance owner stopped answering (its lease expired)");
    assert.match(await server.cli("GET", `shiplog:deployment:${id}`), /stopped answering/);
    if (Deno.build.os === "linux") assert.deepEqual(processesInGroup(shell), [], "its processes are gone");
  },
});

/**
 * An instance running `command` whose connections go through `proxy` (so that its pub/sub connection can be made
 * a black hole) and with no watchdog to speak of: only its own looks at Redis can tell it what it missed.
 */
function deafOwner(server: RedisServer, proxy: TcpProxy, command: string): Promise<Instance> {
  return startInstance(server, "owner", {
    command,
    url: `redis://127.0.0.1:${proxy.port}`,
    connection: { pingIntervalMs: 3_600_000 },
  });
}

/** Makes a black hole of the pub/sub connection that goes through `proxy`: it hears nothing, and is not told. */
async function loseSubscriber(server: RedisServer, proxy: TcpProxy): Promise<void> {
  const ports = (await server.cli("CLIENT", "LIST")).split("\n").filter((line) =>
    / cmd=subscribe /.test(line)
  )
    .map((line) => Number(/ addr=127\.0\.0\.1:(\d+) /.exec(line)?.[1]));
  assert.ok(ports.some((port) => proxy.blackHole(port)), "the proxy has a pub/sub connection");
}

Deno.test({
  name:
    "a pub/sub connection lost alone: once it is back, the records are listed again; a cancel heard by no one is seen",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using proxy = startTcpProxy(server.port);
    await using other = await startInstance(server, "other", { maxRunning: 0 });
    await using viewer = await startInstance(server, "viewer", {
      maxRunning: 0,
      url: `redis://127.0.0.1:${proxy.port}`,
      connection: { pingIntervalMs: 100, pingTimeoutMs: 100 },
    });
    const id = await other.start();
    await waitFor("the viewer to see it queued", () => viewer.status(id) === "queued");
    let resubscribed = false;
    viewer.connection.addEventListener("resubscribed", () => resubscribed = true);
    await loseSubscriber(server, proxy);
    assert.equal(await other.runner.cancel(id), true);
    assert.equal(other.status(id), "cancelled");
    // The watchdog finds the pub/sub connection silent and makes it again; then the records are listed.
    await waitFor("the viewer to see it cancelled", () => viewer.status(id) === "cancelled", {
      timeoutMs: 3000,
    });
    assert.ok(resubscribed, "the pub/sub connection was made again");
    assert.equal(viewer.connection.problem, undefined, "Redis was up throughout");
  },
});

Deno.test({
  name:
    "a deployment ended in Redis while its owner heard nothing (pub/sub lost) is stopped at the owner's next look",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    await using proxy = startTcpProxy(server.port);
    await using other = await startInstance(server, "other", { maxRunning: 0 });
    await using owner = await deafOwner(server, proxy, gated(temp.path).command);
    const id = await other.start();
    await waitFor("it to run on the owner", () => owner.status(id) === "running");
    await loseSubscriber(server, proxy);
    const ended: Deployment = {
      ...other.deployments.get(id)!,
      status: "interrupted",
      finishedAt: new Date().toISOString(),
      reason: "instance owner stopped answering (its lease expired)",
    };
    await other.deployments.update(id, ended);
    await waitFor("the owner to stop it", () => owner.runner.runningCount === 0, { timeoutMs: 2000 });
    assert.equal(owner.deployments.get(id)!.status, "interrupted");
    assert.match(await server.cli("GET", `shiplog:deployment:${id}`), /stopped answering/);
  },
});

Deno.test({
  name:
    "a cancel of a running deployment whose owner lost its pub/sub connection is found at its next renewal",
  ...REDIS_TEST,
  fn: async () => {
    await using server = await startRedisServer();
    await using temp = await makeTempDir();
    await using proxy = startTcpProxy(server.port);
    await using other = await startInstance(server, "other", { maxRunning: 0 });
    await using owner = await deafOwner(server, proxy, gated(temp.path).command);
    const id = await other.start();
    await waitFor("it to run on the owner", () => owner.status(id) === "running");
    await loseSubscriber(server, proxy);
    await other.runner.cancel(id, { by: "alice" });
    await waitFor("the owner to stop it", () => owner.runner.runningCount === 0, { timeoutMs: 3000 });
    await waitFor("it cancelled everywhere", () => other.status(id) === "cancelled", { timeoutMs: 3000 });
    assert.equal(owner.deployments.get(id)!.status, "cancelled");
    assert.equal(other.deployments.get(id)!.cancelledBy, "alice", "who, from the mark the renewal found");
    assert.equal((await other.readLog(id)).at(-1), "shiplog: cancelled by alice");
  },
});
