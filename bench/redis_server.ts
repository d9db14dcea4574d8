/**
 * @module
 * The `redis-server` of the benchmark's cluster scenario: started on a free port of 127.0.0.1 in a temporary
 * directory of its own, with the settings of `deploy/redis.conf` except `appendfsync`, given by the caller
 * (the README's two choices), and stopped, its directory removed, at the end. The tests have their own
 * (`src/testing/redis_server.ts`); this one also gives the process id, whose CPU time the benchmark reports.
 */

const CONFIG = decodeURIComponent(new URL("../deploy/redis.conf", import.meta.url).pathname);
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

/** Options of {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** When the append-only file reaches the disk: `always` (deploy/redis.conf) or `everysec`. */
  appendfsync: "always" | "everysec";
}

/** A running `redis-server`. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly pid: number;
  /** SIGTERM, SIGKILL after a grace period; then removes its directory. */
  stop(): Promise<void>;
}

/** Starts a `redis-server`; throws, naming why, if it cannot (not installed, exited at start-up). */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "shiplog-bench-redis-" });
  try {
    // A port free a moment ago may be taken by the time redis binds it: then another one.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const child = spawn(port, dir, options);
      const exited = child.status.then(() => true);
      if (await answers(port, exited)) {
        return {
          url: `redis://127.0.0.1:${port}`,
          pid: child.pid,
          async stop() {
            await halt(child);
            await Deno.remove(dir, { recursive: true }).catch(() => {});
          },
        };
      }
      await halt(child);
      if (attempt === 3) {
        const log = await Deno.readTextFile(`${dir}/redis.log`).catch(() => "");
        throw new Error(`redis-server did not start on port ${port}:\n${log.slice(-2000)}`);
      }
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

function spawn(port: number, dir: string, options: RedisServerOptions): Deno.ChildProcess {
  const args = [
    CONFIG,
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    options.appendfsync,
    "--logfile",
    "redis.log",
  ];
  try {
    return new Deno.Command("redis-server", { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("redis-server not found: the cluster scenario needs it (apt-get install redis-server)");
    }
    throw error;
  }
}

async function halt(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), STOP_GRACE_MS));
  const killed = await Promise.race([child.status.then(() => false), late]);
  clearTimeout(timer);
  if (killed) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
  await child.status;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** True once a Redis on `port` answers PING (done loading), false if it exited or did not within the timeout. */
async function answers(port: number, exited: Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (await Promise.race([exited, Promise.resolve(false)])) return false;
    if (await ping(port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

async function ping(port: number): Promise<boolean> {
  let connection: Deno.TcpConn | undefined;
  try {
    connection = await Deno.connect({ hostname: "127.0.0.1", port });
    await connection.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const read = await connection.read(buffer);
    return read !== null && new TextDecoder().decode(buffer.subarray(0, read)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    connection?.close();
  }
}
