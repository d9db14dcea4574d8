import assert from "node:assert/strict";
import { Auth, type AuthOptions, credentialsMark, readCookie, SESSION_COOKIE } from "./auth.ts";
import { network } from "./auth_throttle.ts";
import { TrustedProxies } from "./client_address.ts";
import { FileSessionStore } from "./file_session_store.ts";
import { HttpError } from "./http_error.ts";
import { parseUsersFile } from "./users_file.ts";
import { delay, makeTempDir } from "../testing/test_helpers.ts";

const TOKEN = "correct-horse-battery";
const BEARER = { authorization: `Bearer ${TOKEN}` };

function request(headers: Record<string, string> = {}): Request {
  return new Request("http://127.0.0.1/api/deployments", { headers });
}

/** The value the `Set-Cookie` of a new session carries. */
function sessionValue(setCookie: string): string {
  const match = new RegExp(`^${SESSION_COOKIE}=([^;]*);`).exec(setCookie);
  assert.ok(match, setCookie);
  return match[1];
}

function withSession(value: string): Request {
  return request({ cookie: `${SESSION_COOKIE}=${value}` });
}

/** An `Auth` with its sessions in a new temporary directory, removed when disposed. */
async function tempAuth(options: AuthOptions = {}, token = TOKEN) {
  const dir = await makeTempDir();
  const auth = Auth.create(token, await FileSessionStore.open(dir.path), options);
  return { auth, dir: dir.path, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

Deno.test("Auth.check() accepts the right bearer token", async () => {
  await using temp = await tempAuth();
  assert.equal(await temp.auth.check(request(BEARER), "a"), "ok");
  assert.equal(await temp.auth.check(request({ authorization: `bearer  ${TOKEN} ` }), "a"), "ok");
  await using spaced = await tempAuth({}, "correct horse battery staple");
  const headers = { authorization: "Bearer correct horse battery staple" };
  assert.equal(await spaced.auth.check(request(headers), "a"), "ok");
});

Deno.test("Auth.check() calls a wrong bearer token wrong and no credentials missing", async () => {
  await using temp = await tempAuth();
  const { auth } = temp;
  assert.equal(await auth.check(request({ authorization: "Bearer correct-horse-battery!" }), "a"), "wrong");
  assert.equal(await auth.check(request({ authorization: `Basic ${btoa(`x:${TOKEN}`)}` }), "a"), "missing");
  assert.equal(await auth.check(request({ authorization: `Bearer ${TOKEN} extra` }), "a"), "wrong");
  assert.equal(await auth.check(request(), "a"), "missing");
  assert.equal(await auth.check(request({ cookie: "other=1" }), "a"), "missing");
});

Deno.test("a session cookie is signed, random, not the token, and accepted", async () => {
  await using temp = await tempAuth({ sessionMs: 3_600_000 });
  const { auth } = temp;
  const cookie = auth.sessionCookie();
  const value = sessionValue(cookie);
  assert.ok(!cookie.includes(TOKEN), cookie);
  assert.match(value, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  assert.match(cookie, /; HttpOnly(;|$)/);
  assert.match(cookie, /; SameSite=Lax(;|$)/);
  assert.match(cookie, /; Path=\/(;|$)/);
  assert.match(cookie, /; Max-Age=3600(;|$)/);
  assert.doesNotMatch(cookie, /Secure/);
  const session = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(value.split(".")[0], {
    alphabet: "base64url",
  })));
  assert.deepEqual(Object.keys(session), ["id", "iat", "exp"]);
  assert.equal(session.exp - session.iat, 3_600_000);
  assert.ok(Math.abs(session.iat - Date.now()) < 60_000);
  assert.equal(await auth.check(withSession(value), "a"), "ok");
  assert.equal(
    await auth.check(request({ cookie: `theme=dark; ${SESSION_COOKIE}=${value}; x=y` }), "a"),
    "ok",
  );
  assert.notEqual(sessionValue(auth.sessionCookie()), value, "each sign-in is a session of its own");
  const { secret } = await FileSessionStore.open(temp.dir);
  assert.ok(!value.includes(secret.toBase64({ alphabet: "base64url", omitPadding: true })));
  const secure = Auth.create(TOKEN, await FileSessionStore.open(temp.dir), { secure: true });
  assert.match(secure.sessionCookie(), /; Secure(;|$)/);
});

Deno.test("a session holds on a restart with the same token and secret, and ends with either changed", async () => {
  await using temp = await tempAuth();
  const value = sessionValue(temp.auth.sessionCookie());
  const again = Auth.create(TOKEN, await FileSessionStore.open(temp.dir));
  assert.equal(await again.check(withSession(value), "a"), "ok");
  const newToken = Auth.create(`${TOKEN}2`, await FileSessionStore.open(temp.dir));
  assert.equal(await newToken.check(withSession(value), "a"), "missing");
  await using elsewhere = await tempAuth();
  assert.equal(await elsewhere.auth.check(withSession(value), "a"), "missing", "another secret");
});

Deno.test("a cookie that is not a session is none, and made-up ones never lock the address out", async () => {
  await using temp = await tempAuth({ maxFailures: 3 });
  const { auth } = temp;
  const value = sessionValue(auth.sessionCookie());
  const [payload, mac] = value.split(".");
  const forged = [
    TOKEN,
    "",
    ".",
    payload,
    `${payload}.`,
    `${payload}.${mac}.x`,
    `${payload}x.${mac}`,
    `${payload}.${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`,
    `${btoa('{"id":"x","iat":0,"exp":99999999999999}').replaceAll("=", "")}.${mac}`,
    "z".repeat(10_000),
  ];
  for (let round = 0; round < 5; round++) {
    for (const wrong of forged) assert.equal(await auth.check(withSession(wrong), "tabs"), "missing", wrong);
  }
  // 50 cookies that are no session later, the right token passes at once, and the session too.
  const started = performance.now();
  assert.equal(await auth.check(request(BEARER), "tabs"), "ok");
  assert.equal(await auth.signIn(TOKEN, "tabs"), "ok");
  assert.ok(performance.now() - started < 500, "not even slowed down");
  assert.equal(await auth.check(withSession(value), "tabs"), "ok");
});

Deno.test("a session ends at its expiry, and a shorter lifetime applies to sessions already out", async () => {
  await using temp = await tempAuth({ sessionMs: 150 });
  const value = sessionValue(temp.auth.sessionCookie());
  assert.equal(await temp.auth.check(withSession(value), "a"), "ok");
  await delay(200);
  assert.equal(await temp.auth.check(withSession(value), "a"), "missing");
  const long = Auth.create(TOKEN, await FileSessionStore.open(temp.dir), { sessionMs: 3_600_000 });
  const longValue = sessionValue(long.sessionCookie());
  const short = Auth.create(TOKEN, await FileSessionStore.open(temp.dir), { sessionMs: 1 });
  await delay(5);
  assert.equal(await long.check(withSession(longValue), "a"), "ok");
  assert.equal(await short.check(withSession(longValue), "a"), "missing");
});

Deno.test("signOut() revokes the session it is given, for good, and clears the cookie", async () => {
  await using temp = await tempAuth();
  const { auth } = temp;
  const signedOut = sessionValue(auth.sessionCookie());
  const other = sessionValue(auth.sessionCookie());
  const cleared = await auth.signOut(withSession(signedOut));
  assert.match(cleared, new RegExp(`^${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax$`));
  assert.equal(await auth.check(withSession(signedOut), "a"), "missing");
  assert.equal(await auth.check(withSession(other), "a"), "ok", "another sign-in is not signed out");
  const restarted = Auth.create(TOKEN, await FileSessionStore.open(temp.dir));
  assert.equal(await restarted.check(withSession(signedOut), "a"), "missing");
  assert.equal(await restarted.check(withSession(other), "a"), "ok");
  // Without a session, or with something else, there is nothing to revoke, and no harm done.
  assert.match(await auth.signOut(request()), /Max-Age=0/);
  assert.match(await auth.signOut(withSession("junk")), /Max-Age=0/);
});

Deno.test("Auth.check() accepts a session cookie beside a proxy's own Basic credentials", async () => {
  await using temp = await tempAuth();
  const headers = {
    authorization: "Basic dXNlcjpwYXNz",
    cookie: `${SESSION_COOKIE}=${sessionValue(temp.auth.sessionCookie())}`,
  };
  assert.equal(await temp.auth.check(request(headers), "a"), "ok");
});

Deno.test("comparing secrets of any length never throws", async () => {
  await using temp = await tempAuth({ maxFailures: 1000 });
  const { auth } = temp;
  for (const candidate of ["", "x", TOKEN.slice(0, -1), `${TOKEN}x`, "y".repeat(100_000), "é€𝄞\0"]) {
    assert.equal(auth.matches(candidate), false, candidate.slice(0, 20));
    assert.equal(await auth.signIn(candidate, `addr-${candidate.length}`), "wrong");
  }
  assert.equal(auth.matches(TOKEN), true);
  const long = "z".repeat(10_000);
  assert.equal(await auth.check(request({ authorization: `Bearer ${long}` }), "d"), "wrong");
});

Deno.test("past maxFailures wrong tokens an address is slowed down, yet the right token passes", async () => {
  await using temp = await tempAuth({ maxFailures: 3, intervalMs: 100 });
  const { auth } = temp;
  for (let i = 0; i < 3; i++) {
    assert.equal(await auth.check(request({ authorization: "Bearer nope-nope" }), "10.0.0.1"), "wrong");
  }
  // Wrong tokens now get 429, the right one still passes; sign-in and bearer are one count.
  assert.equal(await auth.check(request({ authorization: "Bearer nope-nope" }), "10.0.0.1"), "throttled");
  assert.equal(await auth.signIn("nope-nope", "10.0.0.1"), "throttled");
  assert.equal(await auth.check(request(BEARER), "10.0.0.1"), "ok");
  assert.equal(await auth.signIn(TOKEN, "10.0.0.1"), "ok");
  assert.ok(auth.retryAfterSeconds("10.0.0.1") >= 1);
  assert.ok(auth.retryAfterSeconds("10.0.0.1") <= 60);
  assert.equal(await auth.check(request({ authorization: "Bearer nope-nope" }), "10.0.0.2"), "wrong");
  assert.equal(await auth.check(request(), "10.0.0.1"), "missing", "no credentials is no guess");
});

Deno.test("a throttled address gets one answer per interval, however many it asks at once", async () => {
  const intervalMs = 200;
  await using temp = await tempAuth({ maxFailures: 1, intervalMs, maxWaiting: 4 });
  const { auth } = temp;
  assert.equal(await auth.signIn("guess-0000", "10.0.0.6"), "wrong");
  const started = performance.now();
  const answeredAt: number[] = [];
  const guesses = Array.from({ length: 10 }, async (_, i) => {
    const result = await auth.signIn(`guess-${i}`, "10.0.0.6");
    if (result === "throttled") answeredAt.push(performance.now() - started);
    return result;
  });
  const results = await Promise.all(guesses);
  assert.deepEqual(results, Array(10).fill("throttled"));
  // Four waited their turn (the first at once), the six past maxWaiting were refused at once.
  answeredAt.sort((a, b) => a - b);
  const paced = answeredAt.slice(6);
  assert.ok(paced[3] - answeredAt[0] >= 3 * intervalMs - 20, `answered at ${answeredAt.map(Math.round)}`);
  // The right token, sent behind a crowd of guesses, gets in once its turn comes.
  const crowd = Array.from({ length: 3 }, (_, i) => auth.signIn(`guess-more-${i}`, "10.0.0.6"));
  assert.equal(await auth.signIn(TOKEN, "10.0.0.6"), "ok");
  assert.deepEqual(await Promise.all(crowd), Array(3).fill("throttled"));
});

Deno.test("an IPv6 client is throttled by its /64: a fresh address of the same network is no fresh start", async () => {
  await using temp = await tempAuth({ maxFailures: 2, intervalMs: 10 });
  const { auth } = temp;
  assert.equal(await auth.signIn("wrong-token", "2001:db8:0:1::a"), "wrong");
  assert.equal(await auth.signIn("wrong-token", "2001:db8:0:1:ffff:1:2:3"), "wrong");
  assert.equal(await auth.signIn("wrong-token", "2001:0db8:0000:0001::b"), "throttled", "same /64");
  assert.equal(await auth.signIn("wrong-token", "2001:db8:0:2::a"), "wrong", "another /64");
  assert.equal(await auth.signIn("wrong-token", "10.0.0.9"), "wrong");
});

Deno.test("network() is an IPv4 address itself and an IPv6 address's /64", () => {
  assert.equal(network("10.0.0.9"), "10.0.0.9");
  assert.equal(network("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(network("2001:0db8:0000:0001:0:0:0:1"), "2001:db8:0:1::/64");
  assert.equal(network("::1"), "0:0:0:0::/64");
  assert.equal(network("fe80:1:2:3:4::"), "fe80:1:2:3::/64");
  assert.equal(network("64:ff9b::192.0.2.1"), "64:ff9b:0:0::/64");
});

Deno.test("missing credentials do not count as failures", async () => {
  await using temp = await tempAuth({ maxFailures: 2 });
  for (let i = 0; i < 10; i++) assert.equal(await temp.auth.check(request(), "10.0.0.3"), "missing");
  assert.equal(await temp.auth.check(request({ authorization: "Bearer wrong-token" }), "10.0.0.3"), "wrong");
});

Deno.test("a throttled address recovers once windowMs has passed", async () => {
  await using temp = await tempAuth({ maxFailures: 2, windowMs: 200 });
  const { auth } = temp;
  assert.equal(await auth.signIn("wrong-token", "10.0.0.5"), "wrong");
  assert.equal(await auth.signIn("wrong-token", "10.0.0.5"), "wrong");
  assert.equal(await auth.signIn("wrong-token", "10.0.0.5"), "throttled");
  assert.equal(auth.retryAfterSeconds("10.0.0.5"), 1);
  await delay(250);
  assert.equal(await auth.signIn("wrong-token", "10.0.0.5"), "wrong");
});

Deno.test("Auth.create() rejects a token shorter than 8 characters, or with spaces at its ends", async () => {
  await using temp = await tempAuth();
  const sessions = await FileSessionStore.open(temp.dir);
  for (const bad of ["", "a", "1234567", " 12345678", "12345678 ", "1234\n5678", "pässwort-123"]) {
    assert.throws(() => Auth.create(bad, sessions), RangeError, JSON.stringify(bad));
  }
  Auth.create("12345678", sessions);
});

Deno.test("readCookie() finds a cookie among others and keeps '=' in its value", () => {
  const req = request({ cookie: "a=1; shiplog_session=ab=cd; b=2" });
  assert.equal(readCookie(req, SESSION_COOKIE), "ab=cd");
  assert.equal(readCookie(req, "c"), undefined);
  assert.equal(readCookie(request(), "a"), undefined);
});

const USERS = parseUsersFile(
  `alice:alices-own-token\nbob:sha256:${
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode("bobs-own-token")),
    ).toHex()
  }`,
  "users",
);

/** An `Auth` for {@linkcode USERS} (and the unnamed `token`, unless `null`) on the sessions of `dir`. */
async function usersAuth(dir: string, options: AuthOptions = {}, token: string | null = TOKEN) {
  return Auth.create(token ?? undefined, await FileSessionStore.open(dir), { users: USERS, ...options });
}

Deno.test("Auth.identify() names the user whose own token a bearer or the sign-in form carries", async () => {
  await using temp = await tempAuth();
  const auth = await usersAuth(temp.dir);
  const bearer = (token: string) => request({ authorization: `Bearer ${token}` });
  assert.deepEqual(await auth.identify(bearer("alices-own-token"), "a"), { user: "alice", via: "token" });
  assert.deepEqual(await auth.identify(bearer("bobs-own-token"), "a"), { user: "bob", via: "token" });
  assert.deepEqual(
    await auth.identify(bearer(TOKEN), "a"),
    { user: null, via: "token" },
    "the unnamed token",
  );
  assert.equal(await auth.identify(bearer("alices-own-token!"), "a"), "wrong");
  assert.equal(await auth.identify(request(), "a"), "missing");
  assert.deepEqual(await auth.byToken("bobs-own-token", "a"), { user: "bob", via: "token" });
  assert.equal(await auth.signIn("alices-own-token", "a"), "ok");
  assert.equal(auth.matches("bobs-own-token"), true);
  // Users alone, without the unnamed token: it is just a wrong one then.
  const usersOnly = await usersAuth(temp.dir, {}, null);
  assert.equal(await usersOnly.identify(bearer(TOKEN), "a"), "wrong");
  assert.deepEqual(await usersOnly.identify(bearer("alices-own-token"), "a"), {
    user: "alice",
    via: "token",
  });
});

Deno.test("a user's session carries their name, and the unnamed token's none, as before there were users", async () => {
  await using temp = await tempAuth();
  const auth = await usersAuth(temp.dir);
  const alice = sessionValue(auth.sessionCookie("alice"));
  const unnamed = sessionValue(auth.sessionCookie());
  const payload = (value: string) =>
    JSON.parse(
      new TextDecoder().decode(Uint8Array.fromBase64(value.split(".")[0], { alphabet: "base64url" })),
    );
  assert.deepEqual(Object.keys(payload(alice)), ["id", "iat", "exp", "user"]);
  assert.equal(payload(alice).user, "alice");
  assert.deepEqual(Object.keys(payload(unnamed)), ["id", "iat", "exp"]);
  assert.deepEqual(await auth.identify(withSession(alice), "a"), { user: "alice", via: "session" });
  assert.deepEqual(await auth.identify(withSession(unnamed), "a"), { user: null, via: "session" });
  // A session made by the single-token shiplog of before passes as the unnamed token's.
  const before = sessionValue(temp.auth.sessionCookie());
  assert.deepEqual(await auth.identify(withSession(before), "a"), { user: null, via: "session" });
  assert.throws(() => auth.sessionCookie("mallory"), new TypeError("Cannot make a session for mallory"));
  const usersOnly = await usersAuth(temp.dir, {}, null);
  assert.throws(() => usersOnly.sessionCookie(), new TypeError("Cannot make a session for the token"));
  assert.equal(await usersOnly.identify(withSession(unnamed), "a"), "missing", "no unnamed token any more");
});

Deno.test("a session cannot be made another user's by changing the name in it", async () => {
  await using temp = await tempAuth();
  const auth = await usersAuth(temp.dir);
  const [payload, mac] = sessionValue(auth.sessionCookie("alice")).split(".");
  const session = JSON.parse(
    new TextDecoder().decode(Uint8Array.fromBase64(payload, { alphabet: "base64url" })),
  );
  const encode = (value: unknown) =>
    new TextEncoder().encode(JSON.stringify(value)).toBase64({ alphabet: "base64url", omitPadding: true });
  for (
    const forged of [{ ...session, user: "bob" }, { ...session, user: undefined }, { ...session, user: 7 }]
  ) {
    assert.equal(await auth.identify(withSession(`${encode(forged)}.${mac}`), "a"), "missing");
  }
  assert.equal(await auth.identify(withSession(`${encode("alice")}.${mac}`), "a"), "missing");
  assert.equal(await auth.identify(withSession(`%%%.${mac}`), "a"), "missing");
});

Deno.test("signing a user out, their new token, or their line taken out of the file ends their sessions only", async () => {
  await using temp = await tempAuth();
  const auth = await usersAuth(temp.dir);
  const alice = sessionValue(auth.sessionCookie("alice"));
  const aliceElsewhere = sessionValue(auth.sessionCookie("alice"));
  const bob = sessionValue(auth.sessionCookie("bob"));
  const unnamed = sessionValue(auth.sessionCookie());
  await auth.signOut(withSession(aliceElsewhere));
  assert.equal(await auth.identify(withSession(aliceElsewhere), "a"), "missing", "signed out");
  assert.deepEqual(await auth.identify(withSession(alice), "a"), { user: "alice", via: "session" });

  // Restarted with alice's line gone: her sessions end; bob's and the unnamed token's hold.
  const withoutAlice = Auth.create(TOKEN, await FileSessionStore.open(temp.dir), { users: [USERS[1]] });
  assert.equal(await withoutAlice.identify(withSession(alice), "a"), "missing");
  assert.deepEqual(await withoutAlice.identify(withSession(bob), "a"), { user: "bob", via: "session" });
  assert.deepEqual(await withoutAlice.identify(withSession(unnamed), "a"), { user: null, via: "session" });
  // Restarted with a new token for alice: the same.
  const renewed = parseUsersFile("alice:alices-new-token\nbob:bobs-own-token", "users");
  const newToken = Auth.create(TOKEN, await FileSessionStore.open(temp.dir), { users: renewed });
  assert.equal(await newToken.identify(withSession(alice), "a"), "missing");
  assert.deepEqual(await newToken.identify(withSession(bob), "a"), { user: "bob", via: "session" });
  // And the signed-out one stays out after the restart.
  const restarted = await usersAuth(temp.dir);
  assert.equal(await restarted.identify(withSession(aliceElsewhere), "a"), "missing");
  assert.deepEqual(await restarted.identify(withSession(alice), "a"), { user: "alice", via: "session" });
});

Deno.test("a trusted proxy's header names the user; from any other peer it is ignored", async () => {
  await using temp = await tempAuth();
  const header = { name: "X-Forwarded-User", proxies: TrustedProxies.parse(["10.0.0.0/8", "fd00::/8"]) };
  const auth = await usersAuth(temp.dir, { header });
  const named = (name: string, headers: Record<string, string> = {}) =>
    request({ "x-forwarded-user": name, ...headers });
  assert.deepEqual(await auth.identify(named("carol@example.com"), "1.2.3.4", "10.1.2.3"), {
    user: "carol@example.com",
    via: "header",
  });
  assert.deepEqual(await auth.identify(named(" dave "), "1.2.3.4", "::ffff:10.0.0.1"), {
    user: "dave",
    via: "header",
  });
  assert.deepEqual(await auth.identify(named("erin"), "1.2.3.4", "fd00::1"), { user: "erin", via: "header" });
  // From elsewhere, or forwarded for by a trusted proxy without being one: no one, or what else it carries.
  assert.equal(await auth.identify(named("carol"), "10.1.2.3", "192.168.1.5"), "missing");
  assert.equal(await auth.identify(named("carol"), "127.0.0.1", "127.0.0.1"), "missing");
  const withToken = named("carol", { authorization: "Bearer alices-own-token" });
  assert.deepEqual(await auth.identify(withToken, "192.168.1.5", "192.168.1.5"), {
    user: "alice",
    via: "token",
  });
  // An empty header from the proxy is no header; one naming nobody fit is the proxy's mistake: 400.
  assert.equal(await auth.identify(named(""), "1.2.3.4", "10.1.2.3"), "missing");
  await assert.rejects(
    () => auth.identify(named("<script>"), "1.2.3.4", "10.1.2.3"),
    new HttpError(
      400,
      'Cannot take the user from X-Forwarded-User: Cannot use user name "<script>": expected 1 to 100 ' +
        "letters, digits, or . _ @ + -, starting with a letter or digit",
    ),
  );
  // The header alone lets people in: then nobody can sign in with a token.
  const headerOnly = Auth.create(undefined, await FileSessionStore.open(temp.dir), { header });
  assert.equal(headerOnly.takesTokens, false);
  assert.equal(headerOnly.headerName, "X-Forwarded-User");
  assert.equal(await headerOnly.identify(request({ authorization: `Bearer ${TOKEN}` }), "a", "a"), "wrong");
  assert.deepEqual(await headerOnly.identify(named("frank"), "a", "10.0.0.9"), {
    user: "frank",
    via: "header",
  });
});

Deno.test("Auth.create() refuses to let nobody in, and a user's token that is the unnamed token too", async () => {
  await using temp = await tempAuth();
  const sessions = await FileSessionStore.open(temp.dir);
  assert.throws(
    () => Auth.create(undefined, sessions, { users: [] }),
    new TypeError("Cannot control access without a token, a users file or an auth header"),
  );
  assert.throws(
    () => Auth.create("alices-own-token", sessions, { users: USERS }),
    new RangeError('Cannot use the token of "alice": it is the unnamed --token too; give each their own'),
  );
});

Deno.test("credentialsMark() is the token alone without users, and changes with any user or token", () => {
  assert.equal(credentialsMark(TOKEN), TOKEN);
  assert.equal(credentialsMark(undefined), "");
  const marks = new Set([
    credentialsMark(TOKEN, USERS),
    credentialsMark(undefined, USERS),
    credentialsMark(TOKEN, [USERS[0]]),
    credentialsMark(TOKEN, parseUsersFile("alice:alices-new-token\nbob:bobs-own-token", "u")),
  ]);
  assert.equal(marks.size, 4);
  assert.equal(
    credentialsMark(TOKEN, [...USERS].reverse()),
    credentialsMark(TOKEN, USERS),
    "order is no change",
  );
  assert.ok(!credentialsMark(TOKEN, USERS).includes(TOKEN), "the token itself is not in it");
});
