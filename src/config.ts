/**
 * @module
 * The command line and environment, resolved into one {@linkcode Config}. Pure: it takes the arguments and the
 * environment as plain values, so `main.ts` stays the only reader of `Deno.args` and `Deno.env`. A flag beats
 * its environment variable, which beats the default.
 */

import { parseArgs } from "node:util";

/** Everything shiplog needs to start, fully resolved. */
export interface Config {
  /** TCP port to listen on; 0 picks a free one. */
  port: number;
  /** Address to bind; 127.0.0.1 keeps shiplog on this machine. */
  hostname: string;
  /** Directory holding `<id>.log` and `<id>.json`, relative to the working directory unless absolute. */
  dir: string;
  /** The deploy command run with `sh -c`; `undefined` means the built-in simulated deployment. */
  command: string | undefined;
  /** How many deployments run at once; more wait as `queued`. */
  maxRunning: number;
  /** Seconds of silence after which an SSE stream gets a heartbeat comment. */
  heartbeatSeconds: number;
  /** `--help` was asked for: print {@linkcode usage} and exit. */
  help: boolean;
}

interface Option {
  flag: string;
  env: string;
  value: string;
  description: string;
}

const OPTIONS: Option[] = [
  {
    flag: "port",
    env: "SHIPLOG_PORT",
    value: "N",
    description: "port to listen on; 0 picks a free port (8080)",
  },
  {
    flag: "hostname",
    env: "SHIPLOG_HOSTNAME",
    value: "HOST",
    description: "address to bind (127.0.0.1; anything else exposes shiplog beyond this machine)",
  },
  { flag: "dir", env: "SHIPLOG_DIR", value: "PATH", description: "deployments directory (./deployments)" },
  {
    flag: "command",
    env: "SHIPLOG_COMMAND",
    value: "CMD",
    description: "deploy command, run with sh -c (a built-in simulated deployment)",
  },
  { flag: "max-running", env: "SHIPLOG_MAX_RUNNING", value: "N", description: "deployments run at once (2)" },
  {
    flag: "heartbeat",
    env: "SHIPLOG_HEARTBEAT",
    value: "SECONDS",
    description: "heartbeat comment on idle event streams (15)",
  },
];

/** The environment variables shiplog reads, one per flag. */
export const ENVIRONMENT_VARIABLES: readonly string[] = OPTIONS.map((option) => option.env);

/** The `--help` text, listing every flag with its environment variable. */
export function usage(): string {
  const rows = OPTIONS.map((option) =>
    `  --${`${option.flag} ${option.value}`.padEnd(22)} ${option.description}\n  ${
      " ".repeat(24)
    } env ${option.env}`
  );
  return [
    "shiplog: runs deployments and streams their logs live.",
    "",
    "Usage: shiplog [flags]",
    "",
    ...rows,
    `  ${"--help".padEnd(24)} show this help`,
    "",
  ].join("\n");
}

/**
 * Resolves the configuration from command-line arguments and environment variables.
 * Throws a `TypeError` or `RangeError` whose message says what is wrong and what is expected.
 */
export function parseConfig(args: string[], env: Record<string, string | undefined>): Config {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const option of OPTIONS) options[option.flag] = { type: "string" };
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new TypeError(`${(error as Error).message}; see --help`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const pick = (flag: string): [string | undefined, string] => {
    const option = OPTIONS.find((o) => o.flag === flag)!;
    const fromFlag = values[flag];
    if (typeof fromFlag === "string") return [fromFlag, `--${flag}`];
    return [env[option.env], option.env];
  };
  const integer = (flag: string, fallback: number, min: number, max: number): number => {
    const [raw, source] = pick(flag);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RangeError(`Cannot parse ${source} "${raw}": expected an integer from ${min} to ${max}`);
    }
    return value;
  };
  const text = (flag: string, fallback: string | undefined): string | undefined => {
    const [raw, source] = pick(flag);
    if (raw === undefined) return fallback;
    if (raw.trim() === "") throw new TypeError(`Cannot use ${source} "": expected a non-empty value`);
    return raw;
  };
  return {
    port: integer("port", 8080, 0, 65535),
    hostname: text("hostname", "127.0.0.1")!,
    dir: text("dir", "./deployments")!,
    command: text("command", undefined),
    maxRunning: integer("max-running", 2, 1, 1000),
    heartbeatSeconds: integer("heartbeat", 15, 1, 3600),
    help: values.help === true,
  };
}
