/**
 * @module
 * Slows down the guessing of the token, per client address, instead of refusing the address. Wrong tokens are
 * counted per address; past `maxFailures` within `windowMs` the address is throttled: its token attempts are
 * then checked one at a time, at most one per `intervalMs`, the others waiting their turn (at most
 * `maxWaiting` of them; past that, refused at once). So a guesser gets one answer per interval however many
 * requests it sends in parallel (86,400 a day at the default instead of thousands a second), and the right
 * token still gets in from a throttled address, in up to `maxWaiting` intervals. Only while `maxWaiting` or
 * more guesses from that address are in flight at once is it refused too: a token cannot be told from a guess
 * without checking it, and every check is a guess. An IPv6 address counts by its /64, which one host commonly
 * holds whole: otherwise it could guess from a fresh address for every few guesses.
 */

import { isIP } from "node:net";

/** Options of {@linkcode AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Wrong tokens from one address within `windowMs` before it is throttled. Default 10. */
  maxFailures?: number;
  /** How long wrong tokens are remembered, in milliseconds. Default 60,000. */
  windowMs?: number;
  /** While throttled, the time between two checked attempts of one address, in milliseconds. Default 1000. */
  intervalMs?: number;
  /** While throttled, attempts of one address that may wait for their turn. Default 10. */
  maxWaiting?: number;
}

/** What is known of one address. */
interface Attempts {
  /** When its recent wrong tokens came, oldest first. */
  failures: number[];
  /** When the next attempt may be checked while throttled. */
  next: number;
  /** Attempts waiting for their turn. */
  waiting: number;
  /** Settles when the last attempt in line has had its turn. */
  line: Promise<void>;
}

const MAX_TRACKED_ADDRESSES = 10_000;

/** Counts wrong tokens per address and paces the attempts of throttled ones. */
export class AuthThrottle {
  #maxFailures: number;
  #windowMs: number;
  #intervalMs: number;
  #maxWaiting: number;
  #addresses = new Map<string, Attempts>();

  constructor(options: AuthThrottleOptions = {}) {
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#maxWaiting = options.maxWaiting ?? 10;
  }

  /**
   * Waits until an attempt of `address` may be checked: at once unless the address is throttled. Resolves
   * `"now"` when it was not throttled, `"paced"` after waiting its turn, and `"refused"` at once when too many
   * attempts already wait.
   */
  async turn(address: string): Promise<"now" | "paced" | "refused"> {
    const attempts = this.#throttled(network(address));
    if (!attempts) return "now";
    if (attempts.waiting >= this.#maxWaiting) return "refused";
    attempts.waiting++;
    const before = attempts.line;
    const done = Promise.withResolvers<void>();
    attempts.line = done.promise;
    try {
      await before;
      const wait = attempts.next - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      attempts.next = Date.now() + this.#intervalMs;
      return "paced";
    } finally {
      attempts.waiting--;
      done.resolve();
    }
  }

  /** Counts a wrong token from `address`. */
  failed(address: string): void {
    address = network(address);
    const now = Date.now();
    const attempts = this.#addresses.get(address) ??
      { failures: [], next: 0, waiting: 0, line: Promise.resolve() };
    attempts.failures = attempts.failures.filter((at) => at > now - this.#windowMs);
    attempts.failures.push(now);
    // Most recent last; past MAX_TRACKED_ADDRESSES the address that failed longest ago is forgotten.
    this.#addresses.delete(address);
    this.#addresses.set(address, attempts);
    if (this.#addresses.size > MAX_TRACKED_ADDRESSES) {
      this.#addresses.delete(this.#addresses.keys().next().value!);
    }
  }

  /** Seconds until `address` is no longer throttled, if it stops sending wrong tokens. */
  retryAfterSeconds(address: string): number {
    const failures = this.#addresses.get(network(address))?.failures ?? [];
    // Throttled while maxFailures are within the window: until the one that makes it maxFailures leaves.
    const lifting = failures[failures.length - this.#maxFailures] ?? Date.now();
    return Math.max(1, Math.ceil((lifting + this.#windowMs - Date.now()) / 1000));
  }

  /** The address's attempts when it is throttled; forgets those past the window. */
  #throttled(address: string): Attempts | undefined {
    const attempts = this.#addresses.get(address);
    if (!attempts) return undefined;
    const since = Date.now() - this.#windowMs;
    while (attempts.failures.length > 0 && attempts.failures[0] <= since) attempts.failures.shift();
    if (attempts.failures.length === 0 && attempts.waiting === 0) this.#addresses.delete(address);
    return attempts.failures.length >= this.#maxFailures ? attempts : undefined;
  }
}

/** What is throttled as one: an IPv4 address, or the /64 of an IPv6 one (`2001:db8:0:1::/64`). */
export function network(address: string): string {
  if (isIP(address) !== 6) return address;
  const [head, tail] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  // The groups `::` stands for, so that the first four are known; an IPv4 tail (`::ffff:1.2.3.4`) is two.
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const width = (groups: string[]) => groups.reduce((sum, group) => sum + (group.includes(".") ? 2 : 1), 0);
  const groups = [...left, ...Array(Math.max(0, 8 - width(left) - width(right))).fill("0"), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
