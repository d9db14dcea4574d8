/**
 * Tests of the runner with targets from a real config file: each deployment runs its target's command, in the
 * config's folder, with its parameters in the environment (a command that prints what it really gets), and a
 * value is never shell text.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { isFinal } from "../logs/deployment.ts";
import { Deployments } from "./deployments.ts";
import { FileStore } from "../logs/file_store.ts";
import { Runner } from "./runner.ts";
import { readTargetConfig } from "./target_config.ts";
import { makeTempDir, waitFor } from "../testing/test_helpers.ts";

/** A folder holding `shiplog.jsonc` and `deploy.sh` (which prints its folder, arguments and environment). */
async function configFolder() {
  const temp = await makeTempDir();
  await Deno.writeTextFile(
    join(temp.path, "deploy.sh"),
    '#!/bin/sh\necho "pwd=$(pwd)"\necho "args=$*"\nenv | grep "^SHIPLOG_" | sort\n',
    { mode: 0o755 },
  );
  await Deno.writeTextFile(
    join(temp.path, "shiplog.jsonc"),
    `{
      // Both run the script beside this file.
      "targets": {
        "staging": {
          "command": "./deploy.sh staging",
          "params": { "version": { "default": "main" }, "region": { "choices": ["eu", "us"], "default": "eu" } }
        },
        "production": { "command": "./deploy.sh production" }
      }
    }`,
  );
  return temp;
}

async function startRunner(dir: string, env: Record<string, string> = {}) {
  const logs = await makeTempDir();
  const store = await FileStore.open(logs.path);
  const deployments = await Deployments.load(store);
  const targets = await readTargetConfig(join(dir, "shiplog.jsonc"));
  // Only what the test gives: nothing of the test's own SHIPLOG_* variables.
  const runner = new Runner(deployments, store, {
    targets,
    env: { PATH: Deno.env.get("PATH")!, ...env },
    graceMs: 200,
  });
  return {
    runner,
    deployments,
    targets,
    readLog: (id: string) => Deno.readTextFile(join(logs.path, `${id}.log`)),
    async ended(id: string) {
      await waitFor(`deployment ${id} to end`, () => isFinal(deployments.get(id)!.status));
      return deployments.get(id)!;
    },
    async [Symbol.asyncDispose]() {
      await runner.shutdown();
      await store.close();
      await logs[Symbol.asyncDispose]();
    },
  };
}

Deno.test("Runner runs a deployment's target command in the config's folder with its parameters as variables", async () => {
  await using folder = await configFolder();
  await using fixture = await startRunner(folder.path);
  const staging = fixture.targets.get("staging")!;
  const deployment = await fixture.runner.start(() =>
    fixture.deployments.create(staging.command, {
      target: "staging",
      params: { version: "v1.4.2", region: "us" },
      startedBy: "alice",
    })
  );
  assert.ok(deployment);
  const ended = await fixture.ended(deployment.id);
  assert.equal(ended.status, "succeeded", await fixture.readLog(deployment.id));
  assert.equal(ended.command, "./deploy.sh staging");
  assert.equal(
    await fixture.readLog(deployment.id),
    [
      `pwd=${folder.path}`,
      "args=staging",
      `SHIPLOG_DEPLOYMENT_ID=${deployment.id}`,
      "SHIPLOG_PARAM_REGION=us",
      "SHIPLOG_PARAM_VERSION=v1.4.2",
      "SHIPLOG_STARTED_BY=alice",
      "SHIPLOG_TARGET=staging",
      "",
    ].join("\n"),
  );
});

Deno.test("Runner never puts a value into the shell: $(...), quotes and ; stay literal text", async () => {
  await using folder = await configFolder();
  await using fixture = await startRunner(folder.path);
  const hostile = `$(touch ${folder.path}/pwned)"; touch ${folder.path}/pwned2; echo '\``;
  const deployment = await fixture.runner.start(() =>
    fixture.deployments.create("./deploy.sh staging", { target: "staging", params: { version: hostile } })
  );
  assert.ok(deployment);
  assert.equal((await fixture.ended(deployment.id)).status, "succeeded");
  const log = await fixture.readLog(deployment.id);
  assert.ok(log.includes(`SHIPLOG_PARAM_VERSION=${hostile}\n`), log);
  for (const name of ["pwned", "pwned2"]) {
    await assert.rejects(() => Deno.stat(join(folder.path, name)), Deno.errors.NotFound, name);
  }
});

Deno.test("Runner gives each target its own command, and only that deployment's parameters", async () => {
  await using folder = await configFolder();
  // A variable of the server's environment that looks like a parameter is not passed on.
  await using fixture = await startRunner(folder.path, {
    SHIPLOG_PARAM_VERSION: "stale",
    SHIPLOG_TARGET: "x",
  });
  const deployment = await fixture.runner.start(() =>
    fixture.deployments.create("./deploy.sh production", { target: "production" })
  );
  assert.ok(deployment);
  assert.equal((await fixture.ended(deployment.id)).status, "succeeded");
  const log = await fixture.readLog(deployment.id);
  assert.match(log, /^args=production$/m);
  assert.doesNotMatch(log, /SHIPLOG_PARAM_/);
  assert.match(log, /^SHIPLOG_TARGET=production$/m);
  assert.match(log, /^SHIPLOG_STARTED_BY=$/m, "empty when nobody named started it");
});

Deno.test("Runner fails a deployment whose target is no longer in the config, running nothing", async () => {
  await using folder = await configFolder();
  await using fixture = await startRunner(folder.path);
  const deployment = await fixture.runner.start(() =>
    fixture.deployments.create("./deploy.sh qa", { target: "qa" })
  );
  assert.ok(deployment);
  const ended = await fixture.ended(deployment.id);
  assert.equal(ended.status, "failed");
  assert.equal(ended.reason, 'Target "qa" is not in this server\'s config');
  assert.equal(await fixture.readLog(deployment.id), "");
});
