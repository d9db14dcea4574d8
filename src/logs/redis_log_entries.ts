/**
 * @module
 * How a log is laid out in a Redis stream, and how its entries read back as lines: entry id `<line>-0`, one
 * field `l` holding the line's text. Turns the replies of `XRANGE` and `XREAD` into numbered batches of
 * consecutive lines; knows nothing of connections.
 */

import type { LineBatch } from "./log_store.ts";

/** The stream entry id of line number `line`. */
export function entryId(line: number): string {
  return `${line}-0`;
}

/**
 * The lines of stream entries (an `XRANGE` reply, or one stream's part of an `XREAD` reply) as batches of
 * consecutive line numbers, in order; `end` is the batch's last line number. Entries are consecutive unless
 * the stream was written by hand, so this is nearly always one batch.
 */
export function entriesToBatches(entries: unknown): LineBatch[] {
  if (!Array.isArray(entries)) return [];
  const batches: LineBatch[] = [];
  let batch: LineBatch | undefined;
  for (const entry of entries) {
    const [id, fields] = entry as [string, unknown];
    const line = Number.parseInt(String(id), 10);
    if (!(line >= 1)) continue;
    const text = lineText(fields);
    if (batch && line === batch.end + 1) {
      batch.lines.push(text);
      batch.end = line;
    } else {
      batch = { firstLine: line, lines: [text], end: line };
      batches.push(batch);
    }
  }
  return batches;
}

/**
 * The entries of each stream of an `XREAD` reply: a map of key to entries under RESP3 (what node-redis speaks
 * by default), an array of `[key, entries]` under RESP2; `null` when the block timed out.
 */
export function xreadStreams(reply: unknown): [string, unknown][] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) return reply.map((stream) => [String(stream[0]), stream[1]]);
  if (reply instanceof Map) return [...reply.entries()].map(([key, entries]) => [String(key), entries]);
  if (typeof reply === "object") return Object.entries(reply);
  return [];
}

/** The text of an entry's fields (`["l", text]`, or a map under another type mapping); "" if it has none. */
function lineText(fields: unknown): string {
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "l") return String(fields[i + 1]);
    return "";
  }
  if (fields instanceof Map) return String(fields.get("l") ?? "");
  if (typeof fields === "object" && fields !== null) {
    return String((fields as Record<string, unknown>).l ?? "");
  }
  return "";
}
