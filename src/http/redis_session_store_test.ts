/**
 * The sessions of a cluster, with a real `redis-server`: two stores on two connections are two instances, each
 * with its own `Auth` for the same token, as two shiplog processes would have.
 */

import assert from "node:assert/strict";
import { RedisConnection } from "../redis/redis_connection.ts";
import { REDIS_TEST, type RedisServer, startRedisServer } from "../testing/redis_server.ts";
import { waitFor, withDeadline } from "../testing/test_helpers.ts";
import { Auth, type AuthOptions } from "./auth.ts";
import { RedisSessionStore } from "./redis_session_store.ts";
import { parseUsersFile } from "./users_file.ts";

const TOKEN = "a-token-long-enough-for-shiplog";
const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

interface Instance {
  connection: RedisConnection;
  store: RedisSessionStore;
  auth: Auth;
}

/** Two instances on `redis`; closed when the returned disposable is. */
async function twoInstances(
  redis: RedisServer,
  refreshMs?: number,
  options: AuthOptions = {},
): Promise<[Instance, Instance] & AsyncDisposable> {
  const open = async (): Promise<Instance> => {
    const connection = await RedisConnection.connect(redis.url, {
      commandTimeoutMs: 500,
      connectTimeoutMs: 200,
    });
    const store = await RedisSessionStore.open(connection, { refreshMs });
    return { connection, store, auth: Auth.create(TOKEN, store, options) };
  };
  const instances = [await open(), await open()] as [Instance, Instance] & AsyncDisposable;
  instances[Symbol.asyncDispose] = () => {
    for (const { connection, store } of instances) {
      store.close();
      connection.close();
    }
    return Promise.resolve();
  };
  return instances;
}

/** A request carrying the session of a `Set-Cookie` value. */
function withCookie(setCookie: string): Request {
  return new Request("http://localhost/", { headers: { cookie: setCookie.split(";")[0] } });
}

async function check(instance: Instance, request: Request): Promise<string> {
  return await instance.auth.check(request, "127.0.0.1");
}

Deno.test({
  name:
    "RedisSessionStore: a cookie signed on one instance passes on another; a sign-out on one holds on both",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using instances = await twoInstances(redis);
    const [a, b] = instances;
    assert.deepEqual(a.store.secret, b.store.secret);
    assert.match(await redis.cli("GET", "shiplog:sessions:secret"), /^[A-Za-z0-9+/]{43}=$/);

    const signedOnA = withCookie(a.auth.sessionCookie());
    const other = withCookie(a.auth.sessionCookie());
    assert.equal(await check(b, signedOnA), "ok");
    await b.auth.signOut(signedOnA);
    assert.equal(await check(a, signedOnA), "missing");
    assert.equal(await check(b, signedOnA), "missing");
    assert.equal(await check(a, other), "ok", "another session stays valid");
    assert.equal(await redis.cli("ZCARD", "shiplog:sessions:revoked"), "1");
    // The key goes when its last revocation would have expired anyway: the session's 168 hours.
    const ttl = Number(await redis.cli("PTTL", "shiplog:sessions:revoked"));
    assert.ok(ttl > 167 * 3_600_000 && ttl <= 168 * 3_600_000, `PTTL ${ttl}`);
  },
});

Deno.test({
  name: "RedisSessionStore: a user's session is theirs on every instance; signed out on one, out on both",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    const users = parseUsersFile("alice:alices-own-token\nbob:bobs-own-token", "users");
    await using instances = await twoInstances(redis, undefined, { users });
    const [a, b] = instances;
    const alice = withCookie(a.auth.sessionCookie("alice"));
    const aliceElsewhere = withCookie(a.auth.sessionCookie("alice"));
    const bob = withCookie(b.auth.sessionCookie("bob"));
    assert.deepEqual(await b.auth.identify(alice, "127.0.0.1"), { user: "alice", via: "session" });
    assert.deepEqual(await a.auth.identify(bob, "127.0.0.1"), { user: "bob", via: "session" });
    await b.auth.signOut(alice);
    assert.equal(await a.auth.identify(alice, "127.0.0.1"), "missing");
    assert.equal(await b.auth.identify(alice, "127.0.0.1"), "missing");
    assert.deepEqual(await a.auth.identify(aliceElsewhere, "127.0.0.1"), { user: "alice", via: "session" });
    // An instance restarted without alice in its file refuses her sessions; bob's still pass there.
    const withoutAlice = Auth.create(TOKEN, b.store, { users: [users[1]] });
    assert.equal(await withoutAlice.identify(aliceElsewhere, "127.0.0.1"), "missing");
    assert.deepEqual(await withoutAlice.identify(bob, "127.0.0.1"), { user: "bob", via: "session" });
  },
});

Deno.test({
  name: "RedisSessionStore prunes expired revocations and moves the key's expiry to the latest",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using instances = await twoInstances(redis);
    const [a, b] = instances;
    await a.store.revoke("short", Date.now() + 200);
    await b.store.revoke("never", Date.now() - 1);
    assert.equal(await b.store.isRevoked("short"), true);
    assert.equal(await b.store.isRevoked("never"), false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await b.store.isRevoked("short"), false);
    await b.store.revoke("long", Date.now() + 60_000);
    assert.equal(await redis.cli("ZRANGE", "shiplog:sessions:revoked", "0", "-1"), "long");
    const ttl = Number(await redis.cli("PTTL", "shiplog:sessions:revoked"));
    assert.ok(ttl > 55_000 && ttl <= 60_000, `PTTL ${ttl}`);
  },
});

Deno.test({
  name:
    "RedisSessionStore while Redis is away: checks answer at once from what is known; a sign-out reaches the others when it is back",
  ...REDIS_TEST,
  async fn(t) {
    await using redis = await startRedisServer();
    // Every check reads the whole set of revocations: so what one knows is what Redis had at its last check.
    await using instances = await twoInstances(redis, 0);
    const [a, b] = instances;
    const revokedEarlier = withCookie(a.auth.sessionCookie());
    const valid = withCookie(a.auth.sessionCookie());
    const signedOutMeanwhile = withCookie(a.auth.sessionCookie());
    await a.auth.signOut(revokedEarlier);
    // b checks another session, and so reads a's sign-out.
    assert.equal(await check(b, valid), "ok");

    await redis.stop();
    await waitFor(
      "both instances to see Redis gone",
      () => !!a.connection.problem && !!b.connection.problem,
      WAIT,
    );

    await t.step(
      "a valid session passes, one revoked earlier stays refused, on both, without waiting",
      async () => {
        for (const instance of [a, b]) {
          const started = performance.now();
          assert.equal(await withDeadline("a check", check(instance, valid), 1000), "ok");
          assert.equal(await withDeadline("a check", check(instance, revokedEarlier), 1000), "missing");
          assert.ok(performance.now() - started < 100, "answered from memory");
        }
      },
    );

    await t.step("a sign-out while Redis is away holds on its instance at once", async () => {
      const cookie = await withDeadline("a sign-out", a.auth.signOut(signedOutMeanwhile), 2000);
      assert.match(cookie, /Max-Age=0/);
      assert.equal(await check(a, signedOutMeanwhile), "missing");
      // The other instance cannot know yet: it trusts the signature.
      assert.equal(await check(b, signedOutMeanwhile), "ok");
    });

    await t.step("Redis back: the sign-out is written and holds on the other instance too", async () => {
      await redis.start();
      await waitFor(
        "the other instance to refuse the session",
        async () => await check(b, signedOutMeanwhile) === "missing",
        WAIT,
      );
      assert.equal(await check(b, valid), "ok");
      assert.equal(await check(b, revokedEarlier), "missing");
    });
  },
});

Deno.test({
  name: "RedisSessionStore after Redis lost its data: a new secret on every instance, and every session ends",
  ...REDIS_TEST,
  async fn() {
    await using redis = await startRedisServer();
    await using instances = await twoInstances(redis);
    const [a, b] = instances;
    const before = a.store.secret;
    const session = withCookie(a.auth.sessionCookie());
    await a.auth.signOut(withCookie(a.auth.sessionCookie()));

    await redis.stop();
    await redis.start({ wipe: true });
    await waitFor(
      "both instances on one new secret",
      () => !equal(a.store.secret, before) && equal(a.store.secret, b.store.secret),
      WAIT,
    );
    assert.equal(await redis.cli("GET", "shiplog:sessions:secret"), a.store.secret.toBase64());
    assert.equal(await check(a, session), "missing");
    assert.equal(await check(b, session), "missing");
    const fresh = withCookie(b.auth.sessionCookie());
    assert.equal(await check(a, fresh), "ok");
  },
});

function equal(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((byte, index) => byte === y[index]);
}

Deno.test({
  name: "RedisSessionStore.sameTokenAsBefore() tells an instance whose token differs from the last one's",
  ...REDIS_TEST,
  fn: async () => {
    await using redis = await startRedisServer({ appendOnly: false });
    const first = await RedisConnection.connect(redis.url);
    const second = await RedisConnection.connect(redis.url);
    try {
      const a = await RedisSessionStore.open(first);
      const b = await RedisSessionStore.open(second);
      assert.equal(await a.sameTokenAsBefore("the-cluster-token"), true, "the first one to say");
      assert.equal(await b.sameTokenAsBefore("the-cluster-token"), true);
      assert.equal(await b.sameTokenAsBefore("another-token-1"), false);
      // Changed on purpose: the next instance restarted with it is not told again.
      assert.equal(await a.sameTokenAsBefore("another-token-1"), true);
      const mark = await redis.cli("GET", "shiplog:sessions:token");
      assert.match(mark, /^[0-9a-f]{64}$/, "a keyed hash, not the token");
      a.close();
      b.close();
    } finally {
      await first.close();
      await second.close();
    }
  },
});
