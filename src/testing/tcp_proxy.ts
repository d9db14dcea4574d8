/**
 * @module
 * A TCP proxy for a test, on its own free port of 127.0.0.1, that can make one of its connections a black hole:
 * from then on nothing passes either way and neither side is told, not even when the other one closes. That is
 * a connection that died without a reset (a host or a network lost), which no socket error ever reports.
 */

/** A running proxy. */
export interface TcpProxy extends AsyncDisposable {
  readonly port: number;
  /**
   * Makes a black hole of the connection whose side towards the target has local port `upstreamPort` (what
   * the target sees as the client's port, e.g. in Redis's `CLIENT LIST`). False if there is none.
   */
  blackHole(upstreamPort: number): boolean;
}

interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn;
  dead: boolean;
}

/** Starts a proxy to `targetPort` on 127.0.0.1. */
export function startTcpProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = new Set<Pair>();
  const pumps: Promise<void>[] = [];

  const pump = async (pair: Pair, from: Deno.TcpConn, to: Deno.TcpConn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const read = await from.read(buffer);
        if (read === null) break;
        if (!pair.dead) await to.write(buffer.subarray(0, read));
      }
    } catch {
      // Closed at the other end, or by dispose.
    }
    if (pair.dead) return; // Neither side hears of the other's end.
    pairs.delete(pair);
    for (const conn of [pair.client, pair.upstream]) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  };

  const accepting = (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort }).catch(() => undefined);
      if (!upstream) {
        client.close();
        continue;
      }
      const pair = { client, upstream, dead: false };
      pairs.add(pair);
      pumps.push(pump(pair, client, upstream), pump(pair, upstream, client));
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    blackHole(upstreamPort) {
      for (const pair of pairs) {
        if ((pair.upstream.localAddr as Deno.NetAddr).port === upstreamPort) {
          pair.dead = true;
          return true;
        }
      }
      return false;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const pair of pairs) {
        for (const conn of [pair.client, pair.upstream]) {
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        }
      }
      await Promise.all(pumps);
    },
  };
}
