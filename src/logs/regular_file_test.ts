/**
 * Tests of opening only regular files, on real files, links and FIFOs in temporary directories, with a real
 * process swapping a link in and out for the race between the check and the open.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { openRegularFile } from "./regular_file.ts";
import { makeTempDir, withDeadline } from "../testing/test_helpers.ts";

const MARKER = "MARKER-outside-the-data-directory";

Deno.test("openRegularFile() opens a regular file and refuses a symlink, a FIFO and a directory", async () => {
  await using dir = await makeTempDir();
  await using elsewhere = await makeTempDir();
  const target = join(elsewhere.path, "target");
  await Deno.writeTextFile(target, MARKER);
  const path = join(dir.path, "file");
  await Deno.writeTextFile(path, "mine");
  const opened = openRegularFile(path, { read: true });
  assert.ok(opened && "file" in opened);
  opened.file.close();
  assert.equal(opened.info.size, 4);

  await Deno.symlink(target, join(dir.path, "link"));
  assert.deepEqual(openRegularFile(join(dir.path, "link"), { read: true }), {
    refused: "a symlink, not a regular file",
  });
  const made = await new Deno.Command("mkfifo", { args: [join(dir.path, "fifo")] }).output();
  assert.ok(made.success);
  // Refused before it is opened: an open of a FIFO would block until a writer came.
  assert.deepEqual(openRegularFile(join(dir.path, "fifo"), { append: true, create: true }), {
    refused: "a FIFO, not a regular file",
  });
  assert.deepEqual(openRegularFile(dir.path, { read: true }), { refused: "a directory, not a regular file" });
  assert.equal(await Deno.readTextFile(target), MARKER);
});

Deno.test("openRegularFile() creates a missing file only when asked, and nothing where a dangling link points", async () => {
  await using dir = await makeTempDir();
  await using elsewhere = await makeTempDir();
  const missing = join(dir.path, "missing");
  assert.equal(openRegularFile(missing, { read: true }), undefined);
  const created = openRegularFile(missing, { append: true, create: true });
  assert.ok(created && "file" in created);
  created.file.close();
  assert.ok((await Deno.lstat(missing)).isFile);

  const nowhere = join(elsewhere.path, "nowhere");
  await Deno.symlink(nowhere, join(dir.path, "dangling"));
  assert.deepEqual(openRegularFile(join(dir.path, "dangling"), { append: true, create: true }), {
    refused: "a symlink, not a regular file",
  });
  await assert.rejects(Deno.lstat(nowhere), Deno.errors.NotFound);
});

Deno.test("openRegularFile() never returns the target of a link swapped in between its lstat and its open", async () => {
  await using dir = await makeTempDir();
  await using elsewhere = await makeTempDir();
  const target = join(elsewhere.path, "target");
  await Deno.writeTextFile(target, MARKER);
  const path = join(dir.path, "log");
  await Deno.writeTextFile(path, "mine");
  // Another process puts a regular file and a link to the target in turn at `path`, as fast as it can.
  const flipper = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const [path, target] = Deno.args;
      for (let i = 0;; i++) {
        if (i % 2) Deno.writeTextFileSync(path + ".new", "mine");
        else Deno.symlinkSync(target, path + ".new");
        Deno.renameSync(path + ".new", path);
      }`,
      path,
      target,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const buffer = new Uint8Array(64);
  let opened = 0;
  let refused = 0;
  try {
    // A second at least, and until both sides were seen often (the other process takes a moment to start).
    const until = performance.now() + 1000;
    const deadline = until + 20_000;
    while ((performance.now() < until || opened < 100 || refused < 100) && performance.now() < deadline) {
      let result;
      try {
        result = openRegularFile(path, { read: true });
      } catch (error) {
        // The path was between a rename's two steps: gone for an instant, or made by the other side meanwhile.
        if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
      if (!result) continue;
      if ("refused" in result) {
        refused++;
        continue;
      }
      const read = result.file.readSync(buffer) ?? 0;
      result.file.close();
      opened++;
      assert.equal(
        new TextDecoder().decode(buffer.subarray(0, read)),
        "mine",
        "the link's target was opened",
      );
    }
  } finally {
    flipper.kill("SIGKILL");
    await withDeadline("the flipper to exit", flipper.status);
  }
  assert.ok(opened >= 100 && refused >= 100, `${opened} opened, ${refused} refused`);
});
