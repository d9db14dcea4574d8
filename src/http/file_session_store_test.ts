import assert from "node:assert/strict";
import { join } from "node:path";
import { FileSessionStore, SESSIONS_FILE } from "./file_session_store.ts";
import { delay, makeTempDir } from "../testing/test_helpers.ts";

Deno.test("FileSessionStore keeps its secret and revocations across opens, in a file only its owner reads", async () => {
  await using dir = await makeTempDir();
  const first = await FileSessionStore.open(dir.path);
  assert.equal(first.secret.length, 32);
  await first.revoke("signed-out", Date.now() + 60_000);
  assert.equal(await first.isRevoked("signed-out"), true);
  assert.equal(await first.isRevoked("other"), false);
  const again = await FileSessionStore.open(dir.path);
  assert.deepEqual(again.secret, first.secret);
  assert.equal(await again.isRevoked("signed-out"), true);
  assert.equal(await again.isRevoked("other"), false);
  const info = await Deno.lstat(join(dir.path, SESSIONS_FILE));
  assert.ok(info.isFile);
  assert.equal(info.mode! & 0o777, 0o600);
  const other = await makeTempDir();
  await using _ = other;
  assert.notDeepEqual((await FileSessionStore.open(other.path)).secret, first.secret);
});

Deno.test("FileSessionStore forgets a revocation once the session expired", async () => {
  await using dir = await makeTempDir();
  const store = await FileSessionStore.open(dir.path);
  await store.revoke("soon", Date.now() + 100);
  await store.revoke("past", Date.now() - 1);
  await store.revoke("later", Date.now() + 60_000);
  await delay(150);
  await store.revoke("another", Date.now() + 60_000);
  const saved = JSON.parse(await Deno.readTextFile(join(dir.path, SESSIONS_FILE)));
  assert.deepEqual(Object.keys(saved.revoked).sort(), ["another", "later"]);
});

Deno.test("FileSessionStore refuses a symlink or a FIFO in its file's place, and writes nothing there", async () => {
  await using dir = await makeTempDir();
  const target = join(dir.path, "target");
  await Deno.writeTextFile(target, "not yours\n");
  const path = join(dir.path, SESSIONS_FILE);
  await Deno.symlink(target, path);
  await assert.rejects(
    () => FileSessionStore.open(dir.path),
    new Error(`Cannot use ${path}: it is a symlink, not a regular file; remove it`),
  );
  assert.equal(await Deno.readTextFile(target), "not yours\n");
  await Deno.remove(path);
  const mkfifo = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(mkfifo.success);
  await assert.rejects(() => FileSessionStore.open(dir.path), /it is a FIFO, not a regular file/);
});

Deno.test("FileSessionStore replaces a file it cannot parse with a new secret, and says so", async () => {
  await using dir = await makeTempDir();
  const first = await FileSessionStore.open(dir.path);
  const path = join(dir.path, SESSIONS_FILE);
  const errors: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    for (const junk of ["{", "[]", '{"secret":"short","revoked":{}}', "null"]) {
      await Deno.writeTextFile(path, junk);
      const store = await FileSessionStore.open(dir.path);
      assert.notDeepEqual(store.secret, first.secret, junk);
      assert.deepEqual((await FileSessionStore.open(dir.path)).secret, store.secret, "and keeps it");
    }
  } finally {
    console.error = original;
  }
  assert.equal(errors.length, 4);
  assert.match(String(errors[0][0]), /is not a sessions file: made a new secret, so everyone signs in again/);
});

Deno.test("FileSessionStore that cannot write its file keeps its secret for the run, and warns", async () => {
  await using dir = await makeTempDir();
  // Its temporary file's place taken by a directory that is not empty: every write fails (even as root).
  await Deno.mkdir(join(dir.path, `${SESSIONS_FILE}.tmp`, "in-the-way"), { recursive: true });
  const errors: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const store = await FileSessionStore.open(dir.path);
    assert.equal(store.secret.length, 32);
    await store.revoke("x", Date.now() + 60_000);
    assert.equal(await store.isRevoked("x"), true, "in memory still");
  } finally {
    console.error = original;
  }
  const told = errors.map((args) => args.join(" "));
  assert.equal(told.length, 2, "the failure once, and what it means");
  assert.match(told[0], /^shiplog: cannot write .*\.sessions\.json:/);
  assert.match(told[1], /^shiplog: warning: cannot write .*: sign-ins last until shiplog stops$/);
  await assert.rejects(() => Deno.lstat(join(dir.path, SESSIONS_FILE)), Deno.errors.NotFound);
});
