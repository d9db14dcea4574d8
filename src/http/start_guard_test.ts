import assert from "node:assert/strict";
import type { Deployment } from "../logs/deployment.ts";
import { HttpError } from "./http_error.ts";
import { StartGuard } from "./start_guard.ts";
import { delay } from "../testing/test_helpers.ts";

function maker() {
  let made = 0;
  const create = () => {
    made++;
    return Promise.resolve({ id: `deployment ${made}` } as Deployment);
  };
  return { create, made: () => made };
}

Deno.test("StartGuard makes one deployment for a key sent twice, and one each for other keys or none", async () => {
  const guard = new StartGuard();
  const { create, made } = maker();
  const first = guard.start("key-aaaaaaaa", create);
  const again = guard.start("key-aaaaaaaa", create);
  assert.deepEqual([first.repeated, again.repeated], [false, true]);
  assert.equal(await again.deployment, await first.deployment);
  assert.equal((await guard.start("key-bbbbbbbb", create).deployment).id, "deployment 2");
  guard.start(null, create);
  guard.start(null, create);
  assert.equal(made(), 4);
});

Deno.test("StartGuard forgets a key after its window, and after the start it made failed", async () => {
  const guard = new StartGuard({ windowMs: 50 });
  const { create, made } = maker();
  guard.start("key-aaaaaaaa", create);
  await delay(80);
  assert.equal(guard.start("key-aaaaaaaa", create).repeated, false);
  assert.equal(made(), 2);
  const failed = guard.start("key-cccccccc", () => Promise.reject(new Error("disk full")));
  await assert.rejects(failed.deployment, /disk full/);
  assert.equal(guard.start("key-cccccccc", create).repeated, false);
});

Deno.test("StartGuard keeps at most maxKeys keys, the newest", () => {
  const guard = new StartGuard({ maxKeys: 2 });
  const { create } = maker();
  for (const key of ["key-11111111", "key-22222222", "key-33333333"]) guard.start(key, create);
  assert.equal(guard.start("key-33333333", create).repeated, true);
  assert.equal(guard.start("key-11111111", create).repeated, false);
});

Deno.test("StartGuard takes a key quoted as the Idempotency-Key draft sends it, or not", () => {
  const guard = new StartGuard();
  guard.start('"8e03978e-40d5"', maker().create);
  assert.equal(guard.start("8e03978e-40d5", maker().create).repeated, true);
  assert.equal(guard.start("deploy:2024-01-01:abc", maker().create).repeated, false);
});

Deno.test("StartGuard refuses a malformed key with 400", () => {
  const guard = new StartGuard();
  for (const key of ["x".repeat(256), "has space", "tab\there", "é", '""']) {
    assert.throws(
      () => guard.start(key, maker().create),
      (error) => error instanceof HttpError && error.status === 400,
    );
  }
});
