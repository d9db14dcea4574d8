/**
 * @module
 * A Lua script run atomically by Redis, kept in its own `.lua` file beside the module that uses it. Run by its
 * SHA-1 (`EVALSHA`), and sent whole (`EVAL`) only when Redis does not know it yet, after a restart say.
 */

import type { RedisClient } from "./redis_connection.ts";

/** Options of {@linkcode RedisScript.load}. */
export interface RedisScriptOptions {
  /** Files of Lua functions to put in front of the script's code, in this order. Default none. */
  include?: readonly URL[];
}

/** One Lua script. */
export class RedisScript {
  readonly source: string;
  readonly sha: string;

  private constructor(source: string, sha: string) {
    this.source = source;
    this.sha = sha;
  }

  /**
   * Reads a script file (embedded in the binary with `deno compile --include`). The files of `include` (Lua
   * functions that several scripts share) are put in front of its code, after its first line when that is a
   * `#!lua` line (which Redis reads only there).
   */
  static async load(url: URL, options: RedisScriptOptions = {}): Promise<RedisScript> {
    const [own, ...included] = await Promise.all(
      [url, ...options.include ?? []].map((file) => Deno.readTextFile(file)),
    );
    const shebang = own.startsWith("#!") ? own.slice(0, own.indexOf("\n") + 1) : "";
    const source = shebang + included.join("\n") + (included.length > 0 ? "\n" : "") +
      own.slice(shebang.length);
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
