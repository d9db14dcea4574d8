/**
 * @module
 * A real `redis-server` for a test: its own free port on 127.0.0.1 and its own temporary directory, never a
 * shared one. It can be stopped, killed and started again on the same port, with its data (AOF) or without.
 * Without `redis-server` on PATH the tests that need it are skipped with a loud notice, except under `CI=true`,
 * where they fail: CI installs it.
 */

import { fileURLToPath } from "node:url";
import { makeTempDir, type TempDir, waitFor } from "./test_helpers.ts";

/** `SHIPLOG_TEST_REDIS_SERVER` names another binary (or none, to check the skip and CI rules). */
const BINARY = Deno.env.get("SHIPLOG_TEST_REDIS_SERVER") ?? "redis-server";
const inCi = Deno.env.get("CI") === "true";
const CONFIG = fileURLToPath(new URL("../../deploy/redis.conf", import.meta.url));

function findBinary(): boolean {
  try {
    return new Deno.Command(BINARY, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** True when `redis-server` can be run. */
export const redisServerFound: boolean = findBinary();

if (!redisServerFound && !inCi) {
  console.error(
    `\n!! ${BINARY} not found: the tests that need a real Redis are SKIPPED.\n` +
      "!! Install it (apt-get install -y redis-server) to run them. Under CI=true this is a failure.\n",
  );
}

/** Options for `Deno.test` of a test that needs Redis: skipped without it, except under CI. */
export const REDIS_TEST: Pick<Deno.TestDefinition, "ignore"> = { ignore: !redisServerFound && !inCi };

/** Options of {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** Keep an append-only file, so a restart keeps the data. Default true. */
  appendOnly?: boolean;
  /** When the append-only file reaches the disk. Default `always`, as `deploy/redis.conf` says. */
  appendFsync?: "always" | "everysec";
}

/** A running (or stopped) `redis-server` of one test. */
export interface RedisServer extends AsyncDisposable {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The pid of the running redis-server (the benchmark reads its CPU time). */
  readonly pid: number | undefined;
  /** Its working directory (the AOF lives there). */
  readonly dir: string;
  /** Stops it with SIGTERM (an AOF is flushed) and waits until it has exited. */
  stop(): Promise<void>;
  /** Stops it with SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Freezes it with SIGSTOP: its sockets stay open and nothing answers, as a hung Redis or a lost network. */
  pause(): void;
  /** Lets a paused one go on with SIGCONT. */
  resume(): void;
  /** Starts it again on the same port and directory; `wipe` deletes its data first (a Redis that lost it). */
  start(options?: { wipe?: boolean }): Promise<void>;
  /** Runs one command (with `redis-cli`) and returns its output, trimmed. */
  cli(...args: string[]): Promise<string>;
}

/** Starts a `redis-server` on a free port in a temporary directory. Throws, naming why, if it cannot. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!redisServerFound) throw new Error(`${BINARY} not found: under CI=true the Redis tests must run`);
  const temp: TempDir = await makeTempDir();
  const appendOnly = options.appendOnly ?? true;
  let port = 0;
  let child: Deno.ChildProcess | undefined;

  const launch = async () => {
    const args = [
      // The settings the README recommends; those below are this test's own.
      CONFIG,
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      temp.path,
      "--save",
      "",
      "--appendonly",
      appendOnly ? "yes" : "no",
      "--appendfsync",
      options.appendFsync ?? "always",
      "--protected-mode",
      "no",
      "--logfile",
      "redis.log",
    ];
    child = new Deno.Command(BINARY, { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
    const exited = child.status.then(() => true);
    await waitFor(`redis-server on port ${port}`, async () => {
      if (await Promise.race([exited, Promise.resolve(false)])) {
        const log = await Deno.readTextFile(`${temp.path}/redis.log`).catch(() => "");
        throw new Error(`redis-server exited at start-up:\n${log.slice(-2000)}`);
      }
      return await ping(port);
    }, { timeoutMs: 10_000, intervalMs: 20 });
  };
  const sendSignal = (name: Deno.Signal) => {
    if (!child) throw new Error("redis-server is not running");
    child.kill(name);
  };
  const halt = async (signal: Deno.Signal) => {
    const running = child;
    child = undefined;
    if (!running) return;
    try {
      running.kill(signal);
      // A paused one acts on SIGTERM only once it goes on.
      running.kill("SIGCONT");
    } catch {
      // Already gone.
    }
    await running.status;
  };

  // A port free a moment ago may be taken by the time redis binds it: then another one.
  for (let attempt = 1;; attempt++) {
    port = freePort();
    try {
      await launch();
      break;
    } catch (error) {
      await halt("SIGKILL");
      if (attempt === 3) {
        await temp[Symbol.asyncDispose]();
        throw error;
      }
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    dir: temp.path,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    pause: () => sendSignal("SIGSTOP"),
    resume: () => sendSignal("SIGCONT"),
    start: async ({ wipe = false } = {}) => {
      await halt("SIGTERM");
      if (wipe) {
        for await (const entry of Deno.readDir(temp.path)) {
          if (entry.name !== "redis.log") {
            await Deno.remove(`${temp.path}/${entry.name}`, { recursive: true });
          }
        }
      }
      await launch();
    },
    cli: async (...args) => {
      const output = await new Deno.Command("redis-cli", {
        args: ["-h", "127.0.0.1", "-p", String(port), ...args],
        stdin: "null",
      }).output();
      return new TextDecoder().decode(output.stdout).trim();
    },
    [Symbol.asyncDispose]: async () => {
      await halt("SIGKILL");
      await temp[Symbol.asyncDispose]();
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** True when a Redis answers PING on `port` (and is done loading its data). */
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
