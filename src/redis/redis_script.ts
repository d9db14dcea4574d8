/**
 * @module
 * A Lua script run atomically by Redis, kept in its own `.lua` file beside the module that uses it. Run by its
 * SHA-1 (`EVALSHA`), and sent whole (`EVAL`) only when Redis does not know it yet, after a restart say.
 */

import type { RedisClient } from "./redis_connection.ts";

/** One Lua script. */
export class RedisScript {
  readonly source: string;
  readonly sha: string;

  private constructor(source: string, sha: string) {
    this.source = source;
    this.sha = sha;
  }

  /** Reads a script file (embedded in the binary with `deno compile --include`). */
  static async load(url: URL): Promise<RedisScript> {
    const source = await Deno.readTextFile(url);
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(source));
    const sha = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    return new RedisScript(source, sha);
  }

  /** Runs the script with `keys` and `args` and resolves with its reply. */
  async run(client: RedisClient, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(["EVALSHA", this.sha, ...rest]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await client.sendCommand(["EVAL", this.source, ...rest]);
    }
  }
}
