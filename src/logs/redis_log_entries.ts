/**
 * @module
 * How a log is laid out in a Redis stream, and how its entries read back as lines: entry id `<line>-0`, fields
 * `l` the line's text, `t` when shiplog first saw it (epoch ms) and `e` (`1` for a line of stderr); an entry
 * written before times were kept has only `l`, and reads as of no known time. Turns the replies of `XRANGE` and `XREAD` into numbered batches of
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
    const { text, time, stderr } = entryFields(fields);
    if (batch && line === batch.end + 1) {
      batch.lines.push(text);
      batch.times!.push(time);
      batch.end = line;
    } else {
      batch = { firstLine: line, lines: [text], end: line, times: [time], stderr: [] };
      batches.push(batch);
    }
    if (stderr) batch.stderr!.push(line);
  }
  return batches;
}

/**
 * The part of `batch` from line `from` on (a line of it), with its times: the batch itself when that is all of
 * it.
 */
export function batchFrom(batch: LineBatch, from: number): LineBatch {
  if (from <= batch.firstLine) return batch;
  const skip = from - batch.firstLine;
  return {
    firstLine: from,
    lines: batch.lines.slice(skip),
    end: batch.end,
    ...batch.times && { times: batch.times.slice(skip) },
    ...batch.stderr && { stderr: batch.stderr.filter((line) => line >= from) },
  };
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

/**
 * What an entry's fields (`["l", text, "t", time, "e", flag]`, or a map under another type mapping) hold: the
 * text ("" if none), the time (0 if none) and whether it is of stderr.
 */
function entryFields(fields: unknown): { text: string; time: number; stderr: boolean } {
  let text: unknown, time: unknown, stderr: unknown;
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === "l") text = fields[i + 1];
      else if (fields[i] === "t") time = fields[i + 1];
      else if (fields[i] === "e") stderr = fields[i + 1];
    }
  } else if (fields instanceof Map) {
    [text, time, stderr] = [fields.get("l"), fields.get("t"), fields.get("e")];
  } else if (typeof fields === "object" && fields !== null) {
    const record = fields as Record<string, unknown>;
    [text, time, stderr] = [record.l, record.t, record.e];
  }
  const ms = Number(time ?? 0);
  return { text: String(text ?? ""), time: ms > 0 ? ms : 0, stderr: String(stderr) === "1" };
}
