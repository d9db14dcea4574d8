/**
 * @module
 * One deployment per press of Start. The home page's form carries a fresh key (an API client may send one as
 * `Idempotency-Key`); the same key sent again within a short window, by a double click without JavaScript or a
 * request sent twice, gets the deployment the first one made instead of a second one. A failed start frees its
 * key, so trying again works. {@linkcode StartGuard} remembers the keys in this process; a guard on a store
 * that several instances share (`RedisStartGuard`) implements {@linkcode StartKeyGuard} as well, so that the same
 * key sent to two instances starts one deployment.
 */

import type { Deployment } from "../logs/deployment.ts";
import { HttpError } from "./http_error.ts";

/** Options of {@linkcode StartGuard}. */
export interface StartGuardOptions {
  /** How long a key stands for its deployment, in milliseconds. Default 10,000. */
  windowMs?: number;
  /** Keys remembered at most; the oldest go first. Default 10,000. */
  maxKeys?: number;
}

/** Visible ASCII, as the Idempotency-Key draft's keys and this page's are; quotes around it are dropped. */
const KEY = /^[\x21-\x7e]{1,255}$/;

/** What {@linkcode StartGuard.start} made, or found made by an earlier request with the same key. */
export interface Start {
  deployment: Promise<Deployment>;
  /** True when an earlier request with the same key made it. */
  repeated: boolean;
}

/** What the routes need of a guard: the start of a key, made once. */
export interface StartKeyGuard {
  /**
   * Calls `create` with the id to give the deployment, unless a start with `key` (if any) was made within the
   * window. 400 for a malformed key.
   */
  start(key: string | null | undefined, create: (id: string) => Promise<Deployment>): Start | Promise<Start>;
}

/**
 * A key as sent, without the quotes the draft standard puts around it; `undefined` for none. Throws 400 for a
 * malformed one.
 */
export function parseStartKey(key: string | null | undefined): string | undefined {
  if (key === null || key === undefined || key === "") return undefined;
  // The draft standard sends it as a quoted string: `Idempotency-Key: "8e03978e-…"`.
  if (key.length > 1 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (!KEY.test(key)) {
    throw new HttpError(400, "Cannot use the start key: expected 1 to 255 visible ASCII characters");
  }
  return key;
}

/** Remembers the keys of recent starts, in this process. */
export class StartGuard implements StartKeyGuard {
  #recent = new Map<string, { at: number; deployment: Promise<Deployment> }>();
  #windowMs: number;
  #maxKeys: number;

  constructor(options: StartGuardOptions = {}) {
    this.#windowMs = options.windowMs ?? 10_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Calls `create` unless a start with `key` (if any) was made within the window. 400 for a malformed key. */
  start(sent: string | null | undefined, create: (id: string) => Promise<Deployment>): Start {
    const key = parseStartKey(sent);
    if (key === undefined) return { deployment: create(crypto.randomUUID()), repeated: false };
    const now = Date.now();
    this.#forgetOld(now);
    const earlier = this.#recent.get(key);
    if (earlier) return { deployment: earlier.deployment, repeated: true };
    const deployment = create(crypto.randomUUID());
    this.#recent.set(key, { at: now, deployment });
    // A start that failed made nothing: the same key may try again.
    deployment.catch(() => {
      if (this.#recent.get(key)?.deployment === deployment) this.#recent.delete(key);
    });
    return { deployment, repeated: false };
  }

  /** Keys come in time order, so the old ones are at the front. */
  #forgetOld(now: number): void {
    for (const [key, { at }] of this.#recent) {
      if (now - at < this.#windowMs && this.#recent.size < this.#maxKeys) break;
      this.#recent.delete(key);
    }
  }
}
