/**
 * @module
 * Access control: who a request comes from, or why it may not pass. Three ways to be someone: a token (the
 * unnamed `--token`, or a user's own from the users file), sent as `Authorization: Bearer <token>`; a session
 * cookie, which a browser gets by signing in once on a small form; or, behind a single-sign-on proxy, the
 * header the proxy names the user in (`--auth-header`), believed only from the proxy's addresses
 * (`--trusted-proxy`) and ignored from anywhere else. A session cookie (`HttpOnly`, `SameSite=Lax`) holds
 * never the token but a random id with its issue time, expiry and user, signed (HMAC-SHA256) with a key derived
 * from that user's token and a secret of the {@linkcode SessionStore} (derived again if the store's secret
 * changes: a cluster's Redis that lost it). So a session cannot be computed from a token alone, a user's new
 * token (or their line taken out of the file) ends their sessions, and signing out revokes the one signed out.
 * A valid session always passes; a cookie that is not one is just no session. Wrong tokens are counted per
 * address and slow that address's attempts down ({@linkcode AuthThrottle}). Comparisons are constant-time.
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { AuthThrottle, type AuthThrottleOptions } from "./auth_throttle.ts";
import { normalAddress, type TrustedProxies } from "./client_address.ts";
import { checkToken } from "../config.ts";
import { HttpError } from "./http_error.ts";
import type { SessionStore } from "./session_store.ts";
import { type User, userNameProblem } from "./users_file.ts";

/** Options of {@linkcode Auth}. */
export interface AuthOptions extends AuthThrottleOptions {
  /** Whether cookies get `Secure` (served over TLS). */
  secure?: boolean;
  /** How long a session lasts, in milliseconds. Default 168 hours. */
  sessionMs?: number;
  /** The named users, each signing in with a token of their own (`--users-file`). Default none. */
  users?: readonly User[];
  /**
   * The header a single-sign-on proxy names the user in (`--auth-header`), and the proxies it is believed from
   * (`--trusted-proxy`). Default none.
   */
  header?: { name: string; proxies: TrustedProxies };
}

/**
 * What {@linkcode Auth.check} and {@linkcode Auth.signIn} found: `throttled` is a wrong token from a throttled
 * address, or an attempt refused because too many of its address already wait.
 */
export type AuthResult = "ok" | AuthFailure;

/** Why a request may not pass. */
export type AuthFailure = "missing" | "wrong" | "throttled";

/** Who a request comes from. */
export interface Identity {
  /** The user's name; `null` for whoever holds the unnamed `--token`. */
  user: string | null;
  /** How they were told: a token (Bearer or the sign-in form), a session cookie, or the proxy's header. */
  via: "token" | "session" | "header";
}

/** The cookie that carries a signed-in browser's session. */
export const SESSION_COOKIE = "shiplog_session";

/** What a session cookie says, signed. */
interface Session {
  /** Random, base64url: what a sign-out revokes. */
  id: string;
  /** Issued at, epoch milliseconds. */
  iat: number;
  /** Expires at, epoch milliseconds. */
  exp: number;
  /** The user's name; absent for the unnamed `--token` (as in the sessions from before there were users). */
  user?: string;
}

/** One way in by token: whose it is, its digest, and what its sessions' key is derived from. */
interface Credential {
  user: string | null;
  hash: Uint8Array;
  /** Differs per user and per token: a user's new token ends their sessions, and nobody else's. */
  keySeed: string;
}

const HOUR_MS = 3_600_000;

/** Checks credentials against the tokens, the sessions and the proxy's header. */
export class Auth {
  /** By user name; `null` for the unnamed `--token`. */
  #credentials: Map<string | null, Credential>;
  /** The session keys of the store's current secret, by user. */
  #keys: { secret: Uint8Array; byUser: Map<string | null, Uint8Array> } | undefined;
  #header: AuthOptions["header"];
  #sessions: SessionStore;
  #throttle: AuthThrottle;
  #secure: boolean;
  #sessionMs: number;

  private constructor(credentials: Credential[], sessions: SessionStore, options: AuthOptions) {
    this.#credentials = new Map(credentials.map((credential) => [credential.user, credential]));
    this.#header = options.header;
    this.#sessions = sessions;
    this.#throttle = new AuthThrottle(options);
    this.#secure = options.secure ?? false;
    this.#sessionMs = options.sessionMs ?? 168 * HOUR_MS;
  }

  /**
   * Prepares the checks for the unnamed `token` (`undefined`: none) and `options.users`, with the sessions of
   * `sessions`. Throws a `TypeError` when nothing would let anyone in, and a `RangeError` for an unfit token or
   * a user's token that is the unnamed one too (who would the holder be?).
   */
  static create(token: string | undefined, sessions: SessionStore, options: AuthOptions = {}): Auth {
    const users = options.users ?? [];
    if (token === undefined && users.length === 0 && options.header === undefined) {
      throw new TypeError("Cannot control access without a token, a users file or an auth header");
    }
    const credentials: Credential[] = [];
    if (token !== undefined) {
      checkToken(token, "the token");
      // The key of the sessions from before there were users: an upgrade signs nobody out.
      credentials.push({ user: null, hash: digest(token), keySeed: `shiplog session key v2\n${token}` });
    }
    for (const { name, tokenHash } of users) {
      const problem = userNameProblem(name);
      if (problem) throw new RangeError(problem);
      if (token !== undefined && equal(tokenHash, credentials[0].hash)) {
        throw new RangeError(
          `Cannot use the token of "${name}": it is the unnamed --token too; give each their own`,
        );
      }
      credentials.push({
        user: name,
        hash: tokenHash,
        keySeed: `shiplog session key v3\n${name}\n${tokenHash.toHex()}`,
      });
    }
    return new Auth(credentials, sessions, options);
  }

  /** Whether anyone can sign in with a token (not so when only a proxy's header lets people in). */
  get takesTokens(): boolean {
    return this.#credentials.size > 0;
  }

  /** The header a proxy names the user in, if one is believed (`--auth-header`). */
  get headerName(): string | undefined {
    return this.#header?.name;
  }

  /** Checks a request's bearer token or session cookie; a bearer token may wait its turn (see the module). */
  async check(request: Request, address: string, peer = address): Promise<AuthResult> {
    const found = await this.identify(request, address, peer);
    return typeof found === "string" ? found : "ok";
  }

  /**
   * Who sent `request` from `address` (the client's, for the throttle) over a connection from `peer` (the TCP
   * peer's, which alone decides whether the proxy's header is believed). A header from a trusted proxy that
   * names nobody fit to be a user is a `400` ({@linkcode HttpError}): the proxy is misconfigured.
   */
  async identify(request: Request, address: string, peer = address): Promise<Identity | AuthFailure> {
    const named = this.#fromHeader(request, peer);
    if (named !== undefined) return { user: named, via: "header" };
    // Only a Bearer header is for shiplog: a proxy's own (Basic) credentials must not hide the session cookie.
    const bearer = /^Bearer\s+(.+?)\s*$/i.exec(request.headers.get("authorization") ?? "");
    if (bearer) return await this.byToken(bearer[1], address);
    const session = await this.#session(request);
    return session ? { user: session.user ?? null, via: "session" } : "missing";
  }

  /** Checks a token (a bearer's, or typed into the sign-in form), counting a wrong one against `address`. */
  async signIn(token: string, address: string): Promise<AuthResult> {
    const found = await this.byToken(token, address);
    return typeof found === "string" ? found : "ok";
  }

  /** Whose `token` is, counting a wrong one against `address` (which may have to wait its turn). */
  async byToken(token: string, address: string): Promise<Identity | AuthFailure> {
    const turn = await this.#throttle.turn(address);
    if (turn === "refused") return "throttled";
    const credential = this.#match(token);
    if (credential) return { user: credential.user, via: "token" };
    this.#throttle.failed(address);
    return turn === "paced" ? "throttled" : "wrong";
  }

  /** True when `token` is a token of ours, compared in constant time. */
  matches(token: string): boolean {
    return this.#match(token) !== undefined;
  }

  /**
   * The `Set-Cookie` value that signs a browser in with a new session of `user` (`null`: the unnamed token's).
   * Throws a `TypeError` for a user that has no token here.
   */
  sessionCookie(user: string | null = null): string {
    if (!this.#credentials.has(user)) throw new TypeError(`Cannot make a session for ${user ?? "the token"}`);
    const iat = Date.now();
    const session: Session = {
      id: crypto.getRandomValues(new Uint8Array(16)).toBase64({ alphabet: "base64url", omitPadding: true }),
      iat,
      exp: iat + this.#sessionMs,
      ...user === null ? {} : { user },
    };
    const payload = new TextEncoder().encode(JSON.stringify(session))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    // Lax, not Strict: a link to a deployment from chat or mail must open it, not the sign-in form. Requests
    // that change anything are POSTs, refused from other sites whatever the cookie (the server's guardPost).
    return this.#cookie(`${payload}.${this.#mac(payload, user)}`, Math.floor(this.#sessionMs / 1000));
  }

  /** Revokes the request's session, if it has one; the `Set-Cookie` value that removes the cookie. */
  async signOut(request: Request): Promise<string> {
    const session = await this.#session(request);
    if (session) await this.#sessions.revoke(session.id, session.exp);
    return this.#cookie("", 0);
  }

  /** Seconds until `address` may try again. */
  retryAfterSeconds(address: string): number {
    return this.#throttle.retryAfterSeconds(address);
  }

  /** The credential `token` is, compared with every one in constant time (which one matched shows in no time). */
  #match(token: string): Credential | undefined {
    const hash = digest(token);
    let found: Credential | undefined;
    for (const credential of this.#credentials.values()) {
      if (equal(hash, credential.hash)) found = credential;
    }
    return found;
  }

  /** The user a trusted proxy's header names; `undefined` when there is no such header or no trusted peer. */
  #fromHeader(request: Request, peer: string): string | undefined {
    if (!this.#header) return undefined;
    const value = request.headers.get(this.#header.name)?.trim();
    if (!value || !this.#header.proxies.includes(normalAddress(peer) ?? peer)) return undefined;
    const problem = userNameProblem(value);
    if (problem) throw new HttpError(400, `Cannot take the user from ${this.#header.name}: ${problem}`);
    return value;
  }

  /** The request's session when its cookie holds one that is signed by us, unexpired and not revoked. */
  async #session(request: Request): Promise<Session | undefined> {
    const cookie = readCookie(request, SESSION_COOKIE);
    if (cookie === undefined) return undefined;
    const [payload, mac, ...rest] = cookie.split(".");
    if (rest.length > 0 || mac === undefined) return undefined;
    // Whose key signed it is in the payload, read before the signature is checked: so read with care.
    const user = unverifiedUser(payload);
    if (user === undefined || !this.#credentials.has(user)) return undefined;
    if (!equal(digest(mac), digest(this.#mac(payload, user)))) return undefined;
    // Signed by us, so well-formed: only its age is left to check.
    const session: Session = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(payload, base64url)));
    const now = Date.now();
    // A shorter --session-hours applies to the sessions already out, too.
    if (now >= session.exp || now >= session.iat + this.#sessionMs) return undefined;
    return await this.#sessions.isRevoked(session.id) ? undefined : session;
  }

  #mac(payload: string, user: string | null): string {
    return createHmac("sha256", this.#sessionKey(user)).update(payload).digest("base64url");
  }

  #sessionKey(user: string | null): Uint8Array {
    const secret = this.#sessions.secret;
    if (this.#keys?.secret !== secret) this.#keys = { secret, byUser: new Map() };
    let key = this.#keys.byUser.get(user);
    if (key === undefined) {
      key = createHmac("sha256", secret).update(this.#credentials.get(user)!.keySeed).digest();
      this.#keys.byUser.set(user, key);
    }
    return key;
  }

  #cookie(value: string, maxAgeSeconds: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${
      this.#secure ? "; Secure" : ""
    }`;
  }
}

/**
 * A mark of every token that lets someone in, the same for the same tokens and users: instances of a cluster
 * compare theirs (see `redis_session_store.ts`). The unnamed token alone is its own mark, as before users.
 */
export function credentialsMark(token: string | undefined, users: readonly User[] = []): string {
  if (users.length === 0) return token ?? "";
  const lines = users.map(({ name, tokenHash }) => `${name}:${tokenHash.toHex()}`).sort();
  return [token === undefined ? "" : digest(token).toHex(), ...lines].join("\n");
}

/** The `user` a session's payload names (`null`: none), before its signature is checked; `undefined`: junk. */
function unverifiedUser(payload: string): string | null | undefined {
  try {
    const session = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(payload, base64url)));
    if (typeof session !== "object" || session === null) return undefined;
    if (session.user === undefined) return null;
    return typeof session.user === "string" ? session.user : undefined;
  } catch {
    return undefined;
  }
}

const base64url = { alphabet: "base64url" } as const;

/** A cookie's value from the `Cookie` header. */
export function readCookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

/** A fixed-length digest, so that comparing two secrets never depends on their lengths or where they differ. */
function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
