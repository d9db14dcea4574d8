/**
 * @module
 * `GET /deployments/<id>/log`: the log as plain text, as the store holds it, byte for byte. Three switches
 * change it, and combine: `?timestamps=1` puts before each line the time shiplog first saw it, in ISO 8601 UTC
 * with milliseconds, and one space (`-` and a space for a line of no known time); `?plain=1` takes out the
 * terminal escape sequences (colours and the rest, see {@linkcode stripAnsi}); `?download=1` makes it an
 * attachment named `shiplog-<target>-<first 8 of id>.log`.
 */

import type { Deployment } from "../logs/deployment.ts";
import type { LineBatch, LogStore } from "../logs/log_store.ts";
import { stripAnsi } from "../logs/ansi_strip.ts";
import { querySwitch } from "./log_query.ts";

/** What a line of no known time gets instead of one, with `?timestamps=1`. */
export const UNKNOWN_TIME = "-";

const encoder = new TextEncoder();

/** The switches of the raw log. */
export interface RawLogOptions {
  timestamps: boolean;
  plain: boolean;
  download: boolean;
}

/** The switches `search` sets; a 400 naming one whose value is neither 1 nor 0. */
export function parseRawLogOptions(search: URLSearchParams): RawLogOptions {
  return {
    timestamps: querySwitch(search, "timestamps"),
    plain: querySwitch(search, "plain"),
    download: querySwitch(search, "download"),
  };
}

/** The raw log of `deployment`, changed as `options` say. */
export async function rawLogResponse(
  store: LogStore,
  deployment: Deployment,
  { timestamps, plain, download }: RawLogOptions,
): Promise<Response> {
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-cache",
  };
  if (download) {
    headers["content-disposition"] = `attachment; filename="${downloadName(deployment)}"`;
  }
  const body = timestamps || plain
    ? changedLog(store.readLines(deployment.id, 0, { times: timestamps }), { timestamps, plain })
    : await store.readRaw(deployment.id);
  return new Response(body, { headers });
}

/** `shiplog-<target>-<first 8 of id>.log`, with nothing in it a header or a file system could misread. */
export function downloadName(deployment: Deployment): string {
  const target = deployment.target.replace(/[^A-Za-z0-9._-]/g, "_") || "deployment";
  return `shiplog-${target}-${deployment.id.slice(0, 8)}.log`;
}

/** The log's lines as text again, each with its time before it and/or without escape sequences. */
function changedLog(
  batches: AsyncIterable<LineBatch>,
  { timestamps, plain }: { timestamps: boolean; plain: boolean },
): ReadableStream<Uint8Array> {
  const pages = batches[Symbol.asyncIterator]();
  let next = 1;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const read = await pages.next();
        if (read.done) return controller.close();
        const { firstLine, lines, times } = read.value;
        let text = "";
        // Lines a store hands out again (see readLines) are not written twice.
        for (let i = Math.max(0, next - firstLine); i < lines.length; i++) {
          if (timestamps) text += (times?.[i] ? new Date(times[i]).toISOString() : UNKNOWN_TIME) + " ";
          text += (plain ? stripAnsi(lines[i]) : lines[i]) + "\n";
        }
        next = Math.max(next, firstLine + lines.length);
        if (text === "") continue;
        return controller.enqueue(encoder.encode(text));
      }
    },
    async cancel() {
      await pages.return?.(undefined);
    },
  }, { highWaterMark: 0 });
}
