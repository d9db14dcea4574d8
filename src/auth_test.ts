import assert from "node:assert/strict";
import { Auth, readCookie, SESSION_COOKIE } from "./auth.ts";

const TOKEN = "correct-horse-battery";

function request(headers: Record<string, string> = {}): Request {
  return new Request("http://127.0.0.1/api/deployments", { headers });
}

/** The value the `Set-Cookie` of a signed-in browser carries. */
function sessionValue(auth: Auth): string {
  const match = new RegExp(`^${SESSION_COOKIE}=([^;]*);`).exec(auth.sessionCookie());
  assert.ok(match, auth.sessionCookie());
  return match[1];
}

Deno.test("Auth.check() accepts the right bearer token", async () => {
  const auth = await Auth.create(TOKEN);
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "a"), "ok");
  assert.equal(auth.check(request({ authorization: `bearer  ${TOKEN} ` }), "a"), "ok");
  const spaced = await Auth.create("correct horse battery staple");
  assert.equal(spaced.check(request({ authorization: "Bearer correct horse battery staple" }), "a"), "ok");
});

Deno.test("Auth.check() calls a wrong bearer token wrong and no credentials missing", async () => {
  const auth = await Auth.create(TOKEN);
  assert.equal(auth.check(request({ authorization: "Bearer correct-horse-battery!" }), "a"), "wrong");
  assert.equal(auth.check(request({ authorization: `Basic ${btoa(`x:${TOKEN}`)}` }), "a"), "missing");
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN} extra` }), "a"), "wrong");
  assert.equal(auth.check(request(), "a"), "missing");
  assert.equal(auth.check(request({ cookie: "other=1" }), "a"), "missing");
});

Deno.test("the session cookie is derived from the token, is not the token, and is accepted", async () => {
  const auth = await Auth.create(TOKEN);
  const cookie = auth.sessionCookie();
  const value = sessionValue(auth);
  assert.ok(!cookie.includes(TOKEN), cookie);
  assert.match(value, /^[0-9a-f]{64}$/);
  assert.match(cookie, /; HttpOnly(;|$)/);
  assert.match(cookie, /; SameSite=Lax(;|$)/);
  assert.match(cookie, /; Path=\/(;|$)/);
  assert.doesNotMatch(cookie, /Secure/);
  assert.equal(auth.check(request({ cookie: `${SESSION_COOKIE}=${value}` }), "a"), "ok");
  assert.equal(auth.check(request({ cookie: `theme=dark; ${SESSION_COOKIE}=${value}; x=y` }), "a"), "ok");
  // Derived, so stable across restarts with the same token, and different for another token.
  assert.equal(sessionValue(await Auth.create(TOKEN)), value);
  assert.notEqual(sessionValue(await Auth.create(`${TOKEN}2`)), value);
  assert.match((await Auth.create(TOKEN, { secure: true })).sessionCookie(), /; Secure(;|$)/);
});

Deno.test("Auth.check() takes a wrong session cookie for none, and counts each wrong value once", async (t) => {
  const auth = await Auth.create(TOKEN, { maxFailures: 3 });
  const value = sessionValue(auth);
  await t.step("a stale session resent by every retry of open tabs does not lock the address out", () => {
    for (let retry = 0; retry < 20; retry++) {
      assert.equal(
        auth.check(request({ cookie: `${SESSION_COOKIE}=${value.slice(0, -1)}0` }), "tabs"),
        "missing",
      );
    }
    assert.equal(auth.signIn(TOKEN, "tabs"), "ok");
  });
  await t.step("cookies computed from guessed tokens are throttled like the guesses", async () => {
    for (const guess of ["guess-one-1", "guess-two-2", "guess-three-3"]) {
      const cookie = sessionValue(await Auth.create(guess));
      assert.equal(auth.check(request({ cookie: `${SESSION_COOKIE}=${cookie}` }), "attacker"), "missing");
    }
    const right = request({ cookie: `${SESSION_COOKIE}=${value}` });
    assert.equal(auth.check(right, "attacker"), "throttled");
  });
  await t.step("other wrong values, and the token itself as a cookie, are none", () => {
    for (const wrong of [TOKEN, value.toUpperCase(), "", "=" + value]) {
      assert.equal(
        auth.check(request({ cookie: `${SESSION_COOKIE}=${wrong}` }), `b${wrong}`),
        "missing",
        wrong,
      );
    }
  });
});

Deno.test("Auth.check() accepts a session cookie beside a proxy's own Basic credentials", async () => {
  const auth = await Auth.create(TOKEN);
  const headers = { authorization: "Basic dXNlcjpwYXNz", cookie: `${SESSION_COOKIE}=${sessionValue(auth)}` };
  assert.equal(auth.check(request(headers), "a"), "ok");
});

Deno.test("comparing secrets of any length never throws", async () => {
  const auth = await Auth.create(TOKEN);
  for (const candidate of ["", "x", TOKEN.slice(0, -1), `${TOKEN}x`, "y".repeat(100_000), "é€𝄞\0"]) {
    assert.equal(auth.matches(candidate), false, candidate.slice(0, 20));
    assert.equal(auth.signIn(candidate, `addr-${candidate.length}`), "wrong");
  }
  assert.equal(auth.matches(TOKEN), true);
  const long = "z".repeat(10_000);
  assert.equal(auth.check(request({ cookie: `${SESSION_COOKIE}=${long}` }), "c"), "missing");
  assert.equal(auth.check(request({ authorization: `Bearer ${long}` }), "d"), "wrong");
});

Deno.test("after maxFailures wrong attempts an address is throttled; another address is not", async () => {
  const auth = await Auth.create(TOKEN, { maxFailures: 3 });
  for (let i = 0; i < 3; i++) {
    assert.equal(auth.check(request({ authorization: "Bearer nope-nope" }), "10.0.0.1"), "wrong");
  }
  // Even the right token is refused while throttled: the guesser cannot tell a hit from a miss.
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "10.0.0.1"), "throttled");
  assert.equal(auth.signIn(TOKEN, "10.0.0.1"), "throttled");
  assert.ok(auth.retryAfterSeconds("10.0.0.1") >= 1);
  assert.ok(auth.retryAfterSeconds("10.0.0.1") <= 60);
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "10.0.0.2"), "ok");
  assert.equal(auth.check(request(), "10.0.0.2"), "missing");
});

Deno.test("missing credentials do not count as failures", async () => {
  const auth = await Auth.create(TOKEN, { maxFailures: 2 });
  for (let i = 0; i < 10; i++) assert.equal(auth.check(request(), "10.0.0.3"), "missing");
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "10.0.0.3"), "ok");
});

Deno.test("sign-in failures and wrong bearer tokens count together", async () => {
  const auth = await Auth.create(TOKEN, { maxFailures: 2 });
  assert.equal(auth.signIn("wrong-token", "10.0.0.4"), "wrong");
  assert.equal(auth.check(request({ authorization: "Bearer wrong-token" }), "10.0.0.4"), "wrong");
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "10.0.0.4"), "throttled");
});

Deno.test("a throttled address recovers once windowMs has passed", async () => {
  const auth = await Auth.create(TOKEN, { maxFailures: 2, windowMs: 200 });
  assert.equal(auth.signIn("wrong-token", "10.0.0.5"), "wrong");
  assert.equal(auth.signIn("wrong-token", "10.0.0.5"), "wrong");
  assert.equal(auth.signIn(TOKEN, "10.0.0.5"), "throttled");
  assert.equal(auth.retryAfterSeconds("10.0.0.5"), 1);
  await new Promise((resolve) => setTimeout(resolve, 250));
  assert.equal(auth.signIn(TOKEN, "10.0.0.5"), "ok");
  assert.equal(auth.check(request({ authorization: `Bearer ${TOKEN}` }), "10.0.0.5"), "ok");
});

Deno.test("Auth.create() rejects a token shorter than 8 characters, or with spaces at its ends", async () => {
  for (const bad of ["", "a", "1234567", " 12345678", "12345678 ", "1234\n5678", "pässwort-123"]) {
    await assert.rejects(() => Auth.create(bad), RangeError, JSON.stringify(bad));
  }
  await Auth.create("12345678");
});

Deno.test("readCookie() finds a cookie among others and keeps '=' in its value", () => {
  const req = request({ cookie: "a=1; shiplog_session=ab=cd; b=2" });
  assert.equal(readCookie(req, SESSION_COOKIE), "ab=cd");
  assert.equal(readCookie(req, "c"), undefined);
  assert.equal(readCookie(request(), "a"), undefined);
});
