import assert from "node:assert/strict";
import { normalAddress, TrustedProxies } from "./client_address.ts";

Deno.test("TrustedProxies.parse() takes IPv4 and IPv6 networks and single addresses", () => {
  const proxies = TrustedProxies.parse(["10.0.0.0/8", "192.168.1.10", " fd00::/8 ", "::1", "0.0.0.0/0"]);
  for (const inside of ["10.1.2.3", "192.168.1.10", "fd12::1", "::1", "8.8.8.8"]) {
    assert.ok(proxies.includes(inside), inside);
  }
  const narrow = TrustedProxies.parse(["10.0.0.0/8", "192.168.1.10", "fd00::/8"]);
  for (const outside of ["11.0.0.1", "192.168.1.11", "fe80::1", "::1", "local", "", "junk"]) {
    assert.ok(!narrow.includes(outside), outside);
  }
  assert.ok(!TrustedProxies.parse([]).includes("127.0.0.1"));
});

Deno.test("TrustedProxies.parse() rejects what is not a network, naming the source and the entry", () => {
  for (
    const bad of [
      "10.0.0.0/33",
      "fd00::/129",
      "10.0.0.0/",
      "10.0.0/8",
      "10.0.0.256",
      "localhost",
      "",
      "1.2.3.4/8/8",
    ]
      .concat(["fe80::1%eth0", "10.0.0.0/-1", "10.0.0.0/8x", "01.2.3.4", "1.2.3.4 5"])
  ) {
    assert.throws(
      () => TrustedProxies.parse([bad], "SHIPLOG_TRUSTED_PROXY"),
      (error: Error) =>
        error instanceof RangeError &&
        error.message.startsWith(`Cannot parse SHIPLOG_TRUSTED_PROXY "${bad}": expected an IPv4 or IPv6`),
      bad,
    );
  }
});

Deno.test("clientAddress() is the peer without a trusted proxy, whatever X-Forwarded-For says", () => {
  assert.equal(TrustedProxies.parse([]).clientAddress("127.0.0.1", "203.0.113.7"), "127.0.0.1");
  const proxies = TrustedProxies.parse(["10.0.0.0/8"]);
  assert.equal(proxies.clientAddress("198.51.100.1", "203.0.113.7"), "198.51.100.1");
  assert.equal(proxies.clientAddress("10.0.0.1", null), "10.0.0.1");
  assert.equal(proxies.clientAddress("::ffff:198.51.100.1", null), "198.51.100.1");
});

Deno.test("clientAddress() walks X-Forwarded-For from the right, past trusted hops, to the first other", () => {
  const proxies = TrustedProxies.parse(["10.0.0.0/8", "fd00::/8"]);
  // A client's own header is kept by proxies, their additions go to the right: the left is not believed.
  assert.equal(proxies.clientAddress("10.0.0.1", "1.1.1.1, 203.0.113.7"), "203.0.113.7");
  assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.7, 10.0.0.2,10.0.0.3"), "203.0.113.7");
  assert.equal(proxies.clientAddress("fd00::1", "2001:DB8::7, fd00::2"), "2001:db8::7");
  // Every hop trusted: the one furthest away.
  assert.equal(proxies.clientAddress("10.0.0.1", "10.0.0.9, 10.0.0.2"), "10.0.0.9");
  // A malformed entry ends the walk at the last trusted hop.
  assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.7, unknown"), "10.0.0.1");
  assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.7, junk, 10.0.0.2"), "10.0.0.2");
  assert.equal(proxies.clientAddress("10.0.0.1", ""), "10.0.0.1");
  // Written with a port or brackets, as some proxies do.
  assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.7:5123"), "203.0.113.7");
  assert.equal(proxies.clientAddress("10.0.0.1", "[2001:db8::7]:443"), "2001:db8::7");
});

Deno.test("normalAddress() gives one form per address and undefined for anything else", () => {
  assert.equal(normalAddress(" 10.0.0.1 "), "10.0.0.1");
  assert.equal(normalAddress("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(normalAddress("0:0:0:0:0:ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(normalAddress("[::1]"), "::1");
  assert.equal(normalAddress("2001:DB8::1"), "2001:db8::1");
  for (const bad of ["", "unknown", "example.com", "fe80::1%eth0", "10.0.0.1:", "[10.0.0.1", "_hidden"]) {
    assert.equal(normalAddress(bad), undefined, bad);
  }
});
