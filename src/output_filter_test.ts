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
