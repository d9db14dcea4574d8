import assert from "node:assert/strict";
import { parseConfig, usage } from "./config.ts";

Deno.test("parseConfig() gives the documented defaults", () => {
  assert.deepEqual(parseConfig([], {}), {
    port: 8080,
    hostname: "127.0.0.1",
    dir: "./deployments",
    command: undefined,
    config: undefined,
    maxRunning: 2,
    maxQueued: 1000,
    heartbeatSeconds: 15,
    token: undefined,
    tokenFile: undefined,
    usersFile: undefined,
    authHeader: undefined,
    cert: undefined,
    key: undefined,
    maskEnv: [],
    maxLogBytes: 100 * 1024 * 1024,
    keep: 1000,
    maxViewers: 10_000,
    maxViewersPerClient: 2500,
    maxBodyBytes: 64 * 1024,
    trustedProxies: [],
    sessionHours: 168,
    redis: undefined,
    redisPrefix: "shiplog",
    instance: undefined,
    webhooks: [],
    webhookSecret: undefined,
    webhookSecretFile: undefined,
    baseUrl: undefined,
    help: false,
    given: [],
  });
});

Deno.test("parseConfig() reads every flag", () => {
  const config = parseConfig(
    [
      "--port",
      "0",
      "--hostname=0.0.0.0",
      "--dir",
      "/tmp/x",
      "--command",
      "echo hi",
      "--max-running",
      "5",
      "--heartbeat",
      "3",
    ],
    {},
  );
  assert.deepEqual(
    { ...config },
    {
      ...parseConfig([], {}),
      port: 0,
      hostname: "0.0.0.0",
      dir: "/tmp/x",
      command: "echo hi",
      maxRunning: 5,
      heartbeatSeconds: 3,
      given: ["port", "hostname", "dir", "command", "maxRunning", "heartbeatSeconds"],
    },
  );
  const fromEnv = parseConfig(["--port", "1"], { SHIPLOG_MAX_VIEWERS: "9", SHIPLOG_PORT: "2" });
  assert.deepEqual(fromEnv.given, ["port", "maxViewers"], "a flag or a variable; each setting once");
});

Deno.test("parseConfig() reads environment variables and lets flags win", () => {
  const env = {
    SHIPLOG_PORT: "9000",
    SHIPLOG_HOSTNAME: "::1",
    SHIPLOG_DIR: "d",
    SHIPLOG_COMMAND: "make deploy",
    SHIPLOG_MAX_RUNNING: "3",
    SHIPLOG_HEARTBEAT: "30",
  };
  const fromEnv = parseConfig([], env);
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.hostname, "::1");
  assert.equal(fromEnv.dir, "d");
  assert.equal(fromEnv.command, "make deploy");
  assert.equal(fromEnv.maxRunning, 3);
  assert.equal(fromEnv.heartbeatSeconds, 30);
  assert.equal(parseConfig(["--port", "1234"], env).port, 1234);
});

Deno.test("parseConfig() rejects a command over 8192 bytes, which would not fit in a record", () => {
  assert.equal(parseConfig(["--command", "x".repeat(8192)], {}).command?.length, 8192);
  assert.throws(() => parseConfig(["--command", "é".repeat(4097)], {}), {
    name: "RangeError",
    message:
      "Cannot use --command: expected at most 8192 bytes; put a longer command in a script and run that",
  });
  assert.throws(
    () => parseConfig([], { SHIPLOG_COMMAND: "x".repeat(8193) }),
    /^RangeError: Cannot use SHIPLOG_COMMAND/,
  );
});

Deno.test("parseConfig() reads --config, and refuses it with --command, however each is given", () => {
  assert.equal(parseConfig(["--config", "shiplog.jsonc"], {}).config, "shiplog.jsonc");
  assert.equal(parseConfig([], { SHIPLOG_CONFIG: "/etc/shiplog.json" }).config, "/etc/shiplog.json");
  assert.throws(() => parseConfig(["--config", "c.json", "--command", "make deploy"], {}), {
    name: "TypeError",
    message: "Cannot use both --config and --command: the config file gives each target its command",
  });
  assert.throws(() => parseConfig(["--config", "c.json"], { SHIPLOG_COMMAND: "make deploy" }), {
    name: "TypeError",
    message: "Cannot use both --config and SHIPLOG_COMMAND: the config file gives each target its command",
  });
  assert.throws(() => parseConfig(["--command", "make deploy"], { SHIPLOG_CONFIG: "c.json" }), {
    message: "Cannot use both SHIPLOG_CONFIG and --command: the config file gives each target its command",
  });
  assert.throws(() => parseConfig(["--config", ""], {}), {
    message: 'Cannot use --config "": expected a non-empty value',
  });
});

Deno.test("parseConfig() rejects a port above 65535 with a clear message", () => {
  assert.throws(() => parseConfig(["--port", "65536"], {}), {
    name: "RangeError",
    message: 'Cannot parse --port "65536": expected an integer from 0 to 65535',
  });
});

Deno.test("parseConfig() rejects non-numeric, negative and fractional numbers", () => {
  for (const bad of ["abc", "-1", "1.5", "", "1e3", "0x10"]) {
    assert.throws(() => parseConfig([`--port=${bad}`], {}), RangeError, bad);
  }
  assert.throws(() => parseConfig([], { SHIPLOG_MAX_RUNNING: "1001" }), {
    message: 'Cannot parse SHIPLOG_MAX_RUNNING "1001": expected an integer from 0 to 1000',
  });
  assert.throws(() => parseConfig(["--heartbeat", "0"], {}), RangeError);
});

Deno.test("parseConfig() takes a value after a space that starts with a dash, and says what is wrong with it", () => {
  assert.throws(() => parseConfig(["--keep", "-1"], {}), {
    name: "RangeError",
    message: 'Cannot parse --keep "-1": expected an integer from 1 to 1000000',
  });
  assert.equal(parseConfig(["--command", "-x", "--port", "9"], {}).command, "-x");
  // The next flag is no value: it was forgotten.
  assert.throws(() => parseConfig(["--command", "--port", "9"], {}), {
    name: "TypeError",
    message: /'--command'/,
  });
});

Deno.test("parseConfig() rejects unknown flags, positionals and empty values", () => {
  assert.throws(() => parseConfig(["--prot", "1"], {}), TypeError);
  assert.throws(() => parseConfig(["serve"], {}), TypeError);
  assert.throws(() => parseConfig(["--command", ""], {}), TypeError);
  assert.throws(() => parseConfig(["--port"], {}), TypeError);
});

Deno.test("parseConfig() recognises --help, and usage() lists every flag and variable", () => {
  assert.equal(parseConfig(["--help"], {}).help, true);
  const text = usage();
  for (
    const word of ["--port", "--hostname", "--dir", "--command", "--max-running", "--heartbeat", "--help"]
  ) {
    assert.ok(text.includes(word), word);
  }
  for (const name of ["SHIPLOG_PORT", "SHIPLOG_DIR", "SHIPLOG_COMMAND", "SHIPLOG_HEARTBEAT"]) {
    assert.ok(text.includes(name), name);
  }
});

Deno.test("parseConfig() reads the hardening flags", () => {
  const config = parseConfig([
    "--token-file=/run/secret",
    "--cert=c.pem",
    "--key=k.pem",
    "--mask-env=AWS_SECRET",
    "--mask-env",
    "DB_PASSWORD",
    "--max-log-bytes=2048",
    "--keep=5",
    "--max-viewers=9",
    "--max-viewers-per-client=3",
    "--max-body-bytes=4096",
    "--max-queued=20",
  ], { SHIPLOG_MASK_ENV: "IGNORED" });
  assert.equal(config.tokenFile, "/run/secret");
  assert.equal(config.cert, "c.pem");
  assert.equal(config.key, "k.pem");
  assert.deepEqual(config.maskEnv, ["AWS_SECRET", "DB_PASSWORD"]);
  assert.equal(config.maxLogBytes, 2048);
  assert.equal(config.keep, 5);
  assert.equal(config.maxViewers, 9);
  assert.equal(config.maxViewersPerClient, 3);
  assert.equal(config.maxBodyBytes, 4096);
  assert.equal(config.maxQueued, 20);
  assert.equal(parseConfig([], { SHIPLOG_MAX_QUEUED: "10000" }).maxQueued, 10_000);
  assert.deepEqual(parseConfig([], { SHIPLOG_MASK_ENV: "A, B,," }).maskEnv, ["A", "B"]);
  assert.equal(parseConfig([], { SHIPLOG_TOKEN: "s3cret-token" }).token, "s3cret-token");
});

Deno.test("parseConfig() reads --trusted-proxy (repeatable, comma-separated) and --session-hours", () => {
  const config = parseConfig([
    "--trusted-proxy=10.0.0.0/8, fd00::/8",
    "--trusted-proxy",
    "192.168.1.10",
    "--session-hours=12",
  ], { SHIPLOG_TRUSTED_PROXY: "172.16.0.0/12", SHIPLOG_SESSION_HOURS: "1" });
  assert.deepEqual(config.trustedProxies, ["10.0.0.0/8", "fd00::/8", "192.168.1.10"]);
  assert.equal(config.sessionHours, 12);
  const fromEnv = parseConfig([], { SHIPLOG_TRUSTED_PROXY: "172.16.0.0/12,::1", SHIPLOG_SESSION_HOURS: "1" });
  assert.deepEqual(fromEnv.trustedProxies, ["172.16.0.0/12", "::1"]);
  assert.equal(fromEnv.sessionHours, 1);
  assert.throws(
    () => parseConfig(["--trusted-proxy=10.0.0.0/8,10.0.0.0/33"], {}),
    /^RangeError: Cannot parse --trusted-proxy "10\.0\.0\.0\/33": expected an IPv4 or IPv6 address/,
  );
  assert.throws(
    () => parseConfig([], { SHIPLOG_TRUSTED_PROXY: "proxy.internal" }),
    /^RangeError: Cannot parse SHIPLOG_TRUSTED_PROXY "proxy\.internal": expected an IPv4 or IPv6 address/,
  );
  assert.throws(
    () => parseConfig(["--session-hours=0"], {}),
    /Cannot parse --session-hours "0": expected an integer from 1 to 8760/,
  );
});

Deno.test("parseConfig(): a token flag beats the variable of the other way to give the token", () => {
  const fromFile = parseConfig(["--token-file=/run/secret"], { SHIPLOG_TOKEN: "from-the-environment" });
  assert.equal(fromFile.tokenFile, "/run/secret");
  assert.equal(fromFile.token, undefined);
  const fromFlag = parseConfig(["--token=from-the-flag"], { SHIPLOG_TOKEN_FILE: "/run/secret" });
  assert.equal(fromFlag.token, "from-the-flag");
  assert.equal(fromFlag.tokenFile, undefined);
  assert.throws(
    () => parseConfig([], { SHIPLOG_TOKEN: "from-the-environment", SHIPLOG_TOKEN_FILE: "/run/secret" }),
    /Cannot use both SHIPLOG_TOKEN and SHIPLOG_TOKEN_FILE/,
  );
});

Deno.test("parseConfig() refuses a token too short, or with spaces at its ends, naming where it came from", () => {
  assert.throws(
    () => parseConfig(["--token=short"], {}),
    /Cannot use --token: expected a token of at least 8/,
  );
  assert.throws(
    () => parseConfig([], { SHIPLOG_TOKEN: " spaced-token" }),
    /Cannot use SHIPLOG_TOKEN: .*spaces/,
  );
  assert.equal(parseConfig(["--token=correct horse battery"], {}).token, "correct horse battery");
});

Deno.test("parseConfig() rejects contradictory or malformed hardening flags", () => {
  assert.throws(
    () => parseConfig(["--token=a-long-token", "--token-file=b"], {}),
    /both --token and --token-file/,
  );
  assert.throws(() => parseConfig(["--cert=c.pem"], {}), /only one of --cert and --key/);
  assert.throws(() => parseConfig(["--mask-env=A B"], {}), /expected an environment variable name/);
  assert.throws(() => parseConfig(["--max-log-bytes=10"], {}), RangeError);
  assert.throws(() => parseConfig(["--keep=0"], {}), RangeError);
  assert.throws(() => parseConfig(["--max-queued=0"], {}), {
    message: 'Cannot parse --max-queued "0": expected an integer from 1 to 100000',
  });
});

Deno.test("parseConfig() reads the cluster flags, and checks the Redis URL without printing its password", () => {
  const config = parseConfig(
    ["--redis", "redis://:hunter22@10.0.0.5:6380/2", "--redis-prefix", "blue", "--instance", "web-1"],
    {},
  );
  assert.equal(config.redis, "redis://:hunter22@10.0.0.5:6380/2");
  assert.equal(config.redisPrefix, "blue");
  assert.equal(config.instance, "web-1");
  assert.equal(
    parseConfig([], { SHIPLOG_REDIS: "rediss://cache.internal" }).redis,
    "rediss://cache.internal",
  );
  for (
    const [url, problem] of [
      ["http://:hunter22@host:6379", "expected redis:// or rediss://"],
      ["redis://:hunter22@host:6379/zero", "expected a database number"],
      ["redis://:hunter22@host:6379/0?timeout=1", "expected no ?query"],
      ["redis://:50%off-hunter22@host:6379", "a % in the user name or password must be written %25"],
    ]
  ) {
    assert.throws(() => parseConfig(["--redis", url], {}), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(`^Cannot use --redis ".*\\*\\*\\*@host:6379.*": ${RegExp.escape(problem)}`),
      );
      assert.doesNotMatch(error.message, /hunter22/);
      return true;
    });
  }
  assert.throws(() => parseConfig([], { SHIPLOG_REDIS: "not a url hunter22" }), (error: Error) => {
    assert.equal(
      error.message,
      "Cannot parse SHIPLOG_REDIS: expected redis://[[user]:password@]host:port[/db]",
    );
    return true;
  });
  assert.throws(() => parseConfig(["--redis-prefix", "a b"], {}), /--redis-prefix "a b": expected 1 to 64/);
  assert.throws(() => parseConfig(["--instance", "web 1"], {}), /--instance "web 1": expected 1 to 100/);
});

Deno.test("parseConfig() allows --max-running 0 only with --redis: an instance that serves and runs nothing", () => {
  assert.equal(parseConfig(["--max-running", "0", "--redis", "redis://127.0.0.1:6379"], {}).maxRunning, 0);
  assert.throws(
    () => parseConfig(["--max-running", "0"], {}),
    /^RangeError: Cannot use --max-running 0 without --redis: nothing would ever run/,
  );
});

Deno.test("parseConfig() reads --users-file and --auth-header, and their variables", () => {
  const flags = parseConfig(
    [
      "--users-file",
      "/etc/shiplog/users",
      "--auth-header",
      "X-Forwarded-User",
      "--trusted-proxy",
      "10.0.0.1",
    ],
    {},
  );
  assert.equal(flags.usersFile, "/etc/shiplog/users");
  assert.equal(flags.authHeader, "X-Forwarded-User");
  const env = parseConfig([], {
    SHIPLOG_USERS_FILE: "users.txt",
    SHIPLOG_AUTH_HEADER: "X-Auth-Request-User",
    SHIPLOG_TRUSTED_PROXY: "127.0.0.1/32",
  });
  assert.equal(env.usersFile, "users.txt");
  assert.equal(env.authHeader, "X-Auth-Request-User");
});

Deno.test("parseConfig() refuses --auth-header without --trusted-proxy, or naming no header or a reserved one", () => {
  assert.throws(
    () => parseConfig(["--auth-header", "X-Forwarded-User"], {}),
    new TypeError(
      "Cannot use --auth-header without --trusted-proxy: the header is believed only from the proxies named there",
    ),
  );
  const proxy = ["--trusted-proxy", "10.0.0.0/8"];
  assert.throws(
    () => parseConfig(["--auth-header", "X Forwarded User", ...proxy], {}),
    new TypeError(
      'Cannot use --auth-header "X Forwarded User": expected a header name, like X-Forwarded-User',
    ),
  );
  for (const name of ["Authorization", "cookie", "X-Forwarded-For", "Sec-Fetch-Site"]) {
    assert.throws(
      () => parseConfig([...proxy], { SHIPLOG_AUTH_HEADER: name }),
      new TypeError(
        `Cannot use SHIPLOG_AUTH_HEADER "${name}": that header means something else; use X-Forwarded-User`,
      ),
    );
  }
});

Deno.test("parseConfig() reads webhooks from repeated flags, or from their variable comma-separated", () => {
  const flags = parseConfig(
    ["--webhook", "https://chat.test/hooks/a,b", "--webhook=http://10.0.0.7:9000/x"],
    {
      SHIPLOG_WEBHOOK: "https://ignored.test/",
    },
  );
  // A URL may hold a comma: a flag's value is one URL.
  assert.deepEqual(flags.webhooks, ["https://chat.test/hooks/a,b", "http://10.0.0.7:9000/x"]);
  const env = parseConfig([], { SHIPLOG_WEBHOOK: " https://chat.test/one , https://chat.test/two," });
  assert.deepEqual(env.webhooks, ["https://chat.test/one", "https://chat.test/two"]);
  assert.deepEqual(env.given, ["webhooks"]);
});

Deno.test("parseConfig() refuses a webhook or base URL that is not http(s), naming it without its path", () => {
  const cases: [string[], Record<string, string>, string][] = [
    [
      ["--webhook", "ftp://chat.test/hooks/T0/B0/secret"],
      {},
      'Cannot use --webhook "ftp://chat.test/…": expected http:// or https://',
    ],
    [["--webhook", "hooks.test/x"], {}, "Cannot parse --webhook: expected an http:// or https:// URL"],
    [
      [],
      { SHIPLOG_WEBHOOK: "https://ok.test/,mailto:ops@x.test" },
      'Cannot use SHIPLOG_WEBHOOK "mailto:…": expected http:// or https://',
    ],
    [
      ["--webhook", "https://user:hunter22@chat.test/x"],
      {},
      'Cannot use --webhook "https://chat.test/…": expected no user name or password in the URL',
    ],
    [["--base-url", "shiplog.test"], {}, "Cannot parse --base-url: expected an http:// or https:// URL"],
    [
      [],
      { SHIPLOG_BASE_URL: "https://shiplog.test/?a=1" },
      'Cannot use SHIPLOG_BASE_URL "https://shiplog.test/?a=1": expected no ?query or #fragment',
    ],
  ];
  for (const [args, env, message] of cases) {
    assert.throws(() => parseConfig(args, env), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.message.startsWith(message), `${error.message} does not start with ${message}`);
      assert.ok(!error.message.includes("B0/secret") && !error.message.includes("hunter22"), error.message);
      return true;
    });
  }
});

Deno.test("parseConfig() reads the webhook key from its variable only, and not with a key file as well", () => {
  assert.equal(parseConfig([], { SHIPLOG_WEBHOOK_SECRET: "k3y" }).webhookSecret, "k3y");
  // No flag: a key given on the command line shows in `ps`.
  assert.throws(() => parseConfig(["--webhook-secret", "k3y"], {}), /Unknown option '--webhook-secret'/);
  const config = parseConfig(
    ["--webhook-secret-file", "/run/hook-key", "--base-url", "https://ship.test/x/"],
    {},
  );
  assert.equal(config.webhookSecretFile, "/run/hook-key");
  assert.equal(config.baseUrl, "https://ship.test/x/");
  assert.throws(
    () => parseConfig(["--webhook-secret-file", "/run/hook-key"], { SHIPLOG_WEBHOOK_SECRET: "k3y" }),
    /^TypeError: Cannot use both SHIPLOG_WEBHOOK_SECRET and --webhook-secret-file: give the webhook key one way$/,
  );
  const text = usage();
  for (
    const word of ["--webhook URL", "SHIPLOG_WEBHOOK_SECRET ", "--webhook-secret-file PATH", "--base-url URL"]
  ) {
    assert.ok(text.includes(word), word);
  }
  assert.ok(!text.includes("--webhook-secret "), "an option --webhook-secret would put the key in ps");
});
