import assert from "node:assert/strict";
import { closeAll, delay, makeTempDir, waitFor } from "../testing/test_helpers.ts";
import { type Program, spawnShiplog, terminate } from "../testing/test_program.ts";

/** Low enough for a test to reach with a few hundred connections, high enough to start under. */
const OPEN_FILE_LIMIT = 256;

const STOPPED = /shiplog: stopped listening on 127\.0\.0\.1:\d+: Too many open files \(os error 24\)/;
const AGAIN = /shiplog: listening again on 127\.0\.0\.1:\d+\n/;

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern, "g"))?.length ?? 0;
}

/**
 * Opens idle connections to `program` (sending nothing) until one is refused or `program` reports an outage
 * after the `outages` it had, at most `max`. On a busy machine the kernel may queue them all before the
 * program has accepted many: it runs out while taking them from the queue.
 */
async function flood(program: Program, outages: number, max = 400): Promise<Deno.Conn[]> {
  const port = Number(new URL(program.url).port);
  const conns: Deno.Conn[] = [];
  while (conns.length < max && count(program.stderr(), STOPPED) === outages) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      break;
    }
  }
  return conns;
}

async function healthy(program: Program): Promise<boolean> {
  try {
    const response = await fetch(new URL("healthz", program.url), { signal: AbortSignal.timeout(2000) });
    return response.status === 200 && await response.text() === "ok\n";
  } catch {
    return false;
  }
}

Deno.test({
  name: "idle connections past the open file limit stop the listener for a moment, said once, not for good",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    await using shiplog = await spawnShiplog(dir.path, [], { openFileLimit: OPEN_FILE_LIMIT });
    const conns = await flood(shiplog, 0);
    try {
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

/** Takes `program`'s port in the moment between an outage and its first try to listen again (100 ms later). */
async function takePortDuringOutage(program: Program): Promise<Deno.Listener> {
  const port = Number(new URL(program.url).port);
  for (let outages = 0; outages < 10; outages++) {
    const conns = await flood(program, outages);
    try {
      const deadline = performance.now() + 10_000;
      // Until it listened again first (then once more), or for 10 s.
      while (count(program.stderr(), AGAIN) === outages && performance.now() < deadline) {
        try {
          return Deno.listen({ hostname: "127.0.0.1", port });
        } catch (error) {
          if (!(error instanceof Deno.errors.AddrInUse)) throw error;
        }
        await delay(1);
      }
    } finally {
      closeAll(conns);
    }
  }
  throw new Error(`Never took the port during an outage: ${program.stderr()}`);
}

Deno.test({
  name: "SIGTERM while the listener cannot listen again (its port taken meanwhile) still exits 0 at once",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using dir = await makeTempDir();
    await using shiplog = await spawnShiplog(dir.path, [], { openFileLimit: OPEN_FILE_LIMIT });
    const taken = await takePortDuringOutage(shiplog);
    try {
      await waitFor("the outage on stderr", () => STOPPED.test(shiplog.stderr()), { timeoutMs: 10_000 });
      // Long enough for a few failed tries.
      await delay(1000);
      const { code, elapsedMs } = await terminate(shiplog);
      assert.equal(code, 0, shiplog.stderr());
      assert.ok(elapsedMs < 5000, `exit took ${elapsedMs} ms`);
      // Said once for this outage, however many tries failed (an earlier one, if it won a race, ended).
      assert.equal(count(shiplog.stderr(), STOPPED), count(shiplog.stderr(), AGAIN) + 1, shiplog.stderr());
    } finally {
      taken.close();
    }
  },
});
