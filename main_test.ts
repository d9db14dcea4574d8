/**
 * End to end: the real program as its own process (`deno run main.ts`), real HTTP and SSE, real signals.
 */

import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { killOrphans } from "./src/orphans.ts";

const root = new URL(".", import.meta.url);

interface Program {
  process: Deno.ChildProcess;
  url: string;
  /** Everything the program printed to stderr so far. */
  stderr(): string;
}

/** Starts `main.ts` with `args` and waits for its listening line. */
async function spawnShiplog(args: string[], env: Record<string, string> = {}): Promise<Program> {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "main.ts",
      ...args,
    ],
    cwd: root,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  (async () => {
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
  } finally {
    clearTimeout(deadline);
  }
  // Keep draining stdout so the program never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })();
  return { process, url: out.match(/(http:\/\/\S+\/)\n/)![1], stderr: () => errors };
}

async function startDeployment(url: string): Promise<{ id: string }> {
  const response = await fetch(new URL("start", url), {
    method: "POST",
    headers: { accept: "application/json" },
  });
  assert.equal(response.status, 201);
  return await response.json();
}

async function waitForStatus(url: string, id: string, status: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const deployment = await (await fetch(new URL(`api/deployments/${id}`, url))).json();
    if (deployment.status === status) return deployment;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`deployment ${id} never became ${status}`);
}

/** Exit status, or SIGKILL after `ms`. */
async function exitWithin(process: Deno.ChildProcess, ms: number): Promise<Deno.CommandStatus> {
  const timer = setTimeout(() => process.kill("SIGKILL"), ms);
  try {
    return await process.status;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("the program runs a deployment, streams it to the end, and exits 0 on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shiplog_main_" });
  const shiplog = await spawnShiplog([
    "--port",
    "0",
    "--dir",
    dir,
    "--command",
    'echo "[1/2] build for $SHIPLOG_DEPLOYMENT_ID"; sleep 0.2; echo "[2/2] ship"',
  ]);
  try {
    const { id } = await startDeployment(shiplog.url);
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
    assert.equal(await Deno.readTextFile(`${dir}/${id}.log`), `[1/2] build for ${id}\n[2/2] ship\n`);
    const record = JSON.parse(await Deno.readTextFile(`${dir}/${id}.json`));
    assert.equal(record.status, "succeeded");

    // A viewer still connected when the signal comes must not hold the exit up.
    const second = await startDeployment(shiplog.url);
    const stream = await fetch(new URL(`events/${second.id}`, shiplog.url));
    const started = Date.now();
    shiplog.process.kill("SIGTERM");
    const status = await exitWithin(shiplog.process, 10_000);
    assert.equal(status.code, 0, shiplog.stderr());
    assert.ok(Date.now() - started < 5000, `exit took ${Date.now() - started} ms`);
    await stream.body?.cancel();
  } finally {
    try {
      shiplog.process.kill("SIGKILL");
    } catch { /* already exited */ }
    await shiplog.process.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("after kill -9 mid-deployment, a restart records the deployment as interrupted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shiplog_main_" });
  let id: string | undefined;
  try {
    const first = await spawnShiplog(["--port", "0", "--dir", dir, "--command", "echo working; sleep 30"]);
    try {
      ({ id } = await startDeployment(first.url));
      await waitForStatus(first.url, id, "running");
      // The command's first line is written after the running record, so both are on disk now.
      const deadline = Date.now() + 10_000;
      while (!(await Deno.readTextFile(`${dir}/${id}.log`)).includes("working")) {
        assert.ok(Date.now() < deadline, "the command never wrote its first line");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      first.process.kill("SIGKILL");
      await first.process.status;
    }
    const second = await spawnShiplog(["--port", "0", "--dir", dir]);
    try {
      const deployment = await waitForStatus(second.url, id!, "interrupted");
      assert.match(deployment.reason, /stopped while this deployment was running/);
      const log = await (await fetch(new URL(`deployments/${id}/log`, second.url))).text();
      assert.equal(log, "working\n");
    } finally {
      second.process.kill("SIGTERM");
      assert.equal((await exitWithin(second.process, 10_000)).code, 0);
    }
  } finally {
    // The restart stops the killed server's orphans; should it have failed, do not leave them running.
    if (id) await killOrphans([id]);
    await Deno.remove(dir, { recursive: true });
  }
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

Deno.test("a non-loopback --hostname prints a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shiplog_main_" });
  const shiplog = await spawnShiplog(["--port", "0", "--hostname", "0.0.0.0", "--dir", dir]);
  try {
    assert.match(shiplog.stderr(), /warning: listening on 0\.0\.0\.0 without --token exposes shiplog/);
  } finally {
    shiplog.process.kill("SIGTERM");
    await exitWithin(shiplog.process, 10_000);
    await Deno.remove(dir, { recursive: true });
  }
});
