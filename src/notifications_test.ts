/**
 * Notifications end to end: the real app (in this process, and the real program spawned) with `--webhook`,
 * real receivers on free ports, and two instances of a cluster on a real redis-server, which send each event
 * once between them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { isFinal } from "./logs/deployment.ts";
import type { Notification } from "./runs/notification.ts";
import { signature } from "./runs/webhook.ts";
import { REDIS_TEST, startRedisServer } from "./testing/redis_server.ts";
import {
  APP_WAIT,
  createDeployment,
  getDeployment,
  type Listening,
  metricsText,
  startTestApp,
} from "./testing/test_app.ts";
import { makeTempDir, waitFor, withDeadline } from "./testing/test_helpers.ts";
import { spawnShiplog, terminate, waitForStatus } from "./testing/test_program.ts";
import { downUrl, type ReceivedWebhook, startWebhookReceiver } from "./testing/webhook_receiver.ts";

const FAST = { webhookTimeoutMs: 1000, webhookBackoffMs: 10 };

const parsed = (request: ReceivedWebhook) => JSON.parse(request.body) as Notification;

/** The value of a counter of `/metrics` for one event. */
async function webhookCounter(app: Listening, name: string, event: string): Promise<number> {
  const line = (await metricsText(app)).split("\n").find((line) =>
    line.startsWith(`${name}{event="${event}"} `)
  );
  assert.ok(line, `no ${name} for ${event}`);
  return Number(line.split(" ")[1]);
}

Deno.test("a deployment started over HTTP is told to every webhook, and /metrics counts deliveries and failures", async () => {
  await using receiver = startWebhookReceiver();
  await using app = await startTestApp({ command: "true", webhooks: [receiver.url, downUrl()] }, FAST);
  const { id } = await createDeployment(app);
  const events = (await receiver.waitFor(2)).map(parsed);
  assert.deepEqual(events.map(({ event }) => event), ["deployment.started", "deployment.finished"]);
  // Without --base-url, the links point where it listens.
  assert.equal(events[1].url, new URL(`deployment/${id}`, app.url).href);
  assert.deepEqual(events[1].deployment, await getDeployment(app, id));
  await waitFor(
    "the failures at the receiver that is down",
    async () => await webhookCounter(app, "shiplog_webhook_failures_total", "deployment.finished") === 1,
    APP_WAIT,
  );
  for (const event of ["deployment.started", "deployment.finished"]) {
    assert.equal(await webhookCounter(app, "shiplog_webhook_deliveries_total", event), 1);
    assert.equal(await webhookCounter(app, "shiplog_webhook_failures_total", event), 1);
  }
});

Deno.test("a receiver that hangs holds up neither a deployment nor shutdown past its bounded wait", async () => {
  await using receiver = startWebhookReceiver(() => "hang");
  const app = await startTestApp(
    { command: "sleep 30", webhooks: [receiver.url] },
    { webhookTimeoutMs: 5000, webhookBackoffMs: 1000, webhookCloseWaitMs: 300 },
  );
  try {
    const { id } = await createDeployment(app);
    await receiver.waitFor(1);
    assert.equal((await getDeployment(app, id)).status, "running");
  } finally {
    const started = performance.now();
    await withDeadline("shutdown", app.shutdown(), 5000);
    const tookMs = performance.now() - started;
    // The runner's grace period (300 ms) for the command, then at most the webhooks' 300 ms.
    assert.ok(tookMs < 2000, `shutdown took ${tookMs} ms`);
    await Deno.remove(app.dir, { recursive: true });
  }
});

Deno.test(
  "two instances of a cluster send each event to a webhook once between them",
  REDIS_TEST,
  async () => {
    await using redis = await startRedisServer();
    await using receiver = startWebhookReceiver();
    const config = {
      redis: redis.url,
      redisPrefix: `test${crypto.randomUUID().slice(0, 8)}`,
      command: "true",
      maxRunning: 1,
      webhooks: [receiver.url],
      baseUrl: "https://shiplog.test/",
    };
    const a = await startTestApp({ ...config, instance: "a" }, FAST);
    const b = await startTestApp({ ...config, instance: "b" }, FAST);
    const ids: string[] = [];
    try {
      for (const app of [a, b, a, b, a, b]) ids.push((await createDeployment(app)).id);
      // Both heard every end: each instance's notifier had its chance at every event.
      for (const app of [a, b]) {
        await waitFor("every deployment ended, as both instances know", async () => {
          for (const id of ids) if (!isFinal((await getDeployment(app, id)).status)) return false;
          return true;
        }, APP_WAIT);
      }
    } finally {
      // Shutdown waits for the deliveries under way: after it, nothing more is sent.
      await a.shutdown();
      await b.shutdown();
      await Deno.remove(a.dir, { recursive: true });
      await Deno.remove(b.dir, { recursive: true });
    }
    const sent = receiver.received.map(parsed).map(({ deployment, event }) => `${deployment.id} ${event}`);
    const expected = ids.flatMap((id) => [`${id} deployment.started`, `${id} deployment.finished`]);
    assert.deepEqual(sent.toSorted(), expected.toSorted());
    // Which instance sent which is in Redis, under the key of the claim.
    const claims = await redis.cli("--scan", "--pattern", `${config.redisPrefix}:notified:*`);
    assert.equal(claims.split("\n").length, expected.length);
  },
);

Deno.test("the program signs with the key of SHIPLOG_WEBHOOK_SECRET, which the deploy command does not get", async () => {
  await using temp = await makeTempDir();
  await using receiver = startWebhookReceiver();
  await using program = await spawnShiplog(temp.path, [
    "--command",
    'echo "key=${SHIPLOG_WEBHOOK_SECRET:-none} hook=${SHIPLOG_WEBHOOK:-none}"',
    "--base-url",
    "https://tools.test/shiplog",
  ], { env: { SHIPLOG_WEBHOOK_SECRET: "env-hook-key", SHIPLOG_WEBHOOK: receiver.url } });
  const { id } = await createDeployment(program);
  await waitForStatus(program, id, "succeeded");
  const requests = await receiver.waitFor(2);
  for (const request of requests) {
    assert.equal(request.headers.get("x-shiplog-signature"), signature("env-hook-key", request.body));
  }
  assert.equal(parsed(requests[1]).url, `https://tools.test/shiplog/deployment/${id}`);
  assert.equal(await Deno.readTextFile(join(temp.path, `${id}.log`)), "key=none hook=none\n");
  assert.equal((await terminate(program)).code, 0);
});

Deno.test("the program reads the webhook key from --webhook-secret-file, and refuses an empty one with exit 2", async (t) => {
  await using temp = await makeTempDir();
  const keyFile = join(temp.path, "hook-key");
  await t.step("a key on the first line signs", async () => {
    await Deno.writeTextFile(keyFile, "file-hook-key\n");
    await using receiver = startWebhookReceiver();
    await using program = await spawnShiplog(join(temp.path, "d1"), [
      "--command",
      "true",
      "--webhook",
      receiver.url,
      "--webhook-secret-file",
      keyFile,
    ]);
    const { id } = await createDeployment(program);
    const [request] = await receiver.waitFor(1);
    assert.equal(parsed(request).deployment.id, id);
    assert.equal(request.headers.get("x-shiplog-signature"), signature("file-hook-key", request.body));
    assert.equal((await terminate(program)).code, 0);
  });
  await t.step("an empty first line is refused before anything starts", async () => {
    await Deno.writeTextFile(keyFile, "\nsecond line\n");
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "main.ts",
        "--port",
        "0",
        "--dir",
        join(temp.path, "d2"),
        "--webhook-secret-file",
        keyFile,
      ],
      cwd: new URL("..", import.meta.url),
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 2);
    assert.equal(
      new TextDecoder().decode(output.stderr),
      `shiplog: Cannot sign webhooks with ${keyFile}: expected a key on its first line\n`,
    );
  });
});
