import assert from "node:assert/strict";
import {
  ASSUMED_OPEN,
  descriptorBudget,
  DESCRIPTORS_PER_RUNNING,
  measureDescriptors,
  parseDescriptors,
  SPARE_DESCRIPTORS,
} from "./descriptor_budget.ts";
import { closeAll, makeTempDir, waitFor, waitForValue, withDeadline } from "../testing/test_helpers.ts";
import { spawnShiplog, terminate } from "../testing/test_program.ts";

Deno.test("parseDescriptors() reads the limit and the count; unlimited is undefined, no count is assumed", () => {
  assert.deepEqual(parseDescriptors("1024\n27\n"), { limit: 1024, open: 27 });
  assert.deepEqual(parseDescriptors("unlimited\n27\n"), { limit: undefined, open: 27 });
  // No /proc to count in (macOS): `wc -l` of nothing.
  assert.deepEqual(parseDescriptors("256\n       0\n"), { limit: 256, open: ASSUMED_OPEN });
});

Deno.test("measureDescriptors() finds the limit a child of this process inherits", async () => {
  const measured = await measureDescriptors();
  const limit = new TextDecoder().decode(
    (await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" }).output()).stdout,
  ).trim();
  assert.equal(measured.limit, limit === "unlimited" ? undefined : Number(limit));
  assert.ok(measured.open > 3, `${measured.open} open`);
});

Deno.test("descriptorBudget() keeps room for the runtime, the running deployments and spare", () => {
  const use = { limit: 1024, open: 30, maxRunning: 2, maxViewers: 10_000, maxViewersPerClient: 2500 };
  const available = 1024 - 30 - 2 * DESCRIPTORS_PER_RUNNING - SPARE_DESCRIPTORS;
  // Two descriptors a stream (its socket, and its log while replayed) in nine tenths of the room.
  const viewers = Math.floor((available - Math.ceil(available / 10)) / 2);
  const connections = available - viewers;
  const budget = descriptorBudget(use);
  assert.deepEqual(budget, {
    maxConnections: connections,
    maxViewers: viewers,
    // The flags' share: a quarter, so that one client cannot take every stream.
    maxViewersPerClient: Math.floor(viewers / 4),
    lowered: `the open file limit (1024, ulimit -n) allows ${connections} requests in progress and lowers ` +
      `--max-viewers from 10000 to ${viewers} and --max-viewers-per-client from 2500 to ${
        Math.floor(viewers / 4)
      }; raise the limit for more`,
  });
  // Requests in progress (streams among them) and the logs of streams replaying fit in the room together.
  assert.ok(connections + viewers <= available && connections - viewers >= available / 10);
  // Caps already under the limit stay as they are, and there is nothing to say.
  assert.deepEqual(descriptorBudget({ ...use, maxViewers: 100, maxViewersPerClient: 10 }), {
    maxConnections: connections,
    maxViewers: 100,
    maxViewersPerClient: 10,
    lowered: undefined,
  });
  assert.match(
    descriptorBudget({ ...use, maxViewers: 100 }).lowered!,
    /lowers --max-viewers-per-client from 2500 to \d+; raise/,
  );
});

Deno.test("descriptorBudget() without a known limit keeps the flags' caps and caps no requests", () => {
  const use = { limit: undefined, open: 30, maxRunning: 2, maxViewers: 10_000, maxViewersPerClient: 2500 };
  assert.deepEqual(descriptorBudget(use), {
    maxConnections: Infinity,
    maxViewers: 10_000,
    maxViewersPerClient: 2500,
    lowered: undefined,
  });
});

Deno.test("descriptorBudget() refuses a limit that leaves no room to serve", () => {
  const use = { limit: 100, open: 30, maxRunning: 2, maxViewers: 10_000, maxViewersPerClient: 2500 };
  const needed = 30 + 2 * DESCRIPTORS_PER_RUNNING + SPARE_DESCRIPTORS + 8;
  assert.throws(() => descriptorBudget(use), {
    name: "RangeError",
    message: `Cannot serve with an open file limit of 100 (ulimit -n): expected at least ${needed} with ` +
      "--max-running 2 (30 are open at start-up)",
  });
});

/** A request on a connection of its own, from raw bytes, so that the test decides when it ends. */
async function send(port: number, request: string): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  return conn;
}

/** What arrives on `conn` until `done` says it is enough (or the connection ends), within 10 s. */
async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  let text = "";
  return await withDeadline(
    "an answer",
    (async () => {
      while (!done(text)) {
        const read = await conn.read(buffer);
        if (read === null) break;
        text += decoder.decode(buffer.subarray(0, read), { stream: true });
      }
      return text;
    })(),
    10_000,
  );
}

/** A whole answer with a `content-length`. */
function complete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = Number(/^content-length: (\d+)$/im.exec(text.slice(0, end))?.[1] ?? 0);
  return new TextEncoder().encode(text.slice(end + 4)).length >= length;
}

Deno.test({
  name: "under a low open file limit, event streams and requests past the caps it sets get 429 and 503",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    // One client may take every stream, so that this one can reach the cap on all of them.
    await using shiplog = await spawnShiplog(dir.path, ["--max-viewers-per-client", "10000"], {
      openFileLimit: 256,
    });
    const port = Number(new URL(shiplog.url).port);
    const [, connections, viewers] = (await waitForValue("the lowered caps on stderr", () =>
      /allows (\d+) requests in progress and lowers --max-viewers from 10000 to (\d+) and --max-viewers-per-client from 10000 to \2; raise the limit for more\n/
        .exec(shiplog.stderr()) ?? undefined)).map(Number);
    assert.ok(viewers < connections && connections < 256, shiplog.stderr());
    const held: Deno.Conn[] = [];
    try {
      for (let i = 0; i < viewers; i++) {
        const stream = await send(port, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        held.push(stream);
        assert.match(
          await readUntil(stream, (text) =>
            text.includes("\r\n\r\n")),
          /^HTTP\/1\.1 200 /,
        );
      }
      const refused = await send(port, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      held.push(refused);
      const tooMany = await readUntil(refused, complete);
      assert.match(tooMany, /^HTTP\/1\.1 429 /);
      assert.match(tooMany, /\r\n\r\nToo many open event streams \(limit \d+\); try again later\n$/);
      assert.ok(tooMany.endsWith(`(limit ${viewers}); try again later\n`), tooMany);

      // Requests that wait for a body that never comes fill the rest of the connections.
      for (let i = viewers; i < connections; i++) {
        held.push(
          await send(
            port,
            "POST /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
              "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n",
          ),
        );
      }
      // The last of them may not be in the handler yet: ask until all are.
      const busy = await waitForValue("a 503", async () => {
        const probe = await send(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        try {
          const answer = await readUntil(probe, complete);
          return answer.startsWith("HTTP/1.1 503 ") ? answer : undefined;
        } finally {
          probe.close();
        }
      }, { timeoutMs: 10_000, intervalMs: 50 });
      assert.match(busy, /\r\nconnection: close\r\n/i);
      assert.match(busy, /\r\nretry-after: 5\r\n/i);
      assert.ok(
        busy.endsWith(
          `\r\n\r\nToo many requests in progress (limit ${connections}, from the open file limit); try again later\n`,
        ),
        busy,
      );
    } finally {
      closeAll(held);
    }
    await waitFor("/healthz to answer again", async () => {
      const response = await fetch(new URL("healthz", shiplog.url), { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      return response.status === 200;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    assert.doesNotMatch(shiplog.stderr(), /stopped listening/, "the caps kept it within the limit");
    const { code } = await terminate(shiplog);
    assert.equal(code, 0, shiplog.stderr());
  },
});

Deno.test({
  name: "the defaults lowered to fit a low open file limit go without a word; a cap asked for is told",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    for (const args of [[], ["--max-viewers", "5000"]]) {
      await using shiplog = await spawnShiplog(dir.path, args, { openFileLimit: 256 });
      const { code } = await terminate(shiplog);
      assert.equal(code, 0, shiplog.stderr());
      if (args.length === 0) assert.equal(shiplog.stderr(), "");
      else {assert.match(
          shiplog.stderr(),
          /lowers --max-viewers from 5000 to \d+ and --max-viewers-per-client/,
        );}
    }
  },
});

Deno.test({
  name: "a limit too low to serve exits 1 before the previous run's deployments are recovered",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    const id = crypto.randomUUID();
    const record = {
      id,
      status: "running",
      command: "sleep 600",
      createdAt: new Date().toISOString(),
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      reason: null,
    };
    await Deno.writeTextFile(`${dir.path}/${id}.json`, JSON.stringify(record));
    await assert.rejects(
      () => spawnShiplog(dir.path, [], { openFileLimit: 64 }),
      /shiplog exited before listening: shiplog: Cannot serve with an open file limit of 64 \(ulimit -n\)/,
    );
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir.path}/${id}.json`)).status, "running");
  },
});
