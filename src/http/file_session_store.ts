/**
 * @module
 * The built-in {@linkcode SessionStore}: `.sessions.json` in the data directory holds the secret and the
 * revoked sessions with their expiry (pruned once expired), so that a sign-out outlives a restart. Mode 0600,
 * replaced atomically through a temporary file and a rename; a symlink or anything but a regular file in its
 * place is refused, like the lock file. One shiplog owns the directory (its lock), so this process is its only
 * writer. A file that cannot be parsed is replaced by a new secret: that ends every session, which is safe.
 */

import { join } from "node:path";
import { openRegularFile } from "../logs/regular_file.ts";
import type { SessionStore } from "./session_store.ts";

/** The file's name in the data directory. */
export const SESSIONS_FILE = ".sessions.json";
const SECRET_BYTES = 32;

/** What the file holds. */
interface Saved {
  /** The secret, base64. */
  secret: string;
  /** Revoked session ids and when each expires, in epoch milliseconds. */
  revoked: Record<string, number>;
}

/** Sessions kept in a file of the data directory. */
export class FileSessionStore implements SessionStore {
  readonly secret: Uint8Array;
  #path: string;
  #revoked: Map<string, number>;
  /** Writes one after another, each of the state at its time. */
  #saving = Promise.resolve();
  #writable = true;

  private constructor(path: string, secret: Uint8Array, revoked: Map<string, number>) {
    this.#path = path;
    this.secret = secret;
    this.#revoked = revoked;
  }

  /**
   * Opens the sessions of `dir`, making a secret if it has none. A directory that takes no writes gets a
   * secret for this run only (a warning says so); a symlink in the file's place is an error.
   */
  static async open(dir: string): Promise<FileSessionStore> {
    const path = join(dir, SESSIONS_FILE);
    const saved = await readSaved(path);
    if (saved) {
      const now = Date.now();
      const revoked = new Map(Object.entries(saved.revoked).filter(([, expiresAt]) => expiresAt > now));
      return new FileSessionStore(path, Uint8Array.fromBase64(saved.secret), revoked);
    }
    const store = new FileSessionStore(path, crypto.getRandomValues(new Uint8Array(SECRET_BYTES)), new Map());
    await store.#save();
    if (!store.#writable) {
      console.error(`shiplog: warning: cannot write ${path}: sign-ins last until shiplog stops`);
    }
    return store;
  }

  revoke(id: string, expiresAt: number): Promise<void> {
    if (expiresAt <= Date.now()) return Promise.resolve();
    this.#revoked.set(id, expiresAt);
    return this.#save();
  }

  isRevoked(id: string): Promise<boolean> {
    return Promise.resolve(this.#revoked.has(id));
  }

  /** Writes the state, after the writes before it; a failure is told once and the state stays in memory. */
  #save(): Promise<void> {
    return this.#saving = this.#saving.then(async () => {
      const now = Date.now();
      for (const [id, expiresAt] of this.#revoked) if (expiresAt <= now) this.#revoked.delete(id);
      const saved: Saved = { secret: this.secret.toBase64(), revoked: Object.fromEntries(this.#revoked) };
      const temporary = `${this.#path}.tmp`;
      try {
        // A temporary file a crash left behind (or a link put there) is removed, never written through.
        await Deno.remove(temporary).catch(() => {});
        await Deno.writeTextFile(temporary, JSON.stringify(saved) + "\n", { createNew: true, mode: 0o600 });
        await Deno.rename(temporary, this.#path);
        this.#writable = true;
      } catch (error) {
        await Deno.remove(temporary).catch(() => {});
        if (this.#writable) console.error(`shiplog: cannot write ${this.#path}:`, (error as Error).message);
        this.#writable = false;
      }
    });
  }
}

/**
 * The file's content; `undefined` when there is none or it cannot be parsed (told). Opened as the lock file is:
 * never through a link, and a FIFO is refused before it could block.
 */
async function readSaved(path: string): Promise<Saved | undefined> {
  const opened = openRegularFile(path, { read: true });
  if (!opened) return undefined;
  if ("refused" in opened) throw new Error(`Cannot use ${path}: it is ${opened.refused}; remove it`);
  // The readable closes the file once read to its end, or on an error.
  const text = await new Response(opened.file.readable).text();
  try {
    const saved = JSON.parse(text);
    if (isSaved(saved)) return saved;
  } catch {
    // Told below.
  }
  console.error(`shiplog: ${path} is not a sessions file: made a new secret, so everyone signs in again`);
  return undefined;
}

function isSaved(value: unknown): value is Saved {
  const saved = value as Saved;
  return typeof saved === "object" && saved !== null && typeof saved.secret === "string" &&
    /^[A-Za-z0-9+/]{43}=$/.test(saved.secret) && typeof saved.revoked === "object" &&
    saved.revoked !== null &&
    Object.values(saved.revoked).every(Number.isFinite);
}
