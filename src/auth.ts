/**
 * @module
 * Access control with one shared token. API clients send `Authorization: Bearer <token>`; browsers sign in once
 * on a small form and get an `HttpOnly`, `SameSite=Lax` cookie holding a value derived from the token (an
 * HMAC), never the token itself. Comparisons are constant-time. An address that keeps presenting wrong tokens
 * (or cookies, which anyone can compute from a guessed token) is refused with 429 for a while, so the token
 * cannot be guessed at speed.
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { checkToken } from "./config.ts";

/** Options of {@linkcode Auth}. */
export interface AuthOptions {
  /** Wrong attempts from one address within `windowMs` before it is refused. Default 10. */
  maxFailures?: number;
  /** How long wrong attempts are remembered, in milliseconds. Default 60,000. */
  windowMs?: number;
  /** Whether cookies get `Secure` (served over TLS). */
  secure?: boolean;
}

/** What {@linkcode Auth.check} found. */
export type AuthResult = "ok" | "missing" | "wrong" | "throttled";

/** The cookie that carries a signed-in browser's session. */
export const SESSION_COOKIE = "shiplog_session";
const MAX_TRACKED_ADDRESSES = 10_000;
const encoder = new TextEncoder();

/** Checks credentials against one token. */
export class Auth {
  #token: Uint8Array;
  #session: string;
  /** The session's digest, compared with each cookie's: computed once, not per request. */
  #sessionDigest: Uint8Array;
  #secure: boolean;
  #maxFailures: number;
  #windowMs: number;
  #failures = new Map<string, number[]>();
  /** Digests of the wrong session cookies each address sent, so a stale one counts once. */
  #wrongCookies = new Map<string, Set<string>>();

  private constructor(token: string, session: string, options: AuthOptions) {
    this.#token = digest(token);
    this.#session = session;
    this.#sessionDigest = digest(session);
    this.#secure = options.secure ?? false;
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
  }

  /** Prepares the checks for `token`; the session cookie value is an HMAC of a fixed label under the token. */
  static async create(token: string, options: AuthOptions = {}): Promise<Auth> {
    checkToken(token, "the token");
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(token),
      { name: "HMAC", hash: "SHA-256" },
      false,
      [
        "sign",
      ],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode("shiplog session v1")));
    return new Auth(token, hex(mac), options);
  }

  /** Checks a request's bearer token or session cookie. */
  check(request: Request, address: string): AuthResult {
    if (this.#throttled(address)) return "throttled";
    // Only a Bearer header is for shiplog: a proxy's own (Basic) credentials must not hide the session cookie.
    const bearer = /^Bearer\s+(.+?)\s*$/i.exec(request.headers.get("authorization") ?? "");
    if (bearer) return this.#verdict(this.matches(bearer[1]), address);
    const cookie = readCookie(request, SESSION_COOKIE);
    if (cookie === undefined) return "missing";
    const found = digest(cookie);
    if (equal(found, this.#sessionDigest)) return "ok";
    // Anyone can compute the cookie of a token they guess, so a wrong one counts as a wrong token. But only
    // once per value: a session from before the token changed comes back with every retry of every open tab,
    // and must not lock the address out. Either way it is as good as none: the browser is asked to sign in.
    if (this.#firstTimeWrong(address, found)) this.#verdict(false, address);
    return "missing";
  }

  /** Checks a token typed into the sign-in form, counting a wrong one against `address`. */
  signIn(token: string, address: string): AuthResult {
    if (this.#throttled(address)) return "throttled";
    return this.#verdict(this.matches(token), address);
  }

  /** True when `token` is the token, compared in constant time. */
  matches(token: string): boolean {
    return equal(digest(token), this.#token);
  }

  /** The `Set-Cookie` value that signs a browser in. */
  sessionCookie(): string {
    // Lax, not Strict: a link to a deployment from chat or mail must open it, not the sign-in form. Requests
    // that change anything are POSTs, refused from other sites whatever the cookie (the server's guardPost).
    return `${SESSION_COOKIE}=${this.#session}; Path=/; HttpOnly; SameSite=Lax${
      this.#secure ? "; Secure" : ""
    }`;
  }

  /** Seconds until `address` may try again. */
  retryAfterSeconds(address: string): number {
    const oldest = this.#failures.get(address)?.[0] ?? Date.now();
    return Math.max(1, Math.ceil((oldest + this.#windowMs - Date.now()) / 1000));
  }

  #verdict(ok: boolean, address: string): AuthResult {
    if (ok) return "ok";
    const now = Date.now();
    const recent = (this.#failures.get(address) ?? []).filter((at) => at > now - this.#windowMs);
    recent.push(now);
    remember(this.#failures, address, recent);
    return "wrong";
  }

  /** Notes a wrong cookie for `address`; false when it was seen before. */
  #firstTimeWrong(address: string, cookie: Uint8Array): boolean {
    const key = hex(cookie);
    let seen = this.#wrongCookies.get(address);
    if (seen?.has(key)) return false;
    if (!seen) remember(this.#wrongCookies, address, seen = new Set());
    // Past maxFailures distinct values the address is throttled anyway: no need to keep more.
    if (seen.size <= this.#maxFailures) seen.add(key);
    return true;
  }

  #throttled(address: string): boolean {
    const recent = this.#failures.get(address);
    if (!recent) return false;
    const now = Date.now();
    while (recent.length > 0 && recent[0] <= now - this.#windowMs) recent.shift();
    if (recent.length === 0) this.#failures.delete(address);
    return recent.length >= this.#maxFailures;
  }
}

/**
 * Sets `key` as the most recent entry of a per-address map, bounded: past MAX_TRACKED_ADDRESSES the oldest
 * address is forgotten first (a Map keeps insertion order).
 */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED_ADDRESSES) map.delete(map.keys().next().value!);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

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
