/**
 * Tests of the notifier with the real registry, file store and runner (real `sh` commands) and a real webhook
 * receiver on a free port: what arrives, in which order, and that a receiver that is down, fails or hangs
 * delays nothing.
 */

import assert from "node:assert/strict";
import { type Deployment, isFinal } from "../logs/deployment.ts";
import { FileStore } from "../logs/file_store.ts";
import { type DeploymentChange, Deployments } from "./deployments.ts";
import type { Notification } from "./notification.ts";
import { type DeliveryOutcome, Notifier, type NotifierOptions } from "./notifier.ts";
import { Runner } from "./runner.ts";
import { Targets } from "./targets.ts";
import { signature } from "./webhook.ts";
import { deploymentRecord, makeTempDir, waitFor, withDeadline } from "../testing/test_helpers.ts";
import { downUrl, type ReceivedWebhook, startWebhookReceiver } from "../testing/webhook_receiver.ts";

const BASE_URL = "https://shiplog.test/ops/";

/** Deployments run by `command` and told to `webhooks`; everything stopped and removed when disposed. */
async function startNotifying(
  command: string,
  options: Partial<NotifierOptions> & { maxRunning?: number } = {},
) {
  const temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  const deployments = await Deployments.load(store);
  // One target, production, as the chat lines say: the runner runs only a target it has.
  const targets = new Targets([{
    name: "production",
    description: null,
    command,
    cwd: null,
    params: new Map(),
  }]);
  const runner = new Runner(deployments, store, {
    targets,
    graceMs: 200,
    maxRunning: options.maxRunning ?? 2,
  });
  const logged: string[] = [];
  const outcomes: string[] = [];
  // A record is final in memory before its change is told: the test waits for the telling, as the notifier hears.
  const endsHeard = new Set<string>();
  deployments.addEventListener("change", (event) => {
    const record = (event as DeploymentChange).detail;
    if (isFinal(record.status)) endsHeard.add(record.id);
  });
  const notifier = new Notifier(deployments, {
    webhooks: [],
    baseUrl: BASE_URL,
    timeoutMs: 1000,
    backoffMs: 20,
    closeWaitMs: 1000,
    log: (line) => logged.push(line),
    onOutcome: (event, outcome: DeliveryOutcome) => outcomes.push(`${event} ${outcome}`),
    ...options,
  });
  return {
    deployments,
    runner,
    notifier,
    logged,
    outcomes,
    async start(): Promise<string> {
      const deployment = await runner.start(() => deployments.create(command, { target: "production" }));
      assert.ok(deployment);
      return deployment.id;
    },
    async ended(id: string): Promise<Deployment> {
      await waitFor(`deployment ${id} to end`, () => endsHeard.has(id));
      return deployments.get(id)!;
    },
    async [Symbol.asyncDispose]() {
      await runner.shutdown();
      await notifier.close();
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

const parsed = (request: ReceivedWebhook) => JSON.parse(request.body) as Notification;

Deno.test("Notifier POSTs deployment.started then deployment.finished, signed, with the record, page and line, once per URL", async () => {
  await using receiver = startWebhookReceiver();
  await using fixture = await startNotifying("echo deploying", {
    webhooks: [receiver.url],
    secret: "hook-key",
  });
  const id = await fixture.start();
  const record = await fixture.ended(id);
  const [started, finished] = (await receiver.waitFor(2)).map((request) => ({
    request,
    body: parsed(request),
  }));
  assert.equal(started.body.event, "deployment.started");
  assert.equal(started.body.deployment.status, "running");
  assert.equal(started.body.text, "production started");
  assert.equal(finished.body.event, "deployment.finished");
  assert.deepEqual(finished.body.deployment, record);
  assert.equal(finished.body.url, `https://shiplog.test/ops/deployment/${id}`);
  assert.match(finished.body.text, /^production succeeded in \d+(\.\d)?s$/);
  for (const { request, body } of [started, finished]) {
    assert.equal(request.headers.get("x-shiplog-signature"), signature("hook-key", request.body));
    assert.equal(request.headers.get("x-shiplog-event"), body.event);
    assert.equal(request.headers.get("x-shiplog-delivery"), `${id}:${body.event}`);
  }
  await fixture.notifier.settled();
  assert.deepEqual(fixture.outcomes, ["deployment.started delivered", "deployment.finished delivered"]);
  assert.equal(receiver.received.length, 2);
});

Deno.test("Notifier sends a deployment cancelled while queued only deployment.finished", async () => {
  await using receiver = startWebhookReceiver();
  await using fixture = await startNotifying("sleep 30", { webhooks: [receiver.url], maxRunning: 1 });
  const running = await fixture.start();
  const queued = await fixture.start();
  assert.equal(fixture.deployments.get(queued)!.status, "queued");
  assert.ok(await fixture.runner.cancel(queued));
  assert.ok(await fixture.runner.cancel(running));
  await fixture.notifier.settled();
  const events = receiver.received.map(parsed).map(({ event, deployment }) => `${deployment.id} ${event}`);
  assert.deepEqual(events.filter((line) => line.startsWith(queued)), [`${queued} deployment.finished`]);
  assert.deepEqual(events.filter((line) => line.startsWith(running)), [
    `${running} deployment.started`,
    `${running} deployment.finished`,
  ]);
  const cancelled = receiver.received.map(parsed).find(({ deployment }) => deployment.id === queued)!;
  assert.equal(cancelled.text, "production cancelled while queued");
});

Deno.test("Notifier retries a receiver's 500, and a deployment's end still comes after its start", async () => {
  // The start is refused once and arrives at the second try, 300 ms on; the deployment ends long before.
  await using receiver = startWebhookReceiver((_, index) => index === 0 ? 500 : 200);
  await using fixture = await startNotifying("true", { webhooks: [receiver.url], backoffMs: 300 });
  const id = await fixture.start();
  await fixture.ended(id);
  assert.equal(receiver.received.length, 1, "the end waits for the start");
  const events = (await receiver.waitFor(3)).map((request) => parsed(request).event);
  assert.deepEqual(events, ["deployment.started", "deployment.started", "deployment.finished"]);
  await fixture.notifier.settled();
  assert.deepEqual(fixture.outcomes, ["deployment.started delivered", "deployment.finished delivered"]);
});

Deno.test("Notifier: a receiver that hangs delays neither the deployment nor its statuses, and close() gives up in bounded time", async () => {
  await using receiver = startWebhookReceiver(() => "hang");
  await using fixture = await startNotifying("true", {
    webhooks: [receiver.url],
    timeoutMs: 5000,
    closeWaitMs: 300,
  });
  const begun = performance.now();
  const id = await fixture.start();
  await fixture.ended(id);
  const tookMs = performance.now() - begun;
  assert.ok(tookMs < 2000, `the deployment took ${tookMs} ms with a receiver that hangs`);
  await receiver.waitFor(1);
  // Its start is still being tried: the end waits behind it.
  assert.equal(receiver.received.length, 1);
  const closing = performance.now();
  await withDeadline("close()", fixture.notifier.close(), 3000);
  const closeMs = performance.now() - closing;
  assert.ok(closeMs >= 280 && closeMs < 1500, `close() took ${closeMs} ms`);
  assert.deepEqual(fixture.outcomes, ["deployment.started failed", "deployment.finished failed"]);
  assert.ok(
    fixture.logged.some((line) => line.includes("gave up 2 notification(s)")),
    fixture.logged.join("\n"),
  );
});

Deno.test("Notifier: a receiver that is down is counted failed and logged without its path, after 3 tries", async () => {
  const webhook = `${downUrl()}/services/T0/B0/secret-part`;
  await using fixture = await startNotifying("true", { webhooks: [webhook] });
  const id = await fixture.start();
  await fixture.ended(id);
  await withDeadline("deliveries given up", fixture.notifier.settled());
  assert.deepEqual(fixture.outcomes, ["deployment.started failed", "deployment.finished failed"]);
  assert.equal(fixture.logged.length, 2);
  for (const line of fixture.logged) {
    assert.match(
      line,
      /^shiplog: webhook http:\/\/127\.0\.0\.1:\d+\/… did not get deployment\.\w+ of deployment /,
    );
    assert.match(line, /\(3 tries\): .*Connection refused/);
    assert.ok(!line.includes("secret-part"), line);
  }
});

Deno.test("Notifier sends to every webhook, one failing not holding up the other", async () => {
  await using good = startWebhookReceiver();
  await using hanging = startWebhookReceiver(() => "hang");
  await using fixture = await startNotifying("true", {
    webhooks: [hanging.url, good.url],
    timeoutMs: 5000,
    closeWaitMs: 100,
  });
  const id = await fixture.start();
  await fixture.ended(id);
  // The end waits for the start at each webhook, not at the slowest: long before the other's timeout.
  const events = (await good.waitFor(2, 2000)).map((request) => parsed(request).event);
  assert.deepEqual(events, ["deployment.started", "deployment.finished"]);
});

Deno.test("Notifier sends a few at a time to one webhook, and gives up past the deliveries that may wait", async () => {
  await using receiver = startWebhookReceiver(() => "hang");
  await using fixture = await startNotifying("true", {
    webhooks: [receiver.url],
    timeoutMs: 5000,
    closeWaitMs: 100,
    maxInFlight: 2,
    maxWaiting: 1,
    maxRunning: 4,
  });
  const ids = [await fixture.start(), await fixture.start(), await fixture.start(), await fixture.start()];
  // Two under way, one waiting, the rest given up: only a cap that holds fills the line.
  await waitFor("a delivery given up", () => fixture.logged.length > 0);
  assert.match(
    fixture.logged[0],
    /^shiplog: webhook http:\/\/127\.0\.0\.1:\d+\/… has 1 notifications waiting; dropping/,
  );
  await receiver.waitFor(2);
  assert.equal(receiver.received.length, 2);
  assert.ok(fixture.outcomes.length > 0 && fixture.outcomes.every((outcome) => outcome.endsWith(" failed")));
  assert.equal(fixture.logged.length, 1, "said once");
  for (const id of ids) await fixture.ended(id);
});

Deno.test("Notifier.announce() sends the end of deployments that a start found unfinished", async () => {
  await using receiver = startWebhookReceiver();
  await using temp = await makeTempDir();
  const left = deploymentRecord({
    status: "running",
    target: "staging",
    startedAt: new Date().toISOString(),
  });
  {
    const store = await FileStore.open(temp.path);
    await store.save(left);
    await store.close();
  }
  const store = await FileStore.open(temp.path);
  const deployments = await Deployments.load(store);
  const notifier = new Notifier(deployments, { webhooks: [receiver.url], baseUrl: BASE_URL, log: () => {} });
  notifier.announce(deployments.interruptedAtLoad);
  notifier.announce(deployments.interruptedAtLoad);
  await notifier.close();
  await store.close();
  const [request] = await receiver.waitFor(1);
  const body = parsed(request);
  assert.equal(body.event, "deployment.finished");
  assert.equal(body.deployment.id, left.id);
  assert.match(
    body.text,
    /^staging interrupted after [\d.]+s: shiplog stopped while this deployment was running$/,
  );
  assert.equal(receiver.received.length, 1, "announced once");
});

Deno.test("Notifier sends nothing that another instance claimed, and gives up what no claim can be had for", async () => {
  await using receiver = startWebhookReceiver();
  const claims: string[] = [];
  await using fixture = await startNotifying("true", {
    webhooks: [receiver.url],
    claim: {
      take: (_id, event) => {
        claims.push(event);
        if (event === "deployment.started") return Promise.resolve(false);
        return Promise.reject(new Error("Redis is away"));
      },
    },
  });
  const id = await fixture.start();
  await fixture.ended(id);
  await fixture.notifier.settled();
  assert.equal(receiver.received.length, 0);
  // The claim of the end is tried as often as a delivery.
  assert.deepEqual(claims, ["deployment.started", ...Array(3).fill("deployment.finished")]);
  assert.deepEqual(fixture.outcomes, ["deployment.finished failed"]);
  assert.match(fixture.logged[0], /cannot tell whether another instance sends it: Redis is away/);
});
