/** Tests of the deployments registry on a real file store in a temporary directory. */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Deployment } from "../logs/deployment.ts";
import { isDeploymentId } from "../logs/deployment_id.ts";
import { type DeploymentChange, Deployments } from "./deployments.ts";
import { FileStore } from "../logs/file_store.ts";
import { deploymentRecord, makeTempDir } from "../testing/test_helpers.ts";

async function openStore() {
  const temp = await makeTempDir();
  const store = await FileStore.open(temp.path);
  return {
    store,
    dir: temp.path,
    readRecord: async (id: string): Promise<Deployment> =>
      JSON.parse(await Deno.readTextFile(join(temp.path, `${id}.json`))),
    async [Symbol.asyncDispose]() {
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

/** Records every `change` event of `deployments`. */
function listen(deployments: Deployments): Deployment[] {
  const changes: Deployment[] = [];
  deployments.addEventListener("change", (event) => changes.push((event as DeploymentChange).detail));
  return changes;
}

Deno.test("Deployments.load() marks queued and running records of an earlier process interrupted, with a reason", async () => {
  await using fixture = await openStore();
  const { store } = fixture;
  const queued = deploymentRecord({ status: "queued" });
  const running = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:00:01.000Z" });
  const finals = (["succeeded", "failed", "cancelled", "interrupted"] as const).map((status, i) =>
    deploymentRecord({
      status,
      startedAt: "2026-11-24T08:00:01.000Z",
      finishedAt: "2026-11-24T08:00:02.000Z",
      exitCode: status === "succeeded" ? 0 : status === "failed" ? 1 : null,
      reason: status === "failed" ? "exit code 1" : status === "interrupted" ? "earlier" : null,
      createdAt: `2026-11-24T07:0${i}:00.000Z`,
    })
  );
  for (const each of [queued, running, ...finals]) await store.save(each);
  const finalFiles = await Promise.all(
    finals.map((each) => Deno.readTextFile(join(fixture.dir, `${each.id}.json`))),
  );

  const now = new Date("2026-11-24T09:00:00.000Z");
  const deployments = await Deployments.load(store, { now: () => now });

  for (const before of [queued, running]) {
    const expected: Deployment = {
      ...before,
      status: "interrupted",
      finishedAt: now.toISOString(),
      reason: `shiplog stopped while this deployment was ${before.status}`,
    };
    assert.deepEqual(deployments.get(before.id), expected);
    assert.deepEqual(await fixture.readRecord(before.id), expected, "written to the store too");
    assert.equal(
      await Deno.readTextFile(join(fixture.dir, `${before.id}.log`)),
      `shiplog: interrupted: ${expected.reason}\n`,
      "its log says so",
    );
  }
  for (const [i, final] of finals.entries()) {
    assert.deepEqual(deployments.get(final.id), final);
    const log = await Deno.readTextFile(join(fixture.dir, `${final.id}.log`)).catch(() => "");
    assert.equal(log, "", "no notice");
    assert.equal(
      await Deno.readTextFile(join(fixture.dir, `${final.id}.json`)),
      finalFiles[i],
      "file untouched",
    );
  }
  assert.equal(deployments.list().length, 6);
  assert.equal(deployments.countByStatus().get("interrupted"), 3);
  assert.equal(deployments.countByStatus().get("running"), undefined);
});

Deno.test("Deployments.load() dates an interrupted deployment by its log's last write, not by the restart", async () => {
  await using fixture = await openStore();
  const { store } = fixture;
  const wrote = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:00:00.000Z" });
  const silent = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:30:00.000Z" });
  const future = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:00:00.000Z" });
  for (const each of [wrote, silent, future]) await store.save(each);
  // Its last line at 08:05; a log untouched since before the start; a log dated past now (a skewed clock).
  await Deno.writeTextFile(join(fixture.dir, `${wrote.id}.log`), "[1/3] build\n");
  for (const each of [silent, future]) await Deno.writeTextFile(join(fixture.dir, `${each.id}.log`), "");
  await Deno.utime(
    join(fixture.dir, `${wrote.id}.log`),
    new Date("2026-11-24T08:05:00Z"),
    new Date("2026-11-24T08:05:00Z"),
  );
  await Deno.utime(
    join(fixture.dir, `${silent.id}.log`),
    new Date("2026-11-24T08:00:00Z"),
    new Date("2026-11-24T08:00:00Z"),
  );
  await Deno.utime(
    join(fixture.dir, `${future.id}.log`),
    new Date("2026-11-25T00:00:00Z"),
    new Date("2026-11-25T00:00:00Z"),
  );

  // The restart comes twelve hours later.
  const deployments = await Deployments.load(store, { now: () => new Date("2026-11-24T20:00:00.000Z") });
  assert.equal(deployments.get(wrote.id)?.finishedAt, "2026-11-24T08:05:00.000Z");
  assert.equal(deployments.get(silent.id)?.finishedAt, "2026-11-24T08:30:00.000Z", "not before it started");
  assert.equal(deployments.get(future.id)?.finishedAt, "2026-11-24T20:00:00.000Z", "not after now");
  assert.equal((await fixture.readRecord(wrote.id)).finishedAt, "2026-11-24T08:05:00.000Z");
});

Deno.test("retention keeps the deployments that finished last: a long one ending after a later one is kept", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store, { keep: 1 });
  const long = await deployments.create(null, { now: new Date("2026-11-24T08:00:00.000Z") });
  const short = await deployments.create(null, { now: new Date("2026-11-24T08:01:00.000Z") });
  await deployments.update(short.id, { status: "succeeded", finishedAt: "2026-11-24T08:02:00.000Z" });
  await deployments.update(long.id, { status: "succeeded", finishedAt: "2026-11-24T08:10:00.000Z" });
  assert.deepEqual(deployments.list().map((each) => each.id), [long.id]);
  assert.deepEqual(
    await Array.fromAsync(Deno.readDir(fixture.dir), (entry) => entry.name).then((names) =>
      names.filter((name) => name.includes(short.id))
    ),
    [],
  );
});

Deno.test("deployments created in the same millisecond keep their order across a reload", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const at = new Date("2026-11-24T08:00:00.000Z");
  for (let i = 0; i < 8; i++) await deployments.create(null, { now: at });
  const order = deployments.list().map((each) => each.id);
  const reloaded = await Deployments.load(fixture.store);
  assert.deepEqual(reloaded.list().map((each) => each.id), order);
  assert.deepEqual(order, [...order].sort().reverse(), "ties are broken by id");
});

Deno.test("a record whose write failed is written after the next write that succeeds", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const first = await deployments.create(null);
  // The record's path taken by a directory: the rename that replaces the record fails, as on a full disk.
  const path = join(fixture.dir, `${first.id}.json`);
  await Deno.remove(path);
  await Deno.mkdir(path);
  await assert.rejects(deployments.update(first.id, { status: "failed", reason: "the disk is full" }));
  assert.equal(deployments.get(first.id)?.status, "failed", "known in memory");
  await Deno.remove(path);
  await deployments.create(null);
  assert.deepEqual(
    await fixture.readRecord(first.id),
    deployments.get(first.id),
    "written with the next one",
  );
  assert.equal(await deployments.saveUnsaved(), true);
});

Deno.test("Deployments.load() records a deployment interrupted even when its log cannot be looked at", async () => {
  await using fixture = await openStore();
  const running = deploymentRecord({ status: "running", startedAt: "2026-11-24T08:00:00.000Z" });
  await fixture.store.save(running);
  // A symlink to itself: stat fails with ELOOP, not NotFound.
  await Deno.symlink(`${running.id}.log`, join(fixture.dir, `${running.id}.log`));
  const now = new Date("2026-11-24T09:00:00.000Z");
  const deployments = await Deployments.load(fixture.store, { now: () => now });
  assert.equal(deployments.get(running.id)?.status, "interrupted");
  assert.equal(deployments.get(running.id)?.finishedAt, now.toISOString());
});

Deno.test("Deployments.create() makes a queued deployment with a canonical UUID, its files and one change event", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const changes = listen(deployments);
  const createdAt = new Date("2026-11-24T08:00:00.000Z");

  const created = await deployments.create("./deploy.sh", { now: createdAt });
  assert.ok(isDeploymentId(created.id), created.id);
  assert.deepEqual(created, {
    id: created.id,
    status: "queued",
    target: "default",
    params: {},
    command: "./deploy.sh",
    createdAt: createdAt.toISOString(),
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    reason: null,
    startedBy: null,
    cancelledBy: null,
    rerunOf: null,
  });
  assert.deepEqual(changes, [created]);
  assert.deepEqual(deployments.get(created.id), created);
  assert.deepEqual(await fixture.readRecord(created.id), created);
  assert.equal(await Deno.readTextFile(join(fixture.dir, `${created.id}.log`)), "");

  const simulated = await deployments.create(null, { now: new Date("2026-11-24T08:00:01.000Z") });
  assert.notEqual(simulated.id, created.id);
  assert.equal(simulated.command, null);
  assert.deepEqual(deployments.list().map((each) => each.id), [simulated.id, created.id], "newest first");
});

Deno.test("Deployments.update() fires one change event per update, after writing the record", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const { id } = await deployments.create(null);
  const changes = listen(deployments);
  const written: Deployment[] = [];
  deployments.addEventListener("change", () => {
    written.push(JSON.parse(Deno.readTextFileSync(join(fixture.dir, `${id}.json`))));
  });

  const running = await deployments.update(id, { status: "running", startedAt: "2026-11-24T08:00:01.000Z" });
  const succeeded = await deployments.update(id, {
    status: "succeeded",
    finishedAt: "2026-11-24T08:00:02.000Z",
    exitCode: 0,
  });
  assert.deepEqual(changes, [running, succeeded]);
  assert.deepEqual(written, [running, succeeded], "listeners see the record already on disk");
  assert.equal(succeeded.startedAt, "2026-11-24T08:00:01.000Z", "a patch keeps the other fields");
  assert.deepEqual(deployments.get(id), succeeded);
});

Deno.test("Deployments.update() of an ended deployment changes nothing and fires nothing", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const { id } = await deployments.create(null);
  const cancelled = await deployments.update(id, {
    status: "cancelled",
    finishedAt: "2026-11-24T08:00:02.000Z",
  });
  const onDisk = await Deno.readTextFile(join(fixture.dir, `${id}.json`));
  const changes = listen(deployments);

  const after = await deployments.update(id, { status: "succeeded", exitCode: 0, reason: "late" });
  assert.deepEqual(after, cancelled);
  assert.deepEqual(deployments.get(id), cancelled);
  assert.deepEqual(changes, []);
  assert.equal(await Deno.readTextFile(join(fixture.dir, `${id}.json`)), onDisk);
});

Deno.test("Deployments.update() of an unknown id throws a RangeError", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  await assert.rejects(() => deployments.update(crypto.randomUUID(), { status: "running" }), RangeError);
});

Deno.test("Deployments.updateAll() writes a long queue's records a few at a time: neither one by one nor all at once", async () => {
  await using fixture = await openStore();
  let writing = 0;
  let most = 0;
  // The real store, with its writes counted while under way.
  const counted = new Proxy(fixture.store, {
    get(store, name) {
      if (name !== "save") return Reflect.get(store, name).bind(store);
      return async (deployment: Deployment) => {
        most = Math.max(most, ++writing);
        try {
          await store.save(deployment);
        } finally {
          writing--;
        }
      };
    },
  });
  const deployments = await Deployments.load(counted);
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) ids.push((await deployments.create(null)).id);
  most = 0;
  const changes = listen(deployments);

  await deployments.updateAll(ids, { status: "interrupted", finishedAt: "2026-11-24T09:00:00.000Z" });
  assert.ok(most > 1 && most <= 16, `${most} writes at once`);
  assert.equal(changes.length, 200);
  for (const id of ids) assert.equal((await fixture.readRecord(id)).status, "interrupted");
  assert.deepEqual(deployments.countByStatus(), new Map([["interrupted", 200]]));
});

Deno.test("after stopPruning() nothing is deleted; the next load deletes the deployments beyond keep", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store, { keep: 2 });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    ids.push((await deployments.create(null, { now: new Date(Date.UTC(2026, 10, 24, 8, i)) })).id);
  }
  await deployments.update(ids[0], { status: "succeeded", finishedAt: "2026-11-24T08:10:00.000Z" });
  assert.deepEqual(deployments.countByStatus(), new Map([["queued", 3], ["succeeded", 1]]));

  deployments.stopPruning();
  // Finished in another order than created: the two that finished last are kept.
  const finishedAt = ["2026-11-24T08:13:00.000Z", "2026-11-24T08:12:00.000Z", "2026-11-24T08:11:00.000Z"];
  for (const [i, id] of ids.slice(1).entries()) {
    await deployments.update(id, { status: "failed", finishedAt: finishedAt[i] });
  }
  assert.equal(deployments.list().length, 4);
  assert.deepEqual(deployments.countByStatus(), new Map([["succeeded", 1], ["failed", 3]]));
  const records = async () =>
    (await Array.fromAsync(Deno.readDir(fixture.dir), (entry) => entry.name)).filter((name) =>
      name.endsWith(".json")
    ).length;
  assert.equal(await records(), 4);

  const reloaded = await Deployments.load(fixture.store, { keep: 2 });
  assert.deepEqual(reloaded.list().map((each) => each.id), [ids[2], ids[1]]);
  assert.deepEqual(reloaded.countByStatus(), new Map([["failed", 2]]));
  assert.equal(await records(), 2);
});

/** Writes `count` finished records straight into `dir` (faster than a save each): targets, statuses and ties. */
async function writeHistory(dir: string, count: number): Promise<Deployment[]> {
  const targets = ["staging", "production", "default"];
  const statuses = ["succeeded", "failed", "cancelled", "interrupted"] as const;
  const records = Array.from({ length: count }, (_, i) =>
    deploymentRecord({
      target: targets[i % 3],
      status: statuses[i % 7 % 4],
      // Pairs created in the same millisecond: the id puts them in order.
      createdAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(i / 2) * 60_000).toISOString(),
      finishedAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(i / 2) * 60_000 + 1000).toISOString(),
    }));
  await Promise.all(
    records.map((record) => Deno.writeTextFile(join(dir, `${record.id}.json`), JSON.stringify(record))),
  );
  return records;
}

Deno.test("page() of 3,000 deployments walks every filter's records once, newest first, page after page", async () => {
  await using fixture = await openStore();
  await writeHistory(fixture.dir, 3000);
  const deployments = await Deployments.load(fixture.store);
  const all = deployments.list();
  assert.equal(all.length, 3000);
  for (let i = 1; i < all.length; i++) {
    const [newer, older] = [all[i - 1], all[i]];
    assert.ok(
      newer.createdAt > older.createdAt || (newer.createdAt === older.createdAt && newer.id > older.id),
    );
  }
  for (
    const filter of [{}, { target: "staging" }, { status: "failed" as const }, {
      target: "production",
      status: "cancelled" as const,
    }, { target: "nowhere" }]
  ) {
    const expected = all.filter((record) =>
      (filter.target === undefined || record.target === filter.target) &&
      (filter.status === undefined || record.status === filter.status)
    ).map(({ id }) => id);
    const walked: string[] = [];
    let page = deployments.page({ ...filter, limit: 70 });
    while (true) {
      assert.ok(page.records.length <= 70);
      walked.push(...page.records.map(({ id }) => id));
      if (page.next === null) break;
      assert.equal(page.records.length, 70, "only the last page is short");
      assert.deepEqual(page.next, { createdAt: page.records[69].createdAt, id: page.records[69].id });
      page = deployments.page({ ...filter, limit: 70, before: page.next });
    }
    assert.deepEqual(walked, expected, JSON.stringify(filter));
  }
});

Deno.test("page() places new records (even from a clock set back) and forgets deleted ones; a deleted cursor still pages on", async () => {
  await using fixture = await openStore();
  const written = await writeHistory(fixture.dir, 200);
  const deployments = await Deployments.load(fixture.store, { keep: 200 });
  const first = deployments.page({ limit: 10 });
  const newest = await deployments.create(null, {
    now: new Date("2027-01-01T00:00:00.000Z"),
    target: "staging",
  });
  const backdated = await deployments.create(null, {
    now: new Date(written[101].createdAt),
    target: "staging",
  });
  assert.equal(deployments.page({ limit: 1 }).records[0].id, newest.id);
  assert.equal(
    deployments.page({ limit: 1, status: "queued", before: first.next! }).records[0].id,
    backdated.id,
  );
  assert.deepEqual(
    deployments.list().map(({ id }) => id),
    deployments.page({ limit: 1000 }).records.map(({ id }) => id),
  );

  // Ending the two deletes the two oldest (keep 200): gone from every page.
  const oldest = deployments.list().slice(-2).map(({ id }) => id);
  await deployments.update(newest.id, { status: "succeeded", finishedAt: "2027-01-01T00:00:01.000Z" });
  await deployments.update(backdated.id, { status: "succeeded", finishedAt: "2027-01-01T00:00:02.000Z" });
  const ids = deployments.page({ limit: 1000 }).records.map(({ id }) => id);
  assert.equal(ids.length, 200);
  assert.ok(oldest.every((id) => !ids.includes(id)));
  assert.deepEqual(ids, deployments.list().map(({ id }) => id));

  // A page after a deployment deleted since (here: one never made) goes on from where that one was.
  const cursor = { createdAt: written[100].createdAt, id: "ffffffff-ffff-4fff-bfff-ffffffffffff" };
  const page = deployments.page({ limit: 1000, before: cursor });
  // Those created in the same millisecond with a smaller id come after it too.
  const from = ids.findIndex((id) => deployments.get(id)!.createdAt <= cursor.createdAt);
  assert.ok(from > 0);
  assert.deepEqual(page.records.map(({ id }) => id), ids.slice(from));
});

Deno.test("page() keeps the order of records other instances write, heard in any order, and of those they delete", async () => {
  await using fixture = await openStore();
  const deployments = await Deployments.load(fixture.store);
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 24, 8, minute)).toISOString();
  const heard = [3, 1, 4, 0, 2].map((minute) =>
    deploymentRecord({ createdAt: at(minute), target: minute % 2 ? "staging" : "production" })
  );
  for (const record of heard) deployments.apply(record);
  // A change heard later keeps its place.
  deployments.apply({ ...heard[0], status: "running", startedAt: at(5) });
  const byAge = heard.toSorted((a, b) => b.createdAt.localeCompare(a.createdAt)).map(({ id }) => id);
  assert.deepEqual(deployments.page({ limit: 10 }).records.map(({ id }) => id), byAge);
  assert.deepEqual(
    deployments.page({ limit: 10, target: "staging" }).records.map(({ createdAt }) => createdAt),
    [
      at(3),
      at(1),
    ],
  );
  deployments.applyRemoval(heard[1].id);
  assert.deepEqual(
    deployments.page({ limit: 10 }).records.map(({ id }) => id),
    byAge.filter((id) => id !== heard[1].id),
  );
  assert.deepEqual(deployments.list().map(({ id }) => id), byAge.filter((id) => id !== heard[1].id));
});
