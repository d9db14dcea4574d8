import assert from "node:assert/strict";
import { settlesWithin } from "./settles_within.ts";
import { delay } from "../testing/test_helpers.ts";

Deno.test("settlesWithin() is true for a promise that settles in time, fulfilled or rejected", async () => {
  assert.equal(await settlesWithin(delay(10), 1000), true);
  assert.equal(await settlesWithin(Promise.reject(new Error("no")), 1000), true);
});

Deno.test("settlesWithin() is false once the time runs out, and leaves no timer behind", async () => {
  const started = performance.now();
  assert.equal(await settlesWithin(new Promise(() => {}), 30), false);
  assert.ok(performance.now() - started >= 25);
  // The test's timer sanitizer fails if a timer is still set here.
});
