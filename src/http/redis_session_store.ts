/**
 * @module
 * The {@linkcode SessionStore} of a cluster: every instance on the same Redis (and prefix) shares the secret,
 * so a cookie signed by one is valid on all, and the revoked sessions, so a sign-out on one holds on all.
 * `P:sessions:secret` (base64) is made once, by whichever instance comes first (`SET NX`); `P:sessions:revoked`
 * is a sorted set of session ids scored by when each expires: what expired is pruned as revocations are added,
 * and the key itself expires with the last of them.
 *
 * While Redis cannot be reached, a session check neither fails nor waits: the signature is trusted, and so are
 * the revocations this instance knows (its own, those it was told of while checking, and the whole set as read
 * at most `refreshMs` before Redis went away). A sign-out meanwhile holds on this instance at once and is written
 * to Redis once it is back. A Redis that comes back without the secret lost its data, revocations included:
 * then a new secret is made (or the one another instance made first is taken), which ends every session — safe,
 * if a nuisance — rather than letting a signed-out cookie in again.
 */

import type { RedisConnection } from "../redis/redis_connection.ts";
import type { SessionStore } from "./session_store.ts";

/** Options of {@linkcode RedisSessionStore.open}. */
export interface RedisSessionStoreOptions {
  /**
   * How old this instance's copy of every revocation may grow before a check reads all of them again (instead of
   * asking for its own), in milliseconds. Default 30,000.
   */
  refreshMs?: number;
}

const SECRET_BYTES = 32;

/** Sessions kept in the Redis that a cluster shares. */
export class RedisSessionStore implements SessionStore {
  #connection: RedisConnection;
  #secret: Uint8Array;
  #refreshMs: number;
  /** The revocations known here, with their expiry (epoch ms): what a check trusts while Redis is away. */
  #known = new Map<string, number>();
  /** Revocations made here that Redis has not taken yet. */
  #unsaved = new Map<string, number>();
  #readAt = 0;
  #reading: Promise<void> | undefined;
  #onUp = () => this.#recover().catch(() => {});

  private constructor(connection: RedisConnection, secret: Uint8Array, refreshMs: number) {
    this.#connection = connection;
    this.#secret = secret;
    this.#refreshMs = refreshMs;
  }

  /**
   * Notes which token this instance requires (as a keyed hash, `P:sessions:token`), and tells whether the
   * instance that noted one before required the same: instances with different tokens refuse each other's
   * sessions, which behind a load balancer signs users out at random. A token changed on purpose is told once,
   * by the first instance restarted with it.
   */
  async sameTokenAsBefore(token: string): Promise<boolean> {
    const key = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(this.#secret),
      {
        name: "HMAC",
        hash: "SHA-256",
      },
      false,
      [
        "sign",
      ],
    );
    const mark = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`shiplog token\0${token}`));
    const hex = [...new Uint8Array(mark)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    const before = await this.#connection.commands.sendCommand([
      "SET",
      this.#connection.key("sessions", "token"),
      hex,
      "GET",
    ]);
    return before === null || before === undefined || String(before) === hex;
  }

  /** Reads (or makes) the cluster's secret and the revocations; rejects when Redis cannot be reached. */
  static async open(
    connection: RedisConnection,
    options: RedisSessionStoreOptions = {},
  ): Promise<RedisSessionStore> {
    const store = new RedisSessionStore(
      connection,
      await takeSecret(connection),
      options.refreshMs ?? 30_000,
    );
    await store.#readAll();
    connection.addEventListener("up", store.#onUp);
    return store;
  }

  /** The secret sessions are signed with: the cluster's, the same on every instance. */
  get secret(): Uint8Array {
    return this.#secret;
  }

  async revoke(id: string, expiresAt: number): Promise<void> {
    if (expiresAt <= Date.now()) return;
    this.#known.set(id, expiresAt);
    this.#unsaved.set(id, expiresAt);
    // While Redis is away the sign-out holds here; it reaches the others once Redis is back (see #recover).
    await this.#save().catch(() => {});
  }

  async isRevoked(id: string): Promise<boolean> {
    const now = Date.now();
    const known = this.#known.get(id);
    if (known !== undefined) {
      if (known > now) return true;
      this.#known.delete(id);
    }
    if (this.#connection.problem !== undefined) return false;
    try {
      // The copy for while Redis is away is read again now and then; the whole set answers this check too.
      if (now - this.#readAt >= this.#refreshMs) {
        await (this.#reading ??= this.#readAll().finally(() => this.#reading = undefined));
        return (this.#known.get(id) ?? 0) > now;
      }
      const expiresAt = await this.#connection.commands.zScore(this.#key(), id);
      if (expiresAt === null || expiresAt <= now) return false;
      this.#known.set(id, expiresAt);
      return true;
    } catch {
      // Redis went away during the check: as while it is away, the signature and what is known here decide.
      return false;
    }
  }

  /** Stops following the connection's reconnections (the connection itself is the caller's). */
  close(): void {
    this.#connection.removeEventListener("up", this.#onUp);
  }

  #key(): string {
    return this.#connection.key("sessions", "revoked");
  }

  /** Writes the revocations Redis has not taken yet, pruning the expired ones. */
  async #save(): Promise<void> {
    if (this.#unsaved.size === 0) return;
    const batch = [...this.#unsaved];
    const key = this.#key();
    const last = Math.max(...batch.map(([, expiresAt]) => expiresAt));
    await this.#connection.commands.multi()
      .zAdd(key, batch.map(([value, score]) => ({ value, score })))
      .zRemRangeByScore(key, "-inf", Date.now())
      // The key goes with its last revocation: set an expiry where none is, move it later where one is.
      .pExpireAt(key, last, "NX")
      .pExpireAt(key, last, "GT")
      .exec();
    for (const [id, expiresAt] of batch) {
      if (this.#unsaved.get(id) === expiresAt) this.#unsaved.delete(id);
    }
  }

  /** Reads every revocation not expired yet into what is known here. */
  async #readAll(): Promise<void> {
    const startedAt = Date.now();
    const all = await this.#connection.commands.zRangeWithScores(this.#key(), startedAt, "+inf", {
      BY: "SCORE",
    });
    for (const { value, score } of all) this.#known.set(value, score);
    for (const [id, expiresAt] of this.#known) if (expiresAt <= startedAt) this.#known.delete(id);
    this.#readAt = startedAt;
  }

  /** Redis is back: the secret is checked (it may have lost its data), then the revocations are exchanged. */
  async #recover(): Promise<void> {
    const secret = await takeSecret(this.#connection);
    if (!equalBytes(secret, this.#secret)) {
      console.error(
        `shiplog: the sessions' secret in Redis at ${this.#connection.shownUrl} was gone or replaced ` +
          "(Redis lost its data?): every session ends, and everyone signs in again",
      );
      this.#secret = secret;
      // Sessions of the old secret no longer pass the signature check: nothing is left to revoke.
      this.#known.clear();
      this.#unsaved.clear();
    }
    await this.#save();
    await this.#readAll();
  }
}

/**
 * The cluster's secret: the one in Redis, else a new one stored there first (`SET NX GET`: whoever comes first
 * makes it, the others take it). A Redis that has none any more lost it, and the revocations with it: so a new
 * one is made, never the old one put back.
 */
async function takeSecret(connection: RedisConnection): Promise<Uint8Array> {
  const made = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  const key = connection.key("sessions", "secret");
  const stored = await connection.commands.set(key, made.toBase64(), { condition: "NX", GET: true });
  if (stored === null) return made;
  if (typeof stored !== "string" || !/^[A-Za-z0-9+/]{43}=$/.test(stored)) {
    throw new TypeError(`Cannot use the sessions' secret in Redis (${key}): expected 32 bytes in base64`);
  }
  return Uint8Array.fromBase64(stored);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}
