import assert from "node:assert/strict";
import { makeTempDir, waitFor } from "./test_helpers.ts";
import { type Program, spawnShiplog, terminate } from "./test_program.ts";

/** Low enough for a test to reach with a few hundred connections, high enough to start under. */
const OPEN_FILE_LIMIT = 256;

/** Opens idle connections to `port` (sending nothing) until one is refused, at most `max`. */
async function connectUntilRefused(
  port: number,
  max = 400,
): Promise<{ conns: Deno.Conn[]; refused: boolean }> {
  const conns: Deno.Conn[] = [];
  while (conns.length < max) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      return { conns, refused: true };
    }
  }
  return { conns, refused: false };
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

async function healthy(program: Program): Promise<boolean> {
  try {
    const response = await fetch(new URL("healthz", program.url), { signal: AbortSignal.timeout(2000) });
    return response.status === 200 && await response.text() === "ok\n";
  } catch {
    return false;
  }
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern, "g"))?.length ?? 0;
}

const STOPPED = /shiplog: stopped listening on 127\.0\.0\.1:\d+: Too many open files \(os error 24\)/;
const AGAIN = /shiplog: listening again on 127\.0\.0\.1:\d+\n/;

Deno.test({
  name:
    "idle connections that use up the open file limit stop the listener for a moment, said once, not for good",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    await using shiplog = await spawnShiplog(dir.path, [], { openFileLimit: OPEN_FILE_LIMIT });
    const port = Number(new URL(shiplog.url).port);
    const { conns, refused } = await connectUntilRefused(port);
    try {
      assert.ok(refused, `${conns.length} connections were all taken: the limit did not bite`);
      await waitFor("the outage on stderr", () => STOPPED.test(shiplog.stderr()), { timeoutMs: 10_000 });
    } finally {
      closeAll(conns);
    }
    await waitFor("/healthz to answer again", () => healthy(shiplog), { timeoutMs: 15_000, intervalMs: 100 });
    await waitFor("the recovery on stderr", () => AGAIN.test(shiplog.stderr()), { timeoutMs: 10_000 });
    assert.equal(count(shiplog.stderr(), STOPPED), 1, shiplog.stderr());
    assert.equal(count(shiplog.stderr(), AGAIN), 1, shiplog.stderr());
    const { code, elapsedMs } = await terminate(shiplog);
    assert.equal(code, 0, shiplog.stderr());
    assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
  },
});

Deno.test({
  name: "SIGTERM while the listener cannot listen again (its port taken meanwhile) still exits 0 at once",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    await using shiplog = await spawnShiplog(dir.path, [], { openFileLimit: OPEN_FILE_LIMIT });
    const port = Number(new URL(shiplog.url).port);
    // Take the port in the moment between the outage and the first try to listen again (100 ms later).
    let taken: Deno.Listener | undefined;
    for (let attempt = 0; attempt < 10 && !taken; attempt++) {
      const { conns, refused } = await connectUntilRefused(port);
      try {
        assert.ok(refused, `${conns.length} connections were all taken: the limit did not bite`);
        taken = Deno.listen({ hostname: "127.0.0.1", port });
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) throw error;
        // It listened again first: try once more.
        await waitFor("/healthz to answer again", () => healthy(shiplog), {
          timeoutMs: 15_000,
          intervalMs: 50,
        });
      } finally {
        closeAll(conns);
      }
    }
    assert.ok(taken, "never took the port during an outage");
    try {
      await waitFor("the outage on stderr", () => STOPPED.test(shiplog.stderr()), { timeoutMs: 10_000 });
      // Long enough for a few failed tries.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const { code, elapsedMs } = await terminate(shiplog);
      assert.equal(code, 0, shiplog.stderr());
      assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
      assert.equal(count(shiplog.stderr(), STOPPED), 1, shiplog.stderr());
      assert.equal(count(shiplog.stderr(), AGAIN), 0, shiplog.stderr());
    } finally {
      taken.close();
    }
  },
});
