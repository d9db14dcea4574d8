/**
 * @module
 * A real nginx for a test, run unprivileged from the example config `deploy/nginx.conf`: in a temporary
 * directory of its own (its pid file, logs and temporary files there), on a free port of 127.0.0.1, with the
 * upstream servers the test gives. Only the placeholders the file documents are replaced, so the tests prove
 * the example as users copy it. Without `nginx` (on PATH or in /usr/sbin) the tests that need it are skipped
 * with a loud notice, except under `CI=true`, where they fail: CI installs it.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTempDir, type TempDir, waitFor } from "./test_helpers.ts";

/** The example config the tests run. */
export const NGINX_CONF = fileURLToPath(new URL("../../deploy/nginx.conf", import.meta.url));

const inCi = Deno.env.get("CI") === "true";

/** The nginx binary: `SHIPLOG_TEST_NGINX`, else `nginx` on PATH, else Debian's `/usr/sbin/nginx`; none found. */
function findBinary(): string | undefined {
  const candidates = Deno.env.has("SHIPLOG_TEST_NGINX")
    ? [Deno.env.get("SHIPLOG_TEST_NGINX")!]
    : ["nginx", "/usr/sbin/nginx"];
  for (const candidate of candidates) {
    try {
      const ran = new Deno.Command(candidate, { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
      if (ran.success) return candidate;
    } catch {
      // Not there: the next one.
    }
  }
  return undefined;
}

const BINARY = findBinary();

/** True when nginx can be run. */
export const nginxFound: boolean = BINARY !== undefined;

if (!nginxFound && !inCi) {
  console.error(
    "\n!! nginx not found: the tests that need a real nginx are SKIPPED.\n" +
      "!! Install it (apt-get install -y nginx) to run them. Under CI=true this is a failure.\n",
  );
}

/** Options for `Deno.test` of a test that needs nginx: skipped without it, except under CI. */
export const NGINX_TEST: Pick<Deno.TestDefinition, "ignore"> = { ignore: !nginxFound && !inCi };

/** A running nginx of one test; use it with `await using`. */
export interface NginxServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /**
   * `http://[::1]:PORT/` where this host has an IPv6 loopback: a client address other than the one nginx
   * connects to the upstream servers from, which they can tell apart.
   */
  readonly ipv6Url?: string;
  readonly port: number;
  /** Its prefix directory: the config it runs, its error log. */
  readonly dir: string;
  /** Stops it (SIGTERM: open connections, event streams among them, are closed) and waits until it exited. */
  stop(): Promise<void>;
  /** What nginx wrote to its error log so far. */
  errorLog(): Promise<string>;
}

/**
 * `deploy/nginx.conf` with its placeholders replaced: the `server HOST:PORT;` lines of `upstream shiplog` by
 * `upstreams` (each `HOST:PORT`), `listen 8080;` by `port` on 127.0.0.1 (and on ::1 with `ipv6`); and what an
 * unprivileged nginx needs added, with paths relative to its prefix directory. Throws when the file no longer
 * has a placeholder exactly once: the example and the tests must not drift apart.
 */
export function testNginxConfig(
  example: string,
  upstreams: readonly string[],
  port: number,
  options: { ipv6?: boolean } = {},
): string {
  const replace = (text: string, pattern: RegExp, replacement: string, what: string) => {
    const matches = text.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
    if (matches !== 1) throw new Error(`deploy/nginx.conf: expected ${what} once, found it ${matches} times`);
    return text.replace(new RegExp(pattern.source, "m"), replacement);
  };
  let config = replace(
    example,
    /^([ \t]*server [^\s{;]+;\n)+/,
    upstreams.map((upstream) => `        server ${upstream};\n`).join(""),
    "the upstream servers",
  );
  const listen = `$1listen 127.0.0.1:${port};${options.ipv6 ? `\n$1listen [::1]:${port};` : ""}`;
  config = replace(config, /^([ \t]*)listen 8080;/, listen, "listen 8080;");
  config = replace(
    config,
    /^http \{\n/,
    [
      "http {",
      "    access_log off;",
      "    client_body_temp_path client_body;",
      "    proxy_temp_path proxy;",
      "    fastcgi_temp_path fastcgi;",
      "    uwsgi_temp_path uwsgi;",
      "    scgi_temp_path scgi;",
      "",
    ].join("\n"),
    "http {",
  );
  return `pid nginx.pid;\nerror_log error.log info;\n\n${config}`;
}

/**
 * Starts nginx from `deploy/nginx.conf` in front of `upstreams` (each `HOST:PORT`) on a free port, and waits
 * until it accepts connections. Throws, with its error log, if it cannot start.
 */
export async function startNginx(upstreams: readonly string[]): Promise<NginxServer> {
  if (!BINARY) throw new Error("nginx not found: under CI=true the nginx tests must run");
  const binary = BINARY;
  const temp: TempDir = await makeTempDir();
  const dir = temp.path;
  // Run as root, nginx's workers are another user (www-data), and write request bodies to its temporary
  // directories in here.
  await Deno.chmod(dir, 0o755);
  const example = await Deno.readTextFile(NGINX_CONF);
  const ipv6 = hasIpv6Loopback();
  const errorLog = () => Deno.readTextFile(join(dir, "error.log")).catch(() => "");
  let running: { child: Deno.ChildProcess; output: Promise<Deno.CommandOutput> } | undefined;
  let port = 0;
  const stop = async () => {
    const stopping = running;
    running = undefined;
    if (!stopping) return;
    try {
      stopping.child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await stopping.output;
  };

  // A port free a moment ago may be taken by the time nginx binds it: then another one.
  for (let attempt = 1;; attempt++) {
    port = freePort();
    await Deno.writeTextFile(join(dir, "nginx.conf"), testNginxConfig(example, upstreams, port, { ipv6 }));
    // `-e`: the log of what goes wrong before the config is read, which would go to a path only root can write.
    const args = [
      "-p",
      `${dir}/`,
      "-c",
      join(dir, "nginx.conf"),
      "-e",
      join(dir, "error.log"),
      "-g",
      "daemon off;",
    ];
    const child = new Deno.Command(binary, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
    // Reads stderr to its end, and resolves once nginx has exited.
    const output = child.output();
    running = { child, output };
    const exited = output.then(() => true);
    try {
      await waitFor(`nginx on port ${port}`, async () => {
        if (await Promise.race([exited, Promise.resolve(false)])) {
          const stderr = new TextDecoder().decode((await output).stderr);
          throw new Error(`nginx exited at start-up:\n${stderr}${(await errorLog()).slice(-2000)}`);
        }
        return await accepts(port);
      }, { timeoutMs: 10_000, intervalMs: 20 });
      break;
    } catch (error) {
      await stop();
      if (attempt === 3) {
        await temp[Symbol.asyncDispose]();
        throw error;
      }
    }
  }

  return {
    url: `http://127.0.0.1:${port}/`,
    ...ipv6 ? { ipv6Url: `http://[::1]:${port}/` } : {},
    port,
    dir,
    stop,
    errorLog,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await temp[Symbol.asyncDispose]();
    },
  };
}

function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function accepts(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}
