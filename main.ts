/**
 * @module
 * The shiplog program: the only reader of `Deno.args` and `Deno.env`. It resolves the configuration, the targets
 * of `--config`, the secrets to mask and the deploy command's environment, starts the server, prints where it listens, and on SIGINT or
 * SIGTERM shuts down cleanly and exits 0.
 */

import { startApp } from "./src/app.ts";
import { checkToken, ENVIRONMENT_VARIABLES, parseConfig, usage } from "./src/config.ts";
import { redactUrl } from "./src/redis/redacted_url.ts";
import { MIN_SECRET_LENGTH, OutputFilter } from "./src/logs/output_filter.ts";
import { hashToken, parseUsersFile, type User } from "./src/http/users_file.ts";
import { readTargetConfig } from "./src/runs/target_config.ts";

const SHUTDOWN_DEADLINE_MS = 4500;
/** How long, past the deadline, stopping what deployments left running may take. */
const ABANDON_MS = 400;

async function main(): Promise<number> {
  let config;
  try {
    const env = Object.fromEntries(ENVIRONMENT_VARIABLES.map((name) => [name, Deno.env.get(name)]));
    config = parseConfig(Deno.args, env);
  } catch (error) {
    console.error(`shiplog: ${(error as Error).message}`);
    return 2;
  }
  if (config.help) {
    console.log(usage());
    return 0;
  }
  // Read and checked before anything starts: a bad file is a wrong setting, refused with its place.
  let targets;
  if (config.config !== undefined) {
    try {
      targets = await readTargetConfig(config.config);
    } catch (error) {
      console.error(`shiplog: ${(error as Error).message}`);
      return 2;
    }
  }
  const loopback = ["127.0.0.1", "localhost", "::1"].includes(config.hostname) ||
    config.hostname.startsWith("127.");
  const controlled = config.token !== undefined || config.tokenFile !== undefined ||
    config.usersFile !== undefined || config.authHeader !== undefined;
  if (!loopback && !controlled) {
    console.error(
      `shiplog: warning: listening on ${config.hostname} without --token exposes shiplog beyond this machine; ` +
        "anyone who can reach it can start and cancel deployments",
    );
  }
  let token = config.token;
  if (config.tokenFile !== undefined) {
    token = await firstLine(config.tokenFile);
    if (token === undefined) return 1;
    // Checked before anything starts (the store would recover the deployments of a previous run): a token
    // that is unfit is a wrong setting like a short --token, exit 2.
    try {
      checkToken(token, `the token in ${config.tokenFile}`);
    } catch (error) {
      console.error(`shiplog: ${(error as Error).message}`);
      return 2;
    }
  }
  let users: User[] = [];
  if (config.usersFile !== undefined) {
    let text;
    try {
      text = await Deno.readTextFile(config.usersFile);
    } catch (error) {
      console.error(`shiplog: ${(error as Error).message}`);
      return 1;
    }
    // A bad line is a wrong setting, like an unfit token: exit 2, before anything starts.
    try {
      users = parseUsersFile(text, config.usersFile);
    } catch (error) {
      console.error(`shiplog: ${(error as Error).message}`);
      return 2;
    }
    const unnamed = token === undefined ? undefined : hashToken(token).toHex();
    const same = users.find(({ tokenHash }) => tokenHash.toHex() === unnamed);
    if (same) {
      console.error(
        `shiplog: Cannot use users file ${config.usersFile}: the token of "${same.name}" is the unnamed ` +
          "--token too; give each their own",
      );
      return 2;
    }
  }
  let webhookSecret = config.webhookSecret;
  if (config.webhookSecretFile !== undefined) {
    webhookSecret = await firstLine(config.webhookSecretFile);
    if (webhookSecret === undefined) return 1;
  }
  // An empty key would sign every body with a key anyone knows: a wrong setting, like an empty token file.
  if (config.webhookSecretFile !== undefined && webhookSecret === "") {
    console.error(
      `shiplog: Cannot sign webhooks with ${config.webhookSecretFile}: expected a key on its first line`,
    );
    return 2;
  }
  const masked = config.maskEnv.map((name) => ({ name, value: Deno.env.get(name) ?? "" }));
  const tooShort = masked.filter(({ value }) => OutputFilter.tooShort(value)).map(({ name }) => name);
  if (tooShort.length > 0) {
    console.error(
      `shiplog: warning: not masking --mask-env ${tooShort.join(", ")}: ` +
        `a value under ${MIN_SECRET_LENGTH} characters would mask ordinary text too`,
    );
  }
  // Listened for before anything starts: a signal that comes as the listening line is printed (a supervisor's
  // stop right after start) would otherwise end the process by the signal's default action, without a shutdown.
  const stopped = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopped.resolve());
  }
  // The host and pid say where it runs; the suffix keeps it unique where every shiplog is pid 1 (containers).
  const instance = config.instance ??
    `${Deno.hostname()}:${Deno.pid}-${crypto.randomUUID().slice(0, 4)}`;
  let app;
  try {
    const tls = config.cert === undefined || config.key === undefined
      ? undefined
      : { cert: await Deno.readTextFile(config.cert), key: await Deno.readTextFile(config.key) };
    // The deploy command gets shiplog's environment without shiplog's settings: the token, its file, the rest.
    const settings = new Set(ENVIRONMENT_VARIABLES);
    const commandEnv = Object.fromEntries(
      Object.entries(Deno.env.toObject()).filter(([name]) => !settings.has(name)),
    );
    const secrets = masked.map(({ value }) => value);
    app = await startApp({
      ...config,
      instance,
      token,
      users,
      webhookSecret,
      tls,
      secrets,
      commandEnv,
      targets,
    });
  } catch (error) {
    console.error(`shiplog: ${(error as Error).message}`);
    return 1;
  }
  console.log(`shiplog listening on ${app.url}`);
  if (config.webhooks.length > 0 && config.baseUrl === undefined && !loopback) {
    console.error(
      `shiplog: warning: notifications link to ${app.url}, where shiplog listens; ` +
        "give --base-url for the address its users open",
    );
  }
  if (config.redis !== undefined) {
    console.log(
      `shiplog instance ${instance} of the cluster on ${redactUrl(config.redis)} (${config.redisPrefix})`,
    );
  }

  await stopped.promise;
  // A stuck shutdown must not keep the process alive: the deadline is what a supervisor can rely on.
  const deadline = setTimeout(async () => {
    // Often a client that reads too slowly to take what was already queued for it: nothing to stop then.
    console.error("shiplog: shutdown took too long; exiting");
    // Their records stay "running": the next start records them interrupted, as after a crash.
    const running = await Promise.race([
      app.abandon(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ABANDON_MS)),
    ]);
    if (running) console.error(`shiplog: stopped the processes of ${running} deployment(s) left running`);
    Deno.exit(0);
  }, SHUTDOWN_DEADLINE_MS);
  await app.shutdown();
  clearTimeout(deadline);
  return 0;
}

/** The first line of a secret's file, trimmed; `undefined` once it said why the file cannot be read. */
async function firstLine(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).split("\n")[0].trim();
  } catch (error) {
    console.error(`shiplog: ${(error as Error).message}`);
    return undefined;
  }
}

Deno.exit(await main());
