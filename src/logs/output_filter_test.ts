import assert from "node:assert/strict";
import { OutputFilter } from "./output_filter.ts";

Deno.test("OutputFilter masks every occurrence of every secret, longest first", () => {
  const filter = new OutputFilter({ secrets: ["hunter2", "hunter2-admin", ""] });
  assert.deepEqual(filter.filter(["login hunter2-admin / hunter2 hunter2", "clean"]), [
    "login *** / *** ***",
    "clean",
  ]);
});

Deno.test("OutputFilter stops at the cap with one notice and drops the rest", () => {
  const filter = new OutputFilter({ maxBytes: 10 });
  assert.deepEqual(filter.filter(["1234", "5678"]), ["1234", "5678"]);
  assert.equal(filter.full, false);
  assert.deepEqual(filter.filter(["abcd"]), [
    "[shiplog] log truncated: it reached 10 bytes; further output is dropped",
  ]);
  assert.equal(filter.full, true);
  assert.deepEqual(filter.filter(["more", "and more"]), []);
});

Deno.test("OutputFilter counts bytes, not characters", () => {
  const filter = new OutputFilter({ maxBytes: 8 });
  assert.deepEqual(filter.filter(["€€"]), ["€€"]); // 6 bytes + LF
  assert.equal(filter.filter(["x"]).length, 1);
  assert.equal(filter.full, true);
});

Deno.test("OutputFilter masks before counting, so a secret never reaches the file even at the cap", () => {
  const filter = new OutputFilter({ secrets: ["s3cr3t-value"], maxBytes: 1000 });
  assert.deepEqual(filter.filter(["token=s3cr3t-value"]), ["token=***"]);
});

Deno.test("OutputFilter masks a secret of several lines by its lines: long ones anywhere, short ones as whole lines", () => {
  const key = "-----BEGIN KEY-----\r\n  MIIEpAIBAAKCAQEAxyz\nusers:\n}\n-----END KEY-----\n";
  const filter = new OutputFilter({ secrets: [key] });
  assert.deepEqual(
    filter.filter([
      "-----BEGIN KEY-----",
      "MIIEpAIBAAKCAQEAxyz",
      "key=MIIEpAIBAAKCAQEAxyz;",
      "  users:",
      "configured (users: 3)",
      "}",
      "-----END KEY-----",
    ]),
    ["***", "***", "key=***;", "  ***", "configured (users: 3)", "}", "***"],
  );
});

Deno.test("OutputFilter masks a secret ending in line breaks by its value: they are not part of it", () => {
  const filter = new OutputFilter({ secrets: ["hunter2hunter\n", "s3cr3t-file-value\r\n\n"] });
  assert.deepEqual(filter.filter(["password=hunter2hunter;", "hunter2hunter", "key s3cr3t-file-value."]), [
    "password=***;",
    "***",
    "key ***.",
  ]);
});

Deno.test("OutputFilter leaves a secret under 4 characters in clear, so that it cannot mask ordinary text", () => {
  const filter = new OutputFilter({ secrets: ["1", " ", "ab\n", "€€€", "abcd"] });
  assert.deepEqual(filter.filter(["step 1 of 10: ab €€€", "abcd"]), ["step 1 of 10: ab €€€", "***"]);
  assert.deepEqual(["1", " ", "ab\n", "€€€", "", "\n", "abcd", "abcd\n"].map(OutputFilter.tooShort), [
    true,
    true,
    true,
    true,
    false,
    false,
    false,
    false,
  ]);
});

Deno.test("OutputFilter masks a secret's base64, with either alphabet, with or without padding", () => {
  const secret = "hunter2hunter>?x"; // base64 "aHVudGVyMmh1bnRlcj4/eA==": a `/` (URL-safe `_`) and padding
  const filter = new OutputFilter({ secrets: [secret] });
  const base64 = btoa(secret);
  const urlSafe = base64.replaceAll("+", "-").replaceAll("/", "_");
  assert.deepEqual(
    filter.filter([
      `a ${base64}.`,
      `b ${base64.replace(/=+$/, "")}.`,
      `c ${urlSafe}.`,
      `d ${urlSafe.replace(/=+$/, "")}.`,
      `e ${btoa("hunter2hunter")}.`,
      `f ${btoa(`${secret}!`)}`,
    ]),
    ["a ***.", "b ***.", "c ***.", "d ***.", "e aHVudGVyMmh1bnRlcg==.", "f ***CE="],
  );
});

Deno.test("OutputFilter masks a secret inside a longer base64 text at each of its three alignments", () => {
  const filter = new OutputFilter({ secrets: ["hunter2hunter"] });
  // `Authorization: Basic base64(user:password)`: the secret starts at byte 0, 1 or 2 of a 3-byte group. The
  // characters it shares with its neighbours stay: `Om` holds `:` and the secret's first bits, `I=` its last.
  const lines = ["", "a:", "ab:", "deploy:"].map((user) => `Basic ${btoa(`${user}hunter2hunter`)}`);
  assert.deepEqual(lines, [
    "Basic aHVudGVyMmh1bnRlcg==",
    "Basic YTpodW50ZXIyaHVudGVy",
    "Basic YWI6aHVudGVyMmh1bnRlcg==",
    "Basic ZGVwbG95Omh1bnRlcjJodW50ZXI=",
  ]);
  assert.deepEqual(filter.filter(lines), [
    "Basic ***",
    "Basic YTp***",
    "Basic YWI6***",
    "Basic ZGVwbG95Om***I=",
  ]);
  // A short secret's inner parts are too short to be told from other base64: only its whole forms are masked.
  const short = new OutputFilter({ secrets: ["k3y!"] });
  assert.deepEqual(short.filter([btoa("k3y!"), btoa("xk3y!x")]), ["***", btoa("xk3y!x")]);
});

Deno.test("OutputFilter masks a secret's URL-encoded forms: percent-encoded, and with + for a space", () => {
  const filter = new OutputFilter({ secrets: ["p@ss w/rd!(x)"] });
  assert.deepEqual(
    filter.filter([
      "url=https://u:p%40ss%20w%2Frd!(x)@host/",
      "body=password=p%40ss+w%2Frd%21%28x%29&x=1",
      "curl p%40ss%20w%2Frd%21%28x%29",
      "form p%40ss+w%2Frd!(x)",
      "plain p@ss w/rd!(x)",
    ]),
    ["url=https://u:***@host/", "body=password=***&x=1", "curl ***", "form ***", "plain ***"],
  );
});
