import assert from "node:assert/strict";
import { chatLine, eventOf, formatDuration, notificationFor } from "./notification.ts";
import { deploymentRecord } from "../testing/test_helpers.ts";

const STARTED = "2026-11-24T08:00:00.000Z";
/** Ended `ms` after {@linkcode STARTED}. */
const after = (ms: number) => new Date(Date.parse(STARTED) + ms).toISOString();

Deno.test("chatLine() says target, first parameter, what happened, how long and who, for every end", () => {
  const production = {
    target: "production",
    params: { version: "v1.4.2", region: "eu" },
    startedBy: "alice",
    startedAt: STARTED,
  };
  const cases: [Parameters<typeof deploymentRecord>[0], string][] = [
    [{ ...production, status: "running" }, "production v1.4.2 started (alice)"],
    [
      { ...production, status: "succeeded", finishedAt: after(42_000), exitCode: 0 },
      "production v1.4.2 succeeded in 42s (alice)",
    ],
    [
      { ...production, status: "failed", finishedAt: after(185_000), exitCode: 1, reason: "exit code 1" },
      "production v1.4.2 failed in 3m 5s: exit code 1 (alice)",
    ],
    [
      { ...production, status: "cancelled", finishedAt: after(12_400), cancelledBy: "bob" },
      "production v1.4.2 cancelled by bob after 12s (alice)",
    ],
    [
      { ...production, status: "cancelled", startedAt: null, finishedAt: after(1000), cancelledBy: "bob" },
      "production v1.4.2 cancelled by bob while queued (alice)",
    ],
    [
      { ...production, status: "interrupted", finishedAt: after(400), reason: "shiplog was stopped" },
      "production v1.4.2 interrupted after 0.4s: shiplog was stopped (alice)",
    ],
    // No parameters, nobody named: the simulation of a server without --config or users.
    [{ status: "succeeded", startedAt: STARTED, finishedAt: after(7260_000) }, "default succeeded in 2h 1m"],
    [{ status: "cancelled", startedAt: STARTED, finishedAt: after(60_000) }, "default cancelled after 1m"],
    // A reason quoting output keeps the line one line.
    [
      { status: "failed", startedAt: STARTED, finishedAt: after(3000), reason: "Cannot run: a\nb\r\tc" },
      "default failed in 3s: Cannot run: a b c",
    ],
  ];
  for (const [overrides, line] of cases) {
    const record = deploymentRecord(overrides);
    assert.equal(chatLine(eventOf(record)!, record), line);
  }
});

Deno.test("eventOf() is a start for running, an end for every final status, nothing for queued", () => {
  assert.equal(eventOf(deploymentRecord({ status: "queued" })), undefined);
  assert.equal(eventOf(deploymentRecord({ status: "running" })), "deployment.started");
  for (const status of ["succeeded", "failed", "cancelled", "interrupted"] as const) {
    assert.equal(eventOf(deploymentRecord({ status })), "deployment.finished");
  }
});

Deno.test("formatDuration() rounds to what a reader of chat cares about", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [-5, "0s"],
    [440, "0.4s"],
    [9_949, "9.9s"],
    [9_960, "10s"],
    [59_400, "59s"],
    [59_600, "1m"],
    [185_000, "3m 5s"],
    [3_599_400, "59m 59s"],
    [3_599_600, "1h"],
    [7_260_000, "2h 1m"],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, `${ms} ms`);
});

Deno.test("notificationFor() links the page under the base URL, path included, and escapes the text for Slack", () => {
  const record = deploymentRecord({
    status: "running",
    target: "staging",
    params: { version: "<!channel> & co @all" },
    startedAt: STARTED,
  });
  const notification = notificationFor("deployment.started", record, "https://tools.test/shiplog");
  assert.deepEqual(notification, {
    event: "deployment.started",
    deployment: record,
    url: `https://tools.test/shiplog/deployment/${record.id}`,
    text: "staging &lt;!channel&gt; &amp; co @\u200ball started",
  });
  assert.equal(
    notificationFor("deployment.started", record, "http://127.0.0.1:8080/").url,
    `http://127.0.0.1:8080/deployment/${record.id}`,
  );
  // The record is the API's, untouched: the escaping is for the chat line only.
  assert.equal(JSON.parse(JSON.stringify(notification)).deployment.params.version, "<!channel> & co @all");
});
