/**
 * End to end, with real processes: several shiplog programs on one real redis-server, behind a real nginx
 * running `deploy/nginx.conf`. What a user of a cluster sees when an instance dies, when Redis goes away, and
 * when deployments wait for a free slot somewhere.
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import { EventSource } from "npm:eventsource@5.1.5";
import type { Deployment } from "./logs/deployment.ts";
import { NGINX_TEST, startNginx } from "./testing/nginx_server.ts";
import { findOrphanGroups } from "./runs/orphans.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "./testing/redis_server.ts";
import { getDeployment, metric } from "./testing/test_app.ts";
import { makeTempDir, waitFor, waitForValue, withDeadline } from "./testing/test_helpers.ts";
import { type Program, spawnShiplog, terminate, waitForStatus } from "./testing/test_program.ts";

const CLUSTER_TEST = { ignore: REDIS_TEST.ignore || NGINX_TEST.ignore };

/** A line every 20 ms, `count` of them. */
function printLines(count: number): string {
  return `i=1; while [ $i -le ${count} ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done`;
}

interface Cluster extends AsyncDisposable {
  redis: RedisServer;
  instances: Map<string, Program>;
  /** Starts (again) the instance `name`. */
  spawn(name: string): Promise<Program>;
  /** The flags of the instance `name`, but for its port and directory. */
  argsOf(name: string): string[];
}

/** A redis-server and one shiplog per name on it, each `--max-running 1`, running `command`. */
async function startCluster(names: string[], command: string): Promise<Cluster> {
  const redis = await startRedisServer();
  const dir = await makeTempDir();
  const instances = new Map<string, Program>();
  // Every program started, killed ones among them: each is disposed of at the end.
  const all: Program[] = [];
  const prefix = `test${crypto.randomUUID().slice(0, 8)}`;
  const argsOf = (name: string) => [
    "--redis",
    redis.url,
    "--redis-prefix",
    prefix,
    "--instance",
    name,
    "--max-running",
    "1",
    "--command",
    command,
  ];
  const spawn = async (name: string) => {
    const program = await spawnShiplog(`${dir.path}/${name}`, argsOf(name));
    instances.set(name, program);
    all.push(program);
    return program;
  };
  try {
    for (const name of names) await spawn(name);
  } catch (error) {
    for (const program of all) await program[Symbol.asyncDispose]();
    await redis[Symbol.asyncDispose]();
    await dir[Symbol.asyncDispose]();
    throw error;
  }
  return {
    redis,
    instances,
    spawn,
    argsOf,
    async [Symbol.asyncDispose]() {
      // SIGTERM first: a SIGKILL would leave the commands of what still runs behind, running on.
      for (const program of instances.values()) await terminate(program).catch(() => {});
      for (const program of all) await program[Symbol.asyncDispose]();
      await redis[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

async function startThrough(url: string): Promise<Deployment> {
  const response = await fetch(new URL("start", url), {
    method: "POST",
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 201, await response.clone().text());
  return await response.json();
}

async function listOf(program: Program): Promise<Deployment[]> {
  const response = await fetch(new URL("api/deployments", program.url), {
    signal: AbortSignal.timeout(10_000),
  });
  return await response.json();
}

function kill9(program: Program): Promise<Deno.CommandStatus> {
  program.process.kill("SIGKILL");
  return program.process.status;
}

Deno.test({
  name:
    "three instances behind nginx: seen everywhere, a viewer resumes on another after kill -9, cancel anywhere",
  ...CLUSTER_TEST,
  fn: async (t) => {
    await using cluster = await startCluster(["a", "b", "c"], printLines(150));
    const programs = () => [...cluster.instances.values()];
    await using nginx = await startNginx(programs().map((program) => new URL(program.url).host));

    let deployment: Deployment | undefined;
    await t.step("a deployment started through nginx is listed by every instance within 1 s", async () => {
      deployment = await startThrough(nginx.url);
      await Promise.all(
        programs().map((program) =>
          waitFor(
            `the deployment on ${program.url}`,
            async () => (await listOf(program)).some(({ id }) => id === deployment!.id),
            { timeoutMs: 1000, intervalMs: 20 },
          )
        ),
      );
    });
    const id = deployment!.id;
    const runner = (await waitForStatus(programs()[0], id, "running")).instance!;
    assert.ok(cluster.instances.has(runner), `runs on one of them, not ${runner}`);

    await t.step(
      "kill -9 of the instance a viewer is on: it resumes on another, no gap, no duplicate",
      async () => {
        const lines: number[] = [];
        const done = Promise.withResolvers<void>();
        let source: EventSource | undefined;
        let viewerOn: string | undefined;
        try {
          // nginx sends each new connection to the next instance: one that does not run the deployment is found
          // within three tries.
          for (let attempt = 0; attempt < 6 && viewerOn === undefined; attempt++) {
            source?.close();
            lines.length = 0;
            source = new EventSource(`${nginx.url}events/${id}`);
            source.addEventListener("message", (event) => lines.push(Number(event.lastEventId)));
            source.addEventListener("done", () => done.resolve());
            await waitFor("the first lines", () => lines.length >= 3, { timeoutMs: 10_000 });
            for (const [name, program] of cluster.instances) {
              if (name !== runner && await metric(program, "shiplog_log_viewers") === 1) viewerOn = name;
            }
          }
          assert.ok(viewerOn, "a viewer on an instance that does not run the deployment");
          const before = lines.length;
          await kill9(cluster.instances.get(viewerOn)!);
          cluster.instances.delete(viewerOn);
          await waitFor("lines after the kill", () => lines.length > before + 10, { timeoutMs: 10_000 });
          await withDeadline("the end of the stream", done.promise, 15_000);
          assert.deepEqual(lines, Array.from({ length: 150 }, (_, index) => index + 1));
        } finally {
          source?.close();
        }
      },
    );

    await t.step("a running deployment cancelled through another instance ends cancelled", async () => {
      const next = await startThrough(nginx.url);
      const running = await waitForStatus(programs()[0], next.id, "running");
      const other = [...cluster.instances].find(([name]) => name !== running.instance)![1];
      const response = await fetch(new URL(`api/deployments/${next.id}/cancel`, other.url), {
        method: "POST",
        signal: AbortSignal.timeout(15_000),
      });
      assert.equal(response.status, 200);
      assert.equal((await response.json()).status, "cancelled");
      for (const program of programs()) {
        assert.equal((await waitForStatus(program, next.id, "cancelled", 2000)).instance, running.instance);
      }
    });

    await t.step("SIGTERM of one instance: exit 0 in 5 s; the others keep serving", async () => {
      const [name, program] = [...cluster.instances][0];
      const { code, elapsedMs } = await terminate(program);
      cluster.instances.delete(name);
      assert.equal(code, 0, program.stderr());
      assert.ok(elapsedMs < 5000);
      const health = await fetch(`${nginx.url}healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 200);
      await health.body?.cancel();
      assert.equal((await getDeployment({ url: nginx.url }, id)).status, "succeeded");
    });
  },
});

Deno.test({
  name: "kill -9 of the instance running a deployment: a survivor records it interrupted, naming it, in 30 s",
  ...CLUSTER_TEST,
  fn: async () => {
    await using cluster = await startCluster(["a", "b"], "echo started; sleep 60");
    const [a, b] = [cluster.instances.get("a")!, cluster.instances.get("b")!];
    const { id } = await startThrough(a.url);
    const running = await waitForStatus(a, id, "running");
    const [lost, survivor] = running.instance === "a" ? ["a", b] : ["b", a];
    // Recorded running when claimed, a moment before its command starts: killed in between, nothing would be
    // left running, and the restart would have nothing to stop.
    await waitFor("the command to have started", async () => {
      const response = await fetch(new URL(`deployments/${id}/log`, a.url));
      return await response.text() === "started\n";
    }, { timeoutMs: 10_000 });
    const killedAt = performance.now();
    await kill9(cluster.instances.get(lost)!);
    const record = await waitForStatus(survivor, id, "interrupted", 30_000);
    assert.ok(performance.now() - killedAt < 30_000);
    assert.match(record.reason ?? "", new RegExp(`instance ${lost}\\b`));
    assert.equal(record.instance, lost);
    await assertSecondOfANameRefused(cluster, survivor, lost === "a" ? "b" : "a");
    await assertRestartLeavesItInterrupted(cluster, lost, id);
  },
});

/**
 * A second shiplog given the name of a live instance waits for it to stop answering, then exits 1: it leaves
 * what the live one runs alone (it used to record it interrupted, as its own earlier process's).
 */
async function assertSecondOfANameRefused(cluster: Cluster, live: Program, name: string): Promise<void> {
  const { id } = await startThrough(live.url);
  await waitForStatus(live, id, "running");
  await using dir = await makeTempDir();
  const second = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--port", "0", "--dir", dir.path, ...cluster.argsOf(name)],
    cwd: new URL("..", import.meta.url),
    stdout: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(second.stderr);
  assert.equal(second.code, 1, stderr);
  assert.equal(
    stderr,
    `shiplog: waiting for the earlier shiplog of instance "${name}" to stop answering\n` +
      `shiplog: Cannot join the cluster as instance "${name}": another shiplog of that name is running; ` +
      "give each instance its own --instance\n",
  );
  assert.equal((await getDeployment(live, id)).status, "running");
  const cancelled = await fetch(new URL(`api/deployments/${id}/cancel`, live.url), { method: "POST" });
  assert.equal((await cancelled.json()).status, "cancelled");
}

/** The lost instance started again under its name: the deployment stays interrupted, and it serves again. */
async function assertRestartLeavesItInterrupted(cluster: Cluster, name: string, id: string): Promise<void> {
  assert.notDeepEqual(await findOrphanGroups([id]), [], "the killed instance's command runs on");
  const again = await cluster.spawn(name);
  assert.deepEqual(await findOrphanGroups([id]), [], "the restart stopped it");
  assert.equal((await getDeployment(again, id)).status, "interrupted");
  const next = await startThrough(again.url);
  assert.equal((await waitForStatus(again, next.id, "running")).status, "running");
}

Deno.test({
  name:
    "one queue for the cluster: its one target's deployments run one at a time, first in first out, each once",
  ...CLUSTER_TEST,
  fn: async () => {
    await using cluster = await startCluster(["a", "b"], "sleep 0.4; echo done");
    const [a, b] = [cluster.instances.get("a")!, cluster.instances.get("b")!];
    const ids: string[] = [];
    // Started through both instances in turn.
    for (let index = 0; index < 6; index++) ids.push((await startThrough(index % 2 ? b.url : a.url)).id);
    const finished = await waitForValue("every deployment to succeed", async () => {
      const records = (await listOf(a)).filter(({ id }) => ids.includes(id));
      return records.length === ids.length && records.every(({ status }) => status === "succeeded")
        ? records
        : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    const byStart = [...finished].sort((x, y) => Date.parse(x.startedAt!) - Date.parse(y.startedAt!));
    assert.deepEqual(byStart.map(({ id }) => id), ids, "started in the order they were queued");
    // All of the one target: never two at once in the cluster, whichever instance took each.
    for (const record of finished) {
      const overlapping = finished.filter((other) =>
        other !== record &&
        Date.parse(other.startedAt!) < Date.parse(record.finishedAt!) &&
        Date.parse(record.startedAt!) < Date.parse(other.finishedAt!)
      );
      assert.deepEqual(overlapping, [], `${record.id} overlaps another`);
    }
    // Each one's output once: it ran once.
    for (const id of ids) {
      const log = await (await fetch(new URL(`deployments/${id}/log`, b.url))).text();
      assert.equal(log, "done\n");
    }
  },
});

Deno.test({
  name: "Redis stopped while a deployment writes: instances stay up, /healthz 503, no line lost, all resumes",
  ...CLUSTER_TEST,
  fn: async () => {
    await using cluster = await startCluster(["a", "b"], printLines(200));
    const [a, b] = [cluster.instances.get("a")!, cluster.instances.get("b")!];
    const { id } = await startThrough(a.url);
    await waitForStatus(a, id, "running");
    await cluster.redis.stop();
    for (const program of [a, b]) {
      await waitFor("a 503 from /healthz", async () => {
        const response = await fetch(new URL("healthz", program.url));
        await response.body?.cancel();
        return response.status === 503;
      }, { timeoutMs: 5000 });
    }
    const refused = await fetch(new URL("start", b.url), {
      method: "POST",
      headers: { accept: "application/json" },
    });
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /Cannot start a deployment now: the store cannot be reached/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await cluster.redis.start();
    const record = await waitForStatus(b, id, "succeeded", 20_000);
    assert.equal(record.exitCode, 0);
    const log = await (await fetch(new URL(`deployments/${id}/log`, b.url))).text();
    assert.equal(log, Array.from({ length: 200 }, (_, index) => `line ${index + 1}\n`).join(""));
    for (const program of [a, b]) {
      const health = await fetch(new URL("healthz", program.url));
      assert.equal(health.status, 200);
      await health.body?.cancel();
    }
    assert.equal((await startThrough(b.url)).status, "queued");
  },
});

Deno.test({
  name: "an instance keeps three Redis connections, however many logs its viewers follow (50 here)",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    await using dir = await makeTempDir();
    await using program = await spawnShiplog(dir.path, [
      "--redis",
      redis.url,
      "--instance",
      "only",
      "--command",
      "sleep 30",
    ]);
    const clients = async () => (await redis.cli("CLIENT", "LIST")).split("\n").filter((line) => line !== "");
    // redis-cli's own connection is one of them.
    const idle = (await clients()).length - 1;
    const ids: string[] = [];
    // One runs (one target, one at a time); the others are queued, and their logs take lines from outside.
    for (let index = 0; index < 50; index++) ids.push((await startThrough(program.url)).id);
    const sources = ids.map((id) => new EventSource(`${program.url}events/${id}`));
    try {
      const firsts = sources.map((source) =>
        new Promise<void>((resolve) => source.addEventListener("message", () => resolve(), { once: true }))
      );
      await Promise.all(
        sources.map((source) =>
          new Promise<void>((resolve) => source.addEventListener("open", () => resolve(), { once: true }))
        ),
      );
      for (const id of ids) {
        const appended = await fetch(`${program.url}api/deployments/${id}/log`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: "a line from outside\n",
          signal: AbortSignal.timeout(5000),
        });
        assert.equal(appended.status, 200, await appended.text());
      }
      await withDeadline("a line on every stream", Promise.all(firsts), 20_000);
      assert.equal(await metric(program, "shiplog_followed_logs"), 50);
      assert.equal((await clients()).length - 1, idle);
      assert.equal(idle, 3, "commands, one blocking reader, pub/sub");
    } finally {
      for (const source of sources) source.close();
      await terminate(program);
    }
  },
});

Deno.test({
  name: "Run again in a cluster: the same key sent to two instances makes one re-run, seen on both",
  ...CLUSTER_TEST,
  fn: async () => {
    await using cluster = await startCluster(["a", "b"], "echo done");
    const [a, b] = [cluster.instances.get("a")!, cluster.instances.get("b")!];
    const { id } = await startThrough(a.url);
    await waitForStatus(b, id, "succeeded");
    const key = crypto.randomUUID();
    const rerun = (url: string) =>
      fetch(new URL(`api/deployments/${id}/rerun`, url), {
        method: "POST",
        headers: { accept: "application/json", "idempotency-key": key },
        signal: AbortSignal.timeout(10_000),
      });
    const answers = await Promise.all([rerun(a.url), rerun(b.url)]);
    assert.deepEqual(answers.map(({ status }) => status), [201, 201]);
    const [first, second]: Deployment[] = await Promise.all(answers.map((answer) => answer.json()));
    assert.equal(second.id, first.id, "one deployment for the key");
    assert.equal(first.rerunOf, id);
    const record = await waitForStatus(a, first.id, "succeeded");
    assert.equal(record.rerunOf, id);
    assert.equal((await listOf(b)).filter(({ rerunOf }) => rerunOf === id).length, 1);
  },
});

Deno.test({
  name:
    "--config on two instances: each deployment runs its target's command with its values, one per target in the cluster",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer();
    await using dir = await makeTempDir();
    // Each waits for the file `open` in the config's folder, where a relative command runs.
    const wait = "while [ ! -e open ]; do sleep 0.05; done";
    const commands = {
      staging: `echo "staging $SHIPLOG_PARAM_VERSION by $SHIPLOG_STARTED_BY"; ${wait}`,
      production: `echo "production $SHIPLOG_PARAM_VERSION"; ${wait}`,
    };
    const config = {
      targets: Object.fromEntries(
        Object.entries(commands).map(([name, command]) => [name, {
          command,
          params: { version: { required: true } },
        }]),
      ),
    };
    await Deno.writeTextFile(`${dir.path}/shiplog.json`, JSON.stringify(config));
    const args = (name: string) => [
      "--redis",
      redis.url,
      "--instance",
      name,
      "--max-running",
      "2",
      "--config",
      `${dir.path}/shiplog.json`,
    ];
    await using a = await spawnShiplog(`${dir.path}/a`, args("a"));
    await using b = await spawnShiplog(`${dir.path}/b`, args("b"));
    const start = async (program: Program, target: string, version: string) => {
      const response = await fetch(new URL("start", program.url), {
        method: "POST",
        headers: { accept: "application/json", "content-type": "application/json" },
        body: JSON.stringify({ target, params: { version } }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 201, await response.clone().text());
      return (await response.json() as Deployment).id;
    };
    try {
      const first = await start(a, "staging", "v1");
      const second = await start(b, "staging", "v2");
      const production = await start(b, "production", "v3");
      // Four slots in the cluster: production runs beside the first staging one; the second waits for it.
      await waitForStatus(a, first, "running");
      await waitForStatus(a, production, "running");
      assert.equal((await getDeployment(a, second)).status, "queued");
      await Deno.writeTextFile(`${dir.path}/open`, "");
      const ended = await Promise.all(
        [first, second, production].map((id) => waitForStatus(b, id, "succeeded")),
      );
      assert.deepEqual(ended.map((record) => record.command), [
        commands.staging,
        commands.staging,
        commands.production,
      ]);
      assert.ok(ended[1].startedAt! >= ended[0].finishedAt!, "the second staging one ran after the first");
      const logs = await Promise.all(
        [first, second, production].map(async (id) =>
          await (await fetch(new URL(`deployments/${id}/log`, a.url), {
            signal: AbortSignal.timeout(10_000),
          }))
            .text()
        ),
      );
      assert.deepEqual(logs, ["staging v1 by \n", "staging v2 by \n", "production v3\n"]);
    } finally {
      await Deno.writeTextFile(`${dir.path}/open`, "");
      for (const program of [a, b]) await terminate(program);
    }
  },
});
