/**
 * @module
 * Tests for `test_with_deadline_test.ts` to run through the watchdog, one at a time by `--filter`: two that
 * hang (a spin loop in a step, an await that never resolves while processes it started run), one that passes
 * and one that fails. Not a test file of the suite (its name does not end in `_test.ts`).
 */

Deno.test("fixture passes", () => {});

Deno.test("fixture fails", () => {
  throw new Error("as it should");
});

Deno.test("fixture spins", async (t) => {
  await t.step("a step that ends", () => {});
  await t.step("a step that spins", () => {
    // What a mutant of a re-read loop did: the isolate never yields again.
    for (;;) Math.random();
  });
});

Deno.test("fixture awaits forever", async () => {
  // One process in its own session and group, as a deploy command is, and one in the test's group.
  const own = new Deno.Command("setsid", { args: ["sleep", "300"] }).spawn();
  const plain = new Deno.Command("sleep", { args: ["300"] }).spawn();
  await Deno.writeTextFile(Deno.env.get("FIXTURE_PIDS")!, `${own.pid} ${plain.pid}`);
  await new Promise(() => {});
});
