/**
 * @module
 * The users file (`--users-file`): who may sign in, each with a token of their own, so that what they do is
 * recorded under their name. One user a line, `name:token` or `name:sha256:<64 hex digits of the token's
 * SHA-256>` (a file that holds no token at all); blank lines and lines starting with `#` are skipped. Pure: it
 * takes the file's text, and a bad line is refused with its number and what is wrong, before anything starts.
 * A name or a token given twice is refused too: two people signing in as one cannot be told apart.
 */

import { createHash } from "node:crypto";
import { checkToken } from "../config.ts";

/** One person who may sign in. */
export interface User {
  /** What they are recorded as (`startedBy`, `cancelledBy`) and shown as. */
  name: string;
  /** The SHA-256 of their token: all that is needed to check one. */
  tokenHash: Uint8Array;
  /** The token itself when the file holds it (to mask it in logs); `null` for a `sha256:` line. */
  token: string | null;
}

/** What a user name may be: short, printable, with nothing a log line, a header or HTML would misread. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/;
const NAME_RULE = "1 to 100 letters, digits, or . _ @ + -, starting with a letter or digit";
const HASH = /^sha256:(.*)$/s;

/**
 * The users of a users file's `text`. Throws a `SyntaxError` naming `source` (the file), the line and what is
 * wrong: `Cannot use users file users.txt: line 3: expected name:token or name:sha256:<hex>`.
 */
export function parseUsersFile(text: string, source: string): User[] {
  const users: User[] = [];
  const names = new Map<string, number>();
  const tokens = new Map<string, { name: string; line: number }>();
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((raw, index) => {
    const line = index + 1;
    const fail = (problem: string): never => {
      throw new SyntaxError(`Cannot use users file ${source}: line ${line}: ${problem}`);
    };
    // CRLF files are common where the file was written on Windows; spaces at the ends are never meant.
    const entry = raw.trim();
    if (entry === "" || entry.startsWith("#")) return;
    const colon = entry.indexOf(":");
    if (colon < 0) fail("expected name:token or name:sha256:<hex of the token's SHA-256>");
    const name = entry.slice(0, colon).trim();
    const secret = entry.slice(colon + 1).trim();
    const nameProblem = userNameProblem(name);
    if (nameProblem) fail(nameProblem);
    const before = names.get(name.toLowerCase());
    if (before !== undefined) fail(`user "${name}" is already on line ${before}; give each user one line`);
    let tokenHash: Uint8Array;
    let token: string | null = null;
    const hashed = HASH.exec(secret);
    if (hashed) {
      if (!/^[0-9a-fA-F]{64}$/.test(hashed[1])) {
        fail(
          `expected 64 hex digits after "${name}:sha256:" and nothing else (the token's SHA-256: ` +
            `printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)`,
        );
      }
      // What a recipe gives with $TOKEN unset: a user nobody could sign in as, or anyone with no token.
      if (hashed[1].toLowerCase() === hashToken("").toHex()) {
        fail(`the hash of "${name}" is the SHA-256 of no token at all`);
      }
      tokenHash = Uint8Array.fromHex(hashed[1].toLowerCase());
    } else {
      try {
        checkToken(secret, `the token of "${name}"`);
      } catch (error) {
        fail((error as Error).message);
      }
      token = secret;
      tokenHash = hashToken(secret);
    }
    const hex = tokenHash.toHex();
    const same = tokens.get(hex);
    if (same) {
      fail(`the token of "${name}" is the token of "${same.name}" (line ${same.line}); give each their own`);
    }
    names.set(name.toLowerCase(), line);
    tokens.set(hex, { name, line });
    users.push({ name, tokenHash, token });
  });
  // No user would leave shiplog open to everyone while the flag says access is controlled.
  if (users.length === 0) throw new SyntaxError(`Cannot use users file ${source}: it names no users`);
  return users;
}

/**
 * Why `name` cannot be a user's name, or `undefined` when it can. Names differing only in case are one name
 * (see {@linkcode parseUsersFile}): "Alice" and "alice" would be two people no page could tell apart.
 */
export function userNameProblem(name: string): string | undefined {
  if (name === "") return "expected a user name before the colon";
  return NAME.test(name) ? undefined : `Cannot use user name "${printable(name)}": expected ${NAME_RULE}`;
}

/** The SHA-256 of a token, as a users file's `sha256:` line holds it. */
export function hashToken(token: string): Uint8Array {
  return createHash("sha256").update(token).digest();
}

/** `text` with control characters shown as `\u…` escapes, cut short: for an error message about it. */
function printable(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  // deno-lint-ignore no-control-regex -- the control characters are what is replaced
  return shown.replace(/[\u0000-\u001f\u007f]/g, escape);
}
