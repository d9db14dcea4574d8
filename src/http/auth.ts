/**
 * @module
 * Access control with one shared token. API clients send `Authorization: Bearer <token>`; browsers sign in once
 * on a small form and get an `HttpOnly`, `SameSite=Lax` cookie holding a session, never the token: a random
 * id with its issue time and expiry, signed (HMAC-SHA256) with a key derived from the token and a secret of the
 * {@linkcode SessionStore} (derived again if the store's secret changes: a cluster's Redis that lost it). So a session cannot be computed from the token alone, a new token ends every
 * session, and signing out revokes the one signed out. A valid session always passes; a cookie that is not one
 * is just no session. Wrong tokens are counted per address and slow that address's attempts down
 * ({@linkcode AuthThrottle}). Comparisons are constant-time.
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { AuthThrottle, type AuthThrottleOptions } from "./auth_throttle.ts";
import { checkToken } from "../config.ts";
import type { SessionStore } from "./session_store.ts";

/** Options of {@linkcode Auth}. */
export interface AuthOptions extends AuthThrottleOptions {
  /** Whether cookies get `Secure` (served over TLS). */
  secure?: boolean;
  /** How long a session lasts, in milliseconds. Default 168 hours. */
  sessionMs?: number;
}

/**
 * What {@linkcode Auth.check} and {@linkcode Auth.signIn} found: `throttled` is a wrong token from a throttled
 * address, or an attempt refused because too many of its address already wait.
 */
export type AuthResult = "ok" | "missing" | "wrong" | "throttled";

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
}

const HOUR_MS = 3_600_000;

/** Checks credentials against one token. */
export class Auth {
  #token: Uint8Array;
  #plainToken: string;
  /** Signs sessions: derived from the store's secret and the token, so that a new token ends every session. */
  #key: { secret: Uint8Array; key: Uint8Array } | undefined;
  #sessions: SessionStore;
  #throttle: AuthThrottle;
  #secure: boolean;
  #sessionMs: number;

  private constructor(token: string, sessions: SessionStore, options: AuthOptions) {
    this.#token = digest(token);
    this.#plainToken = token;
    this.#sessions = sessions;
    this.#throttle = new AuthThrottle(options);
    this.#secure = options.secure ?? false;
    this.#sessionMs = options.sessionMs ?? 168 * HOUR_MS;
  }

  /** Prepares the checks for `token`, with the sessions of `sessions`. */
  static create(token: string, sessions: SessionStore, options: AuthOptions = {}): Auth {
    checkToken(token, "the token");
    return new Auth(token, sessions, options);
  }

  /** Checks a request's bearer token or session cookie; a bearer token may wait its turn (see the module). */
  async check(request: Request, address: string): Promise<AuthResult> {
    // Only a Bearer header is for shiplog: a proxy's own (Basic) credentials must not hide the session cookie.
    const bearer = /^Bearer\s+(.+?)\s*$/i.exec(request.headers.get("authorization") ?? "");
    if (bearer) return await this.signIn(bearer[1], address);
    return await this.#session(request) ? "ok" : "missing";
  }

  /** Checks a token (a bearer's, or typed into the sign-in form), counting a wrong one against `address`. */
  async signIn(token: string, address: string): Promise<AuthResult> {
    const turn = await this.#throttle.turn(address);
    if (turn === "refused") return "throttled";
    if (this.matches(token)) return "ok";
    this.#throttle.failed(address);
    return turn === "paced" ? "throttled" : "wrong";
  }

  /** True when `token` is the token, compared in constant time. */
  matches(token: string): boolean {
    return equal(digest(token), this.#token);
  }

  /** The `Set-Cookie` value that signs a browser in with a new session. */
  sessionCookie(): string {
    const iat = Date.now();
    const session: Session = {
      id: crypto.getRandomValues(new Uint8Array(16)).toBase64({ alphabet: "base64url", omitPadding: true }),
      iat,
      exp: iat + this.#sessionMs,
    };
    const payload = new TextEncoder().encode(JSON.stringify(session))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    // Lax, not Strict: a link to a deployment from chat or mail must open it, not the sign-in form. Requests
    // that change anything are POSTs, refused from other sites whatever the cookie (the server's guardPost).
    return this.#cookie(`${payload}.${this.#mac(payload)}`, Math.floor(this.#sessionMs / 1000));
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

  /** The request's session when its cookie holds one that is signed by us, unexpired and not revoked. */
  async #session(request: Request): Promise<Session | undefined> {
    const cookie = readCookie(request, SESSION_COOKIE);
    if (cookie === undefined) return undefined;
    const [payload, mac, ...rest] = cookie.split(".");
    if (rest.length > 0 || mac === undefined) return undefined;
    if (!equal(digest(mac), digest(this.#mac(payload)))) return undefined;
    // Signed by us, so well-formed: only its age is left to check.
    const session: Session = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(payload, base64url)));
    const now = Date.now();
    // A shorter --session-hours applies to the sessions already out, too.
    if (now >= session.exp || now >= session.iat + this.#sessionMs) return undefined;
    return await this.#sessions.isRevoked(session.id) ? undefined : session;
  }

  #mac(payload: string): string {
    return createHmac("sha256", this.#sessionKey()).update(payload).digest("base64url");
  }

  #sessionKey(): Uint8Array {
    const secret = this.#sessions.secret;
    if (this.#key?.secret !== secret) {
      const key = createHmac("sha256", secret).update(`shiplog session key v2\n${this.#plainToken}`).digest();
      this.#key = { secret, key };
    }
    return this.#key.key;
  }

  #cookie(value: string, maxAgeSeconds: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${
      this.#secure ? "; Secure" : ""
    }`;
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
