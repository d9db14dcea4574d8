/**
 * @module
 * How many connections and event streams the process's open file limit (`ulimit -n`) leaves room for. Every
 * connection holds a descriptor; so do the runtime, the data directory's lock and watcher, each running
 * deployment (its output pipes, its log and its sidecar, its record writes, the tail of its followers) and the log files that
 * viewers replay. Past the limit the runtime cannot accept a connection, spawn a deploy command or append to a
 * log, so the caps on requests in progress and on event streams are kept below it, with headroom for the rest.
 * Where the limit is unknown or unlimited, the caps are those of the flags.
 */

/**
 * Descriptors a running deployment may hold: 2 pipes, the child, its log and its times sidecar, a record write,
 * a tail and the sidecar it reads a batch's times from, spare.
 */
export const DESCRIPTORS_PER_RUNNING = 10;
/** Descriptors kept for everything else: logs replayed to new viewers, record writes, the runtime's own. */
export const SPARE_DESCRIPTORS = 64;
/** The fewest requests in progress shiplog starts with. */
const MIN_CONNECTIONS = 8;

/** What the budget is made from. */
export interface DescriptorUse {
  /** The soft limit on open files; `undefined` when it is unknown or unlimited. */
  limit: number | undefined;
  /** Descriptors open at start-up, before listening. */
  open: number;
  /** `--max-running`. */
  maxRunning: number;
  /** `--max-viewers` and `--max-viewers-per-client`. */
  maxViewers: number;
  maxViewersPerClient: number;
}

/** The caps derived from a {@linkcode DescriptorUse}. */
export interface DescriptorBudget {
  /** Requests in progress at once (each holds a connection); `Infinity` when the limit is unknown. */
  maxConnections: number;
  /** The flags' caps on event streams, lowered to fit. */
  maxViewers: number;
  maxViewersPerClient: number;
  /** What the limit lowered, to print at start-up; `undefined` when it lowered nothing. */
  lowered: string | undefined;
}

/**
 * The caps that fit under the open file limit. Event streams get nine tenths of the room, at two descriptors
 * each, so that pages, API calls and `/healthz` still get through when they are all taken, and one client gets
 * the flags' share of them. Throws a `RangeError` for a limit too low to serve at all.
 */
export function descriptorBudget(use: DescriptorUse): DescriptorBudget {
  if (use.limit === undefined) {
    const { maxViewers, maxViewersPerClient } = use;
    return { maxConnections: Infinity, maxViewers, maxViewersPerClient, lowered: undefined };
  }
  const headroom = use.open + use.maxRunning * DESCRIPTORS_PER_RUNNING + SPARE_DESCRIPTORS;
  const available = use.limit - headroom;
  if (available < MIN_CONNECTIONS) {
    throw new RangeError(
      `Cannot serve with an open file limit of ${use.limit} (ulimit -n): expected at least ` +
        `${
          headroom + MIN_CONNECTIONS
        } with --max-running ${use.maxRunning} (${use.open} are open at start-up)`,
    );
  }
  // A stream may hold two descriptors, its socket and, while its history is replayed, its log: nine tenths of
  // the room go to streams at two each, and requests in progress are capped so that sockets and replays fit.
  const fit = Math.floor((available - Math.ceil(available / 10)) / 2);
  const maxConnections = available - fit;
  const maxViewers = Math.min(use.maxViewers, fit);
  // One client keeps the share of all streams the flags give it (a quarter by default), not all of them.
  const share = Math.min(1, use.maxViewersPerClient / use.maxViewers);
  const maxViewersPerClient = Math.min(use.maxViewersPerClient, Math.max(1, Math.floor(maxViewers * share)));
  const changes = [
    ...maxViewers < use.maxViewers ? [`--max-viewers from ${use.maxViewers} to ${maxViewers}`] : [],
    ...maxViewersPerClient < use.maxViewersPerClient
      ? [`--max-viewers-per-client from ${use.maxViewersPerClient} to ${maxViewersPerClient}`]
      : [],
  ];
  const lowered = changes.length === 0 ? undefined : `the open file limit (${use.limit}, ulimit -n) allows ` +
    `${maxConnections} requests in progress and lowers ${changes.join(" and ")}; raise the limit for more`;
  return { maxConnections, maxViewers, maxViewersPerClient, lowered };
}

/** The process's soft open file limit (`ulimit -n`) and how many descriptors it has open now. */
export interface Descriptors {
  /** `undefined` when unknown or unlimited. */
  limit: number | undefined;
  open: number;
}

/**
 * Asks a shell, which inherits the limit: Deno lets only `--allow-all` read `/proc/self`. Where `/proc` cannot
 * count the open ones, {@linkcode ASSUMED_OPEN} are assumed.
 */
export async function measureDescriptors(): Promise<Descriptors> {
  try {
    const { success, stdout } = await new Deno.Command("sh", {
      args: ["-c", "ulimit -n; ls /proc/$PPID/fd 2>/dev/null | wc -l"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (success) return parseDescriptors(new TextDecoder().decode(stdout));
  } catch {
    // No shell to ask: nothing is known.
  }
  return { limit: undefined, open: ASSUMED_OPEN };
}

/** About what the runtime has open at start-up, where it cannot be counted. */
export const ASSUMED_OPEN = 32;

/** The output of `ulimit -n` and of counting the open descriptors, one line each. */
export function parseDescriptors(output: string): Descriptors {
  const [limit, open] = output.trim().split(/\s+/);
  return {
    limit: /^\d+$/.test(limit ?? "") ? Number(limit) : undefined,
    open: /^\d+$/.test(open ?? "") && Number(open) > 0 ? Number(open) : ASSUMED_OPEN,
  };
}
