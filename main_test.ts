/**
 * End to end: the real program as its own process (`deno run main.ts`), real HTTP and SSE, real signals.
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only: in deno.json's imports, `deno task start` would install it
import { EventSource } from "npm:eventsource@5.1.5";
import { ENVIRONMENT_VARIABLES } from "./src/config.ts";
import { killOrphans } from "./src/runs/orphans.ts";
import { createDeployment, getDeployment } from "./src/testing/test_app.ts";
import {
  isProcessAlive,
  makeTempDir,
  waitFor,
  waitForValue,
  withDeadline,
} from "./src/testing/test_helpers.ts";
import {
  assertExitsCleanly,
  spawnShiplog,
  startDeployment,
  terminate,
  waitForStatus,
} from "./src/testing/test_program.ts";

const root = new URL(".", import.meta.url);

Deno.test("the program runs a deployment, streams it to the end, and exits 0 on SIGTERM", async () => {
  await using dir = await makeTempDir();
  await using shiplog = await spawnShiplog(dir.path, [
    "--command",
    'echo "[1/2] build for $SHIPLOG_DEPLOYMENT_ID"; sleep 0.2; echo "[2/2] ship"',
  ]);
  const id = await startDeployment(shiplog);
  const lines: string[] = [];
  const source = new EventSource(new URL(`events/${id}`, shiplog.url));
  const done = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no done; lines: ${lines}`)), 10_000);
    source.onmessage = (event) => lines.push(event.data);
    source.addEventListener("done", (event) => {
      clearTimeout(timer);
      resolve(event.data);
    });
  }).finally(() => source.close());
  assert.deepEqual(lines, [`[1/2] build for ${id}`, "[2/2] ship"]);
  assert.deepEqual(JSON.parse(done), { status: "succeeded", exitCode: 0 });
  assert.equal(await Deno.readTextFile(`${dir.path}/${id}.log`), `[1/2] build for ${id}\n[2/2] ship\n`);
  const record = JSON.parse(await Deno.readTextFile(`${dir.path}/${id}.json`));
  assert.equal(record.status, "succeeded");

  // A viewer still connected when the signal comes must not hold the exit up.
  const second = await startDeployment(shiplog);
  const stream = await fetch(new URL(`events/${second}`, shiplog.url));
  const { code, elapsedMs } = await terminate(shiplog);
  assert.equal(code, 0, shiplog.stderr());
  assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
  await stream.body?.cancel();
});

Deno.test("SIGTERM sent as soon as the program says it listens still shuts it down cleanly, exit 0", async () => {
  await using dir = await makeTempDir();
  // The race is narrow: a few starts, each stopped the moment its listening line is read.
  for (let i = 0; i < 8; i++) {
    await using shiplog = await spawnShiplog(dir.path);
    const { code } = await terminate(shiplog);
    assert.equal(code, 0, `start ${i + 1}: ${shiplog.stderr()}`);
  }
});

Deno.test("after kill -9 mid-deployment, a restart records the deployment as interrupted", async () => {
  await using dir = await makeTempDir();
  let id: string | undefined;
  try {
    {
      // Disposed at the end of this block: SIGKILL.
      await using first = await spawnShiplog(dir.path, ["--command", "echo working; sleep 30"]);
      id = await startDeployment(first);
      await waitForStatus(first, id, "running");
      // The command's first line is written after the running record, so both are on disk now.
      await waitFor(
        "the command's first line",
        async () => (await Deno.readTextFile(`${dir.path}/${id}.log`)).includes("working"),
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    }
    await using second = await spawnShiplog(dir.path);
    try {
      const deployment = await waitForStatus(second, id!, "interrupted");
      assert.match(deployment.reason!, /stopped while this deployment was running/);
      const log = await (await fetch(new URL(`deployments/${id}/log`, second.url))).text();
      assert.equal(log, "working\nshiplog: interrupted: shiplog stopped while this deployment was running\n");
    } finally {
      await assertExitsCleanly(second);
    }
  } finally {
    // The restart stops the killed server's orphans; should it have failed, do not leave them running.
    if (id) await killOrphans([id]);
  }
});

Deno.test({
  name: "a shutdown past its deadline still stops what a deployment left running, then exits 0",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    // A command deaf to SIGINT and SIGTERM (SIGKILL comes after two grace periods of 2 s), which leaves a
    // process out of its group, deaf too, holding the output: stopping that one would outlast the deadline.
    await using shiplog = await spawnShiplog(dir.path, [
      "--command",
      `trap '' INT TERM; sh -c "trap '' TERM; exec setsid sleep 60" & echo "child=$!"; while :; do sleep 0.05; done`,
    ]);
    const id = await startDeployment(shiplog);
    let child = 0;
    await waitFor("the child's pid in the log", async () => {
      child = Number((await Deno.readTextFile(`${dir.path}/${id}.log`)).match(/^child=(\d+)$/m)?.[1] ?? 0);
      return child > 0;
    }, { timeoutMs: 10_000, intervalMs: 20 });
    try {
      const { code, elapsedMs } = await terminate(shiplog);
      assert.equal(code, 0, shiplog.stderr());
      assert.ok(elapsedMs < 6000, `exit took ${elapsedMs} ms`);
      assert.match(shiplog.stderr(), /shutdown took too long/);
      assert.match(shiplog.stderr(), /stopped the processes of 1 deployment\(s\) left running/);
      // SIGKILL was sent before the exit, but a process dies only once it is scheduled: on a busy machine, later.
      await waitFor("the process the command left running to be stopped", () => !isProcessAlive(child), {
        timeoutMs: 10_000,
      });
    } finally {
      await killOrphans([id]);
    }
  },
});

Deno.test("SIGTERM with 10,000 queued exits within the deadline, every record interrupted; the next start prunes", async (t) => {
  await using dir = await makeTempDir();
  const queued = 10_000;
  // One deployment runs for the length of the test, so that every other one stays queued.
  await using shiplog = await spawnShiplog(dir.path, [
    "--command",
    "sleep 600",
    "--max-running",
    "1",
    "--max-queued",
    String(queued),
  ]);
  const start = async () => {
    const response = await fetch(new URL("start", shiplog.url), {
      method: "POST",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, text: await response.text() };
  };
  await t.step(
    "10,001 starts, 16 at a time: the queue fills up to --max-queued, then Start is 503",
    async () => {
      let sent = 0;
      const senders = Array.from({ length: 16 }, async () => {
        while (sent < queued + 1) {
          sent++;
          const { status, text } = await start();
          assert.equal(status, 201, text);
        }
      });
      await withDeadline("10,001 starts", Promise.all(senders), 120_000);
      const refused = await start();
      assert.equal(refused.status, 503);
      assert.match(refused.text, /10000 are queued already \(--max-queued 10000\)/);
    },
  );
  await t.step("SIGTERM: exit 0 before the deadline, every record on disk interrupted", async () => {
    const { code, elapsedMs } = await terminate(shiplog, 30_000);
    assert.equal(code, 0, shiplog.stderr());
    assert.doesNotMatch(shiplog.stderr(), /took too long/);
    assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
    const statuses = new Map<string, number>();
    for await (const entry of Deno.readDir(dir.path)) {
      if (!entry.name.endsWith(".json")) continue;
      const { status } = JSON.parse(await Deno.readTextFile(`${dir.path}/${entry.name}`));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    // Nothing deleted at shutdown (--keep 1000 is the next start's to apply): the deadline goes to writing.
    assert.deepEqual(statuses, new Map([["interrupted", queued + 1]]));
  });
  await t.step("the next start keeps the 1,000 that finished last (--keep)", async () => {
    await using again = await spawnShiplog(dir.path);
    const list = await (await fetch(new URL("api/deployments?limit=1000", again.url))).json();
    assert.equal(list.length, 1000);
    assert.equal((await terminate(again)).code, 0);
    const records = await Array.fromAsync(Deno.readDir(dir.path), (entry) => entry.name);
    assert.equal(records.filter((name) => name.endsWith(".json")).length, 1000);
  });
});

Deno.test("deno task start fetches only what the server runs: none of the packages only the tests use", async () => {
  // An empty cache, as on a machine that never ran shiplog: `deno task` installs what the lockfile it finds
  // lists before it runs a task, and `deno run` what the program imports. `--help` runs the program and exits.
  await using cache = await makeTempDir();
  const start = await new Deno.Command(Deno.execPath(), {
    args: ["task", "start", "--help"],
    cwd: root,
    env: { DENO_DIR: cache.path, NO_COLOR: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(start.stderr);
  assert.equal(start.code, 0, stderr);
  assert.match(new TextDecoder().decode(start.stdout), /--max-running N/);
  // The server's packages, the Redis client (for --redis) and jsonc-parser (for --config), have no dependencies
  // of their own: the Redis client's optional peers' descriptions are looked up, not fetched.
  const fetched = stderr.split("\n").filter((line) => line.includes("Download") && line.endsWith(".tgz"));
  assert.deepEqual(fetched.map((line) => line.slice(line.lastIndexOf("/") + 1)).sort(), [
    "client-6.4.0.tgz",
    "jsonc-parser-3.3.1.tgz",
  ]);
  // Each package installed is a folder per version, beside the registry's description of it.
  const installed: string[] = [];
  const folders = async (path: string) =>
    (await Array.fromAsync(Deno.readDir(path))).filter((entry) => entry.isDirectory).map((entry) =>
      entry.name
    );
  for (const registry of await folders(`${cache.path}/npm`)) {
    for (const top of await folders(`${cache.path}/npm/${registry}`)) {
      const names = top.startsWith("@")
        ? (await folders(`${cache.path}/npm/${registry}/${top}`)).map((name) => `${top}/${name}`)
        : [top];
      for (const name of names) {
        const versions = await folders(`${cache.path}/npm/${registry}/${name}`);
        installed.push(...versions.map((version) => `${name}@${version}`));
      }
    }
  }
  assert.deepEqual(
    installed.sort(),
    ["@redis/client@6.4.0", "jsonc-parser@3.3.1"],
    "packages only the tests use were installed",
  );
});

Deno.test("a second shiplog on the same --dir is refused and leaves the first one's deployment running", async () => {
  await using dir = await makeTempDir();
  await using first = await spawnShiplog(dir.path, ["--command", "echo working; sleep 30"]);
  const id = await startDeployment(first);
  await waitForStatus(first, id, "running");
  // The same port too: it used to recover (kill) the first one's deployment before finding its port taken.
  const second = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--port", new URL(first.url).port, "--dir", dir.path],
    cwd: root,
  }).output();
  assert.equal(second.code, 1);
  assert.equal(
    new TextDecoder().decode(second.stderr),
    `shiplog: waiting for the shiplog (pid ${first.pid}) that uses ${dir.path} to exit\n` +
      `shiplog: Cannot use ${dir.path}: another shiplog (pid ${first.pid}) is using it\n`,
  );
  assert.equal((await waitForStatus(first, id, "running")).status, "running");
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir.path}/${id}.json`)).status, "running");
  const { code } = await terminate(first);
  assert.equal(code, 0);
});

Deno.test("on a disk that takes no writes, shiplog still starts and serves, and refuses Start with 503", async () => {
  await using dir = await makeTempDir();
  const id = crypto.randomUUID();
  const record = {
    id,
    status: "running",
    command: "sleep 30",
    createdAt: "2026-11-24T08:00:00.000Z",
    startedAt: "2026-11-24T08:00:00.010Z",
    finishedAt: null,
    exitCode: null,
    reason: null,
  };
  await Deno.writeTextFile(`${dir.path}/${id}.json`, JSON.stringify(record));
  await Deno.writeTextFile(`${dir.path}/${id}.log`, "[1/2] build\n");
  // A file size limit of 0 (with SIGXFSZ ignored): every write to a file fails, as on a full disk.
  const process = new Deno.Command("sh", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f 0; exec "$0" run --allow-all main.ts --port 0 --dir "$1"`,
      Deno.execPath(),
      dir.path,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(process.stderr).text();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    while (!/http:\/\/\S+\//.test(out)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `shiplog exited before listening: ${out}`);
      out += value;
    }
    const url = /http:\/\/\S+\//.exec(out)![0];
    const shown = await (await fetch(`${url}api/deployments/${id}`)).json();
    assert.equal(shown.status, "interrupted", "known to be over, though it could not be written");
    assert.equal(await (await fetch(`${url}deployments/${id}/log`)).text(), "[1/2] build\n");
    const start = await fetch(`${url}start`, { method: "POST", headers: { accept: "application/json" } });
    assert.equal(start.status, 503);
    assert.deepEqual(await start.json(), {
      error: "Cannot start a deployment: its record cannot be written: File too large (os error 27)",
    });
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir.path}/${id}.json`)).status, "running");
  } finally {
    try {
      process.kill("SIGTERM");
    } catch {
      // It exited already: the assertion above says why.
    }
    await reader.cancel();
  }
  assert.equal((await process.status).code, 0);
  assert.match(await stderr, new RegExp(`cannot record deployment ${id} as interrupted`));
});

Deno.test("a bad flag prints a clear message and exits non-zero; --help lists the flags", async () => {
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--port", "99999"],
    cwd: root,
  }).output();
  assert.equal(bad.code, 2);
  assert.equal(
    new TextDecoder().decode(bad.stderr),
    'shiplog: Cannot parse --port "99999": expected an integer from 0 to 65535\n',
  );
  const help = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--help"],
    cwd: root,
  })
    .output();
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--max-running N/);
});

Deno.test("an unfit token in --token-file exits 2, like a short --token, before the data directory is touched", async () => {
  await using temp = await makeTempDir();
  const tokenFile = `${temp.path}/token`;
  await Deno.writeTextFile(tokenFile, "short\n");
  const dir = `${temp.path}/deployments`;
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--port", "0", "--dir", dir, "--token-file", tokenFile],
    cwd: root,
  }).output();
  assert.equal(run.code, 2);
  assert.equal(
    new TextDecoder().decode(run.stderr),
    `shiplog: Cannot use the token in ${tokenFile}: expected a token of at least 8 characters\n`,
  );
  assert.equal(
    await Deno.stat(dir).then(() => true, () => false),
    false,
    "the data directory was not created",
  );
});

Deno.test("a non-loopback --hostname prints a warning", async () => {
  await using dir = await makeTempDir();
  await using shiplog = await spawnShiplog(dir.path, ["--hostname", "0.0.0.0"]);
  try {
    assert.match(shiplog.stderr(), /warning: listening on 0\.0\.0\.0 without --token exposes shiplog/);
  } finally {
    await terminate(shiplog);
  }
});

Deno.test("a --mask-env value under 4 characters is left in clear, and the start-up says which variable", async () => {
  await using dir = await makeTempDir();
  await using shiplog = await spawnShiplog(dir.path, [
    ...["DEPLOY_PIN", "DEPLOY_SEPARATOR", "DB_PASSWORD"].flatMap((name) => ["--mask-env", name]),
    "--command",
    'echo "step 1 of 10: done"; printf "password=%s\\n" "$DB_PASSWORD"',
  ], { env: { DEPLOY_PIN: "1", DEPLOY_SEPARATOR: " ", DB_PASSWORD: "hunter2hunter\n" } });
  try {
    const id = await startDeployment(shiplog);
    await waitForStatus(shiplog, id, "succeeded");
    assert.equal(await Deno.readTextFile(`${dir.path}/${id}.log`), "step 1 of 10: done\npassword=***\n\n");
    assert.equal(
      shiplog.stderr(),
      "shiplog: warning: not masking --mask-env DEPLOY_PIN, DEPLOY_SEPARATOR: " +
        "a value under 4 characters would mask ordinary text too\n",
    );
  } finally {
    await assertExitsCleanly(shiplog);
  }
});

Deno.test("the deploy command gets the environment without shiplog's settings, and SHIPLOG_DEPLOYMENT_ID", async () => {
  await using dir = await makeTempDir();
  const tokenFile = `${dir.path}/token`;
  await Deno.writeTextFile(tokenFile, "t0ken-from-the-file\n");
  // Settings in the environment; --token-file beats SHIPLOG_TOKEN, so the token can be set both ways at once.
  await using shiplog = await spawnShiplog(dir.path, ["--token-file", tokenFile], {
    env: {
      SHIPLOG_TOKEN: "t0ken-from-the-environment",
      SHIPLOG_TOKEN_FILE: tokenFile,
      SHIPLOG_COMMAND: "env",
      SHIPLOG_MAX_RUNNING: "3",
      SHIPLOG_MASK_ENV: "DEPLOY_TARGET",
      DEPLOY_TARGET: "staging-cluster",
    },
  });
  try {
    const auth = { authorization: "Bearer t0ken-from-the-file" };
    const { id } = await createDeployment(shiplog, auth);
    await waitForValue(`deployment ${id} to succeed`, async () => {
      return (await getDeployment(shiplog, id, auth)).status === "succeeded" || undefined;
    }, { timeoutMs: 10_000, intervalMs: 25 });
    const log = await Deno.readTextFile(`${dir.path}/${id}.log`);
    const names = log.split("\n").map((line) => line.split("=")[0]);
    assert.deepEqual(names.filter((name) => ENVIRONMENT_VARIABLES.includes(name)), [], log);
    assert.ok(names.includes("PATH"), log);
    assert.match(log, new RegExp(`^SHIPLOG_DEPLOYMENT_ID=${id}$`, "m"));
    // Masked in the log, but the command has it.
    assert.match(log, /^DEPLOY_TARGET=\*\*\*$/m);
    assert.ok(!log.includes("t0ken-from-the-environment"), log);
  } finally {
    await assertExitsCleanly(shiplog);
  }
});

Deno.test("a bad --config exits 2 with the file, the place and what is wrong, before the data directory is touched", async (t) => {
  await using temp = await makeTempDir();
  const dir = `${temp.path}/deployments`;
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "main.ts", "--port", "0", "--dir", dir, ...args],
      cwd: root,
      env,
    }).output();
    return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
  };
  await t.step("a target without a command", async () => {
    const config = `${temp.path}/shiplog.jsonc`;
    await Deno.writeTextFile(
      config,
      '{\n  // production is not ready\n  "targets": { "production": {} }\n}\n',
    );
    assert.deepEqual(await run(["--config", config]), {
      code: 2,
      stderr: `shiplog: ${config}:3:30: targets.production: expected a "command" to run\n`,
    });
  });
  await t.step("a syntax error, from SHIPLOG_CONFIG", async () => {
    const config = `${temp.path}/broken.json`;
    await Deno.writeTextFile(config, '{"targets": {"a": {"command": "x"}');
    assert.deepEqual(await run([], { SHIPLOG_CONFIG: config }), {
      code: 2,
      stderr: `shiplog: ${config}:1:35: expected "}"\n`,
    });
  });
  await t.step("a file that is not there", async () => {
    const { code, stderr } = await run(["--config", `${temp.path}/nope.json`]);
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`^shiplog: Cannot read --config ${temp.path}/nope\\.json: No such file`));
  });
  await t.step("--config with --command", async () => {
    assert.deepEqual(await run(["--config", `${temp.path}/shiplog.jsonc`, "--command", "make deploy"]), {
      code: 2,
      stderr:
        "shiplog: Cannot use both --config and --command: the config file gives each target its command\n",
    });
  });
  assert.equal(
    await Deno.stat(dir).then(() => true, () => false),
    false,
    "the data directory was not created",
  );
});

Deno.test("with --config, a Start's target and parameters reach the script beside the config as variables", async () => {
  await using temp = await makeTempDir();
  const folder = `${temp.path}/ops`;
  await Deno.mkdir(folder);
  await Deno.writeTextFile(
    `${folder}/deploy.sh`,
    '#!/bin/sh\necho "deploying $SHIPLOG_PARAM_VERSION to $1"\n',
    {
      mode: 0o755,
    },
  );
  await Deno.writeTextFile(
    `${folder}/shiplog.jsonc`,
    '{"targets": {"staging": {"command": "./deploy.sh staging", "params": {"version": {"required": true}}}}}',
  );
  await using shiplog = await spawnShiplog(`${temp.path}/deployments`, [
    "--config",
    `${folder}/shiplog.jsonc`,
  ]);
  try {
    const refused = await fetch(new URL("start", shiplog.url), {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ target: "staging" }),
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(await refused.json(), {
      error: "Parameter version is required; expected a value of up to 1000 characters",
      errors: [{
        param: "version",
        message: "Parameter version is required; expected a value of up to 1000 characters",
      }],
    });
    const response = await fetch(new URL("start", shiplog.url), {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ target: "staging", params: { version: "v1.4.2" } }),
    });
    assert.equal(response.status, 201);
    const { id } = await response.json();
    const record = await waitForStatus(shiplog, id, "succeeded");
    assert.deepEqual([record.target, record.params, record.command], [
      "staging",
      { version: "v1.4.2" },
      "./deploy.sh staging",
    ]);
    assert.equal(
      await Deno.readTextFile(`${temp.path}/deployments/${id}.log`),
      "deploying v1.4.2 to staging\n",
    );
  } finally {
    await assertExitsCleanly(shiplog);
  }
});
