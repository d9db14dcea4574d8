import assert from "node:assert/strict";
import { LOCK_FILE, lockDirectory } from "./directory_lock.ts";
import { delay, makeTempDir } from "../testing/test_helpers.ts";

Deno.test("lockDirectory refuses a directory locked by another holder, naming its pid, after waiting", async () => {
  await using dir = await makeTempDir();
  const first = await lockDirectory(dir.path);
  assert.equal(await Deno.readTextFile(`${dir.path}/${LOCK_FILE}`), `${Deno.pid}\n`);
  const waitedFor: string[] = [];
  const started = performance.now();
  await assert.rejects(
    lockDirectory(dir.path, { waitMs: 200, onWait: (owner) => waitedFor.push(owner) }),
    new Error(`Cannot use ${dir.path}: another shiplog (pid ${Deno.pid}) is using it`),
  );
  assert.ok(performance.now() - started >= 200, "it waited for the owner before giving up");
  assert.deepEqual(waitedFor, [String(Deno.pid)]);
  first.release();
  // The attempt that gave up takes the lock once it is free and lets it go at once: a new one gets it.
  await delay(50);
  const again = await lockDirectory(dir.path, { waitMs: 1000 });
  again.release();
});

Deno.test("lockDirectory waits for the owner to let go, as in a restart whose old process is still stopping", async () => {
  await using dir = await makeTempDir();
  const first = await lockDirectory(dir.path);
  setTimeout(() => first.release(), 200);
  const second = await lockDirectory(dir.path, { waitMs: 5000 });
  second.release();
  second.release(); // twice is harmless
});

Deno.test("lockDirectory refuses a lock file that is a symlink or a FIFO, and writes nothing through it", async () => {
  await using dir = await makeTempDir();
  await using elsewhere = await makeTempDir();
  const victim = `${elsewhere.path}/precious`;
  await Deno.writeTextFile(victim, "precious data\n");
  await Deno.symlink(victim, `${dir.path}/${LOCK_FILE}`);
  await assert.rejects(lockDirectory(dir.path, { waitMs: 100 }), /not a regular file/);
  assert.equal(await Deno.readTextFile(victim), "precious data\n");

  await Deno.remove(`${dir.path}/${LOCK_FILE}`);
  const made = await new Deno.Command("mkfifo", { args: [`${dir.path}/${LOCK_FILE}`] }).output();
  assert.ok(made.success);
  await assert.rejects(lockDirectory(dir.path, { waitMs: 100 }), /not a regular file/);
});
