/**
 * @module
 * The command line and environment, resolved into one {@linkcode Config}. Pure: it takes the arguments and the
 * environment as plain values, so `main.ts` stays the only reader of `Deno.args` and `Deno.env`. A flag beats
 * its environment variable, which beats the default. The table of options is the one source of the parser,
 * the `--help` text and the list of variables read.
 */

import { parseArgs } from "node:util";
import { TrustedProxies } from "./http/client_address.ts";
import { redactUrl } from "./redis/redacted_url.ts";
import { MAX_COMMAND_BYTES } from "./runs/targets.ts";

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
  /** The file of targets and their parameters (read by `main.ts`); `undefined`: the one target of `command`. */
  config: string | undefined;
  /** How many deployments run at once; more wait as `queued`. */
  maxRunning: number;
  /** How many deployments may wait `queued`; Start past it is refused with 503. */
  maxQueued: number;
  /** Seconds of silence after which an SSE stream gets a heartbeat comment. */
  heartbeatSeconds: number;
  /** The access token every route but `/healthz` requires; `undefined` means open access. */
  token: string | undefined;
  /** A file whose first line is the token (read by `main.ts`, so that the secret stays out of `ps`). */
  tokenFile: string | undefined;
  /** The users file: one user a line, each with a token of their own (read by `main.ts`; see `users_file.ts`). */
  usersFile: string | undefined;
  /**
   * The header a single-sign-on proxy names the user in (`X-Forwarded-User`), believed only from
   * {@linkcode trustedProxies}; `undefined`: none is.
   */
  authHeader: string | undefined;
  /** TLS certificate and key files (PEM); both or neither. */
  cert: string | undefined;
  key: string | undefined;
  /** Environment variables whose values are masked as `***` in logs. */
  maskEnv: string[];
  /** Bytes a deployment's log may reach; further output is dropped after one notice. */
  maxLogBytes: number;
  /** Finished deployments kept; older ones are deleted with their files. */
  keep: number;
  /** Event streams open at once, in all (lowered at start-up to fit the open file limit). */
  maxViewers: number;
  /** Event streams open at once from one client address (lowered likewise). */
  maxViewersPerClient: number;
  /** The largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Networks (CIDR) of the proxies whose `X-Forwarded-For` names the client. */
  trustedProxies: string[];
  /** How long a sign-in lasts, in hours. */
  sessionHours: number;
  /**
   * The Redis (or Valkey) that every instance of a cluster shares: `redis://[[user]:password@]host:port[/db]`
   * or `rediss://` for TLS. `undefined`: deployments are files in {@linkcode dir}, for this process alone.
   */
  redis: string | undefined;
  /** Keeps several clusters on one Redis apart: every key starts with it and a colon. */
  redisPrefix: string;
  /**
   * This instance's name in a cluster, unique among them: it is in the record of what it runs. `undefined`:
   * `main.ts` names it `HOSTNAME:PID-RANDOM` (four hex digits).
   */
  instance: string | undefined;
  /** Where `deployment.started` and `deployment.finished` are POSTed (http:// or https:// URLs). */
  webhooks: string[];
  /**
   * The key that signs each webhook's body (`X-Shiplog-Signature`), from `SHIPLOG_WEBHOOK_SECRET` only: a flag
   * would show it in `ps`. `undefined`: unsigned.
   */
  webhookSecret: string | undefined;
  /** A file whose first line is that key (read by `main.ts`, like the token file). */
  webhookSecretFile: string | undefined;
  /** shiplog's public address, for the links that notifications carry; `undefined`: the listening address. */
  baseUrl: string | undefined;
  /** `--help` was asked for: print {@linkcode usage} and exit. */
  help: boolean;
  /** The settings given by a flag or a variable, not left to their defaults. */
  given: (keyof Config)[];
}

type Kind = "integer" | "text" | "list";

interface Option {
  flag: string;
  key: keyof Config;
  kind: Kind;
  value: string;
  description: string;
  fallback?: number | string;
  min?: number;
  max?: number;
  /** A list whose flag values may hold several items, comma-separated, like its variable. */
  commas?: boolean;
  /** Read from its variable only, never from a flag: a secret (a flag's value shows in `ps`). */
  envOnly?: boolean;
}

const MiB = 1024 * 1024;

const OPTIONS: Option[] = [
  {
    flag: "port",
    key: "port",
    kind: "integer",
    value: "N",
    fallback: 8080,
    min: 0,
    max: 65535,
    description: "port to listen on; 0 picks a free port",
  },
  {
    flag: "hostname",
    key: "hostname",
    kind: "text",
    value: "HOST",
    fallback: "127.0.0.1",
    description: "address to bind; anything but loopback exposes shiplog beyond this machine",
  },
  {
    flag: "dir",
    key: "dir",
    kind: "text",
    value: "PATH",
    fallback: "./deployments",
    description: "deployments directory",
  },
  {
    flag: "command",
    key: "command",
    kind: "text",
    value: "CMD",
    description: "deploy command, run with sh -c (default: a built-in simulated deployment)",
  },
  {
    flag: "config",
    key: "config",
    kind: "text",
    value: "PATH",
    description: "targets and their parameters (JSON with comments); instead of --command",
  },
  {
    flag: "max-running",
    key: "maxRunning",
    kind: "integer",
    value: "N",
    fallback: 2,
    min: 0,
    max: 1000,
    description: "deployments run at once by this instance; 0 (with --redis) runs none",
  },
  {
    flag: "max-queued",
    key: "maxQueued",
    kind: "integer",
    value: "N",
    fallback: 1000,
    min: 1,
    max: 100_000,
    description: "deployments waiting to run; Start past it answers 503",
  },
  {
    flag: "heartbeat",
    key: "heartbeatSeconds",
    kind: "integer",
    value: "SECONDS",
    fallback: 15,
    min: 1,
    max: 3600,
    description: "heartbeat comment on idle event streams",
  },
  {
    flag: "token",
    key: "token",
    kind: "text",
    value: "SECRET",
    description: "require this token on every route but /healthz (prefer --token-file)",
  },
  {
    flag: "token-file",
    key: "tokenFile",
    kind: "text",
    value: "PATH",
    description: "read the token from the first line of this file",
  },
  {
    flag: "users-file",
    key: "usersFile",
    kind: "text",
    value: "PATH",
    description: "let these users sign in, each with their own token: name:token or name:sha256:HEX a line",
  },
  {
    flag: "auth-header",
    key: "authHeader",
    kind: "text",
    value: "NAME",
    description: "take the signed-in user from this header of a single-sign-on proxy in --trusted-proxy",
  },
  {
    flag: "cert",
    key: "cert",
    kind: "text",
    value: "PATH",
    description: "TLS certificate (PEM); serves HTTPS",
  },
  { flag: "key", key: "key", kind: "text", value: "PATH", description: "TLS private key (PEM)" },
  {
    flag: "mask-env",
    key: "maskEnv",
    kind: "list",
    value: "NAME",
    description:
      "mask the value of this environment variable as *** in logs (repeatable; env: comma-separated)",
  },
  {
    flag: "max-log-bytes",
    key: "maxLogBytes",
    kind: "integer",
    value: "N",
    fallback: 100 * MiB,
    min: 1024,
    max: Number.MAX_SAFE_INTEGER,
    description: "log size per deployment; further output is dropped after one notice",
  },
  {
    flag: "keep",
    key: "keep",
    kind: "integer",
    value: "N",
    fallback: 1000,
    min: 1,
    max: 1_000_000,
    description: "finished deployments kept; older ones are deleted with their files",
  },
  {
    flag: "max-viewers",
    key: "maxViewers",
    kind: "integer",
    value: "N",
    fallback: 10_000,
    min: 1,
    max: 1_000_000,
    description: "event streams open at once, lowered to fit ulimit -n",
  },
  {
    flag: "max-viewers-per-client",
    key: "maxViewersPerClient",
    kind: "integer",
    value: "N",
    fallback: 2500,
    min: 1,
    max: 1_000_000,
    description: "event streams open at once from one client address, lowered to fit ulimit -n",
  },
  {
    flag: "max-body-bytes",
    key: "maxBodyBytes",
    kind: "integer",
    value: "N",
    fallback: 64 * 1024,
    min: 1024,
    max: 64 * MiB,
    description: "largest request body accepted",
  },
  {
    flag: "trusted-proxy",
    key: "trustedProxies",
    kind: "list",
    value: "CIDR[,CIDR]",
    commas: true,
    description: "take the client's address from X-Forwarded-For when a request comes from these networks",
  },
  {
    flag: "session-hours",
    key: "sessionHours",
    kind: "integer",
    value: "N",
    fallback: 168,
    min: 1,
    max: 8760,
    description: "how long a sign-in lasts",
  },
  {
    flag: "redis",
    key: "redis",
    kind: "text",
    value: "URL",
    description:
      "share deployments with every shiplog on this Redis: redis://[[user]:password@]host:port[/db]",
  },
  {
    flag: "redis-prefix",
    key: "redisPrefix",
    kind: "text",
    value: "NAME",
    fallback: "shiplog",
    description: "the start of every Redis key, to keep clusters on one Redis apart",
  },
  {
    flag: "instance",
    key: "instance",
    kind: "text",
    value: "NAME",
    description: "this instance's name in a cluster, unique (default: HOSTNAME:PID-RANDOM)",
  },
  {
    flag: "webhook",
    key: "webhooks",
    kind: "list",
    value: "URL",
    description: "POST deployment.started and deployment.finished here (repeatable; env: comma-separated)",
  },
  {
    flag: "webhook-secret",
    key: "webhookSecret",
    kind: "text",
    value: "SECRET",
    envOnly: true,
    description: "sign each webhook's body with HMAC-SHA256 under this key (no flag: it would show in ps)",
  },
  {
    flag: "webhook-secret-file",
    key: "webhookSecretFile",
    kind: "text",
    value: "PATH",
    description: "read the webhook key from the first line of this file",
  },
  {
    flag: "base-url",
    key: "baseUrl",
    kind: "text",
    value: "URL",
    description: "shiplog's public address, for the links of notifications (default: where it listens)",
  },
];

const envName = (option: Option) => `SHIPLOG_${option.flag.toUpperCase().replaceAll("-", "_")}`;

/** The environment variables shiplog reads, one per flag. */
export const ENVIRONMENT_VARIABLES: readonly string[] = OPTIONS.map(envName);

/** The `--help` text, listing every flag with its environment variable and default. */
export function usage(): string {
  const rows = OPTIONS.map((option) => {
    if (option.envOnly) return `  ${envName(option).padEnd(32)} ${option.description}`;
    const fallback = option.fallback === undefined ? "" : ` (${option.fallback})`;
    return `  --${`${option.flag} ${option.value}`.padEnd(30)} ${option.description}${fallback}\n` +
      `  ${" ".repeat(32)} env ${envName(option)}`;
  });
  return [
    "shiplog: runs deployments and streams their logs live.",
    "",
    "Usage: shiplog [flags]",
    "",
    ...rows,
    `  ${"--help".padEnd(32)} show this help`,
    "",
  ].join("\n");
}

/**
 * Joins `--flag VALUE` into `--flag=VALUE` when the value starts with a dash but is no option (`--keep -1`,
 * `--command -x`): `parseArgs` refuses those as ambiguous, with advice instead of the value's own problem.
 * A value that is itself one of the flags (`--command --port 80`) is left for `parseArgs` to refuse: the value
 * was forgotten.
 */
function joinDashValues(args: string[], spec: Record<string, { type: string }>): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].startsWith("--") && !args[i].includes("=") ? spec[args[i].slice(2)] : undefined;
    const next = args[i + 1];
    const isOption = next !== undefined && (next === "-h" || next.slice(2).split("=")[0] in spec);
    if (flag?.type === "string" && next?.startsWith("-") && !isOption) {
      joined.push(`${args[i]}=${next}`);
      i++;
    } else joined.push(args[i]);
  }
  return joined;
}

/**
 * Resolves the configuration from command-line arguments and environment variables.
 * Throws a `TypeError` or `RangeError` whose message says what is wrong and what is expected.
 */
export function parseConfig(args: string[], env: Record<string, string | undefined>): Config {
  const spec: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {
    help: { type: "boolean" },
  };
  for (const option of OPTIONS) {
    if (!option.envOnly) spec[option.flag] = { type: "string", multiple: option.kind === "list" };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: joinDashValues(args, spec),
      options: spec,
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new TypeError(`${(error as Error).message}; see --help`);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const config: Record<string, unknown> = { help: values.help === true };
  for (const option of OPTIONS) {
    config[option.key] = resolve(option, values[option.flag], env[envName(option)]);
  }
  const result = config as unknown as Config;
  result.given = OPTIONS.filter((option) =>
    values[option.flag] !== undefined || env[envName(option)] !== undefined
  )
    .map((option) => option.key);
  // A flag beats a variable, the variable of the other way to give the token too.
  if (values.token !== undefined && values["token-file"] === undefined) result.tokenFile = undefined;
  if (values["token-file"] !== undefined && values.token === undefined) result.token = undefined;
  if (result.token !== undefined && result.tokenFile !== undefined) {
    const [token, file] = values.token !== undefined
      ? ["--token", "--token-file"]
      : ["SHIPLOG_TOKEN", "SHIPLOG_TOKEN_FILE"];
    throw new TypeError(`Cannot use both ${token} and ${file}: give the token one way`);
  }
  if (result.token !== undefined) {
    checkToken(result.token, values.token !== undefined ? "--token" : "SHIPLOG_TOKEN");
  }
  if ((result.cert === undefined) !== (result.key === undefined)) {
    throw new TypeError("Cannot serve HTTPS with only one of --cert and --key: give both");
  }
  TrustedProxies.parse(
    result.trustedProxies,
    values["trusted-proxy"] !== undefined ? "--trusted-proxy" : "SHIPLOG_TRUSTED_PROXY",
  );
  if (result.authHeader !== undefined) {
    checkAuthHeader(
      result.authHeader,
      values["auth-header"] !== undefined ? "--auth-header" : "SHIPLOG_AUTH_HEADER",
      result.trustedProxies.length > 0,
    );
  }
  // The command is in every record, and a record over 64 KiB is not loaded: even JSON-escaped (six characters
  // for a control character at most), this leaves it room.
  if (result.command !== undefined && new TextEncoder().encode(result.command).length > MAX_COMMAND_BYTES) {
    throw new RangeError(
      `Cannot use ${values.command !== undefined ? "--command" : "SHIPLOG_COMMAND"}: expected at most ` +
        `${MAX_COMMAND_BYTES} bytes; put a longer command in a script and run that`,
    );
  }
  if (result.config !== undefined && result.command !== undefined) {
    const config = values.config !== undefined ? "--config" : "SHIPLOG_CONFIG";
    const command = values.command !== undefined ? "--command" : "SHIPLOG_COMMAND";
    throw new TypeError(
      `Cannot use both ${config} and ${command}: the config file gives each target its command`,
    );
  }
  if (result.redis !== undefined) {
    parseRedisUrl(result.redis, values.redis !== undefined ? "--redis" : "SHIPLOG_REDIS");
  }
  if (result.maxRunning === 0 && result.redis === undefined) {
    throw new RangeError(
      `Cannot use ${values["max-running"] !== undefined ? "--max-running" : "SHIPLOG_MAX_RUNNING"} 0 ` +
        "without --redis: nothing would ever run; 0 is for an instance of a cluster that only serves",
    );
  }
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(result.redisPrefix)) {
    throw new TypeError(
      `Cannot use --redis-prefix "${result.redisPrefix}": expected 1 to 64 letters, digits, or . _ : -`,
    );
  }
  if (result.instance !== undefined && !/^[A-Za-z0-9_.:@-]{1,100}$/.test(result.instance)) {
    throw new TypeError(
      `Cannot use --instance "${result.instance}": expected 1 to 100 letters, digits, or . _ : @ -`,
    );
  }
  for (const name of result.maskEnv) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new TypeError(`Cannot mask --mask-env "${name}": expected an environment variable name`);
    }
  }
  for (const webhook of result.webhooks) {
    parseWebUrl(webhook, values.webhook !== undefined ? "--webhook" : "SHIPLOG_WEBHOOK");
  }
  if (result.baseUrl !== undefined) {
    const source = values["base-url"] !== undefined ? "--base-url" : "SHIPLOG_BASE_URL";
    const url = parseWebUrl(result.baseUrl, source);
    if (url.search !== "" || url.hash !== "") {
      throw new TypeError(`Cannot use ${source} "${url.href}": expected no ?query or #fragment`);
    }
  }
  if (result.webhookSecret !== undefined && result.webhookSecretFile !== undefined) {
    const file = values["webhook-secret-file"] !== undefined
      ? "--webhook-secret-file"
      : "SHIPLOG_WEBHOOK_SECRET_FILE";
    throw new TypeError(`Cannot use both SHIPLOG_WEBHOOK_SECRET and ${file}: give the webhook key one way`);
  }
  return result;
}

/**
 * Checks a Redis URL: `redis://` or `rediss://`, a host, a port if any from 1 to 65535, a database number if
 * any. Returns it parsed. The error names the URL without its password.
 */
export function parseRedisUrl(text: string, source = "--redis"): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // Not even a URL: nothing in it can be told from a password, so none of it is repeated.
    throw new TypeError(`Cannot parse ${source}: expected redis://[[user]:password@]host:port[/db]`);
  }
  const shown = redactUrl(url);
  const problem = url.protocol !== "redis:" && url.protocol !== "rediss:"
    ? "expected redis:// or rediss://"
    : url.hostname === ""
    ? "expected a host"
    : !/^(\/\d{0,5})?$/.test(url.pathname)
    ? "expected a database number after the host, like /0"
    : url.search !== "" || url.hash !== ""
    ? "expected no ?query or #fragment"
    : !decodes(url.username) || !decodes(url.password)
    ? "a % in the user name or password must be written %25"
    : undefined;
  if (problem) throw new TypeError(`Cannot use ${source} "${shown}": ${problem}`);
  return url;
}

/**
 * Checks the URL of a webhook or of shiplog itself: `http://` or `https://`, a host, no user name or password
 * (`fetch` refuses them: a receiver's secret goes in its path, as Slack's do). Returns it parsed. The error shows
 * no more than the scheme and host: the rest of a webhook's URL is often its secret.
 */
export function parseWebUrl(text: string, source: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Cannot parse ${source}: expected an http:// or https:// URL`);
  }
  const shown = url.host === "" ? `${url.protocol}…` : `${url.protocol}//${url.host}/…`;
  const problem = url.protocol !== "http:" && url.protocol !== "https:"
    ? "expected http:// or https://"
    : url.hostname === ""
    ? "expected a host"
    : url.username !== "" || url.password !== ""
    ? "expected no user name or password in the URL; put a receiver's secret in its path or query"
    : undefined;
  if (problem) throw new TypeError(`Cannot use ${source} "${shown}": ${problem}`);
  return url;
}

/** True when `text` is valid percent-encoding. */
function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** Headers that say something else already: a proxy's user name in one of them would be taken for it. */
const RESERVED_HEADERS = [
  "authorization",
  "cookie",
  "host",
  "x-forwarded-for",
  "content-type",
  "content-length",
];

/** Refuses an `--auth-header` that is no header name, is one shiplog reads for something else, or is unguarded. */
function checkAuthHeader(name: string, source: string, proxies: boolean): void {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(name)) {
    throw new TypeError(`Cannot use ${source} "${name}": expected a header name, like X-Forwarded-User`);
  }
  if (RESERVED_HEADERS.includes(name.toLowerCase()) || name.toLowerCase().startsWith("sec-")) {
    throw new TypeError(
      `Cannot use ${source} "${name}": that header means something else; use X-Forwarded-User`,
    );
  }
  if (!proxies) {
    // Without it the header would be believed from nobody, so it does nothing: surely not what was meant.
    throw new TypeError(
      `Cannot use ${source} without --trusted-proxy: the header is believed only from the proxies named there`,
    );
  }
}

/** Refuses a token that cannot protect anything, or that a client could not send back as it is. */
export function checkToken(token: string, source: string): void {
  if (token.length < 8) {
    throw new RangeError(`Cannot use ${source}: expected a token of at least 8 characters`);
  }
  // HTTP headers carry bytes, not text: a Bearer token must be printable ASCII to arrive as it was typed.
  const printable = [...token].every((char) => char >= " " && char <= "~");
  if (token.trim() !== token || !printable) {
    throw new RangeError(
      `Cannot use ${source}: expected a token of printable ASCII characters without spaces at its ends`,
    );
  }
}

function resolve(option: Option, fromFlag: unknown, fromEnv: string | undefined): unknown {
  const source = fromFlag !== undefined ? `--${option.flag}` : envName(option);
  if (option.kind === "list") {
    const items = (text: string) => text.split(",").map((item) => item.trim()).filter((item) => item !== "");
    if (Array.isArray(fromFlag)) return option.commas ? fromFlag.flatMap(items) : fromFlag;
    return fromEnv ? items(fromEnv) : [];
  }
  const raw = (fromFlag as string | undefined) ?? fromEnv;
  if (raw === undefined) return option.fallback;
  if (option.kind === "text") {
    if (raw.trim() === "") throw new TypeError(`Cannot use ${source} "": expected a non-empty value`);
    return raw;
  }
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < option.min! || value > option.max!) {
    throw new RangeError(
      `Cannot parse ${source} "${raw}": expected an integer from ${option.min} to ${option.max}`,
    );
  }
  return value;
}
