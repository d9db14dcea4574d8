/**
 * @module
 * `GET /api/deployments/<id>/lines?after=N&limit=M`: a page of a log as JSON, for a page that loads a long
 * history in bulk (a million lines in ten requests) before it follows the rest live with `/events/<id>`, where
 * one event per line would cost the browser far more. The answer is `{firstLine, lines, times, stderr,
 * nextLine}`: the complete lines after line `after`, their times (epoch ms, 0 when not known) and the numbers
 * of those written to stderr, and the number the next line written will have (the count of lines plus one: a
 * `nextLine` below `firstLine` means the log holds fewer lines than `after`, as when it was replaced).
 */

import type { LogStore } from "../logs/log_store.ts";
import type { LinesQuery } from "./log_query.ts";

/**
 * The most text one page holds, in UTF-16 code units: a page of long lines ends before `limit`, with at least
 * one line, so that an answer is never hundreds of megabytes.
 */
export const MAX_PAGE_TEXT = 16 * 1024 * 1024;

/** One page of a log. */
export interface LinesPage {
  firstLine: number;
  lines: string[];
  times: number[];
  stderr: number[];
  nextLine: number;
}

/** Reads the page `query` asks for of log `id`. */
export async function readLinesPage(store: LogStore, id: string, query: LinesQuery): Promise<LinesPage> {
  const page: LinesPage = { firstLine: query.after + 1, lines: [], times: [], stderr: [], nextLine: 0 };
  let text = 0;
  // Whether the read stopped at the end of the log (then the last line read is its last) or at the page's end.
  let full = false;
  read: for await (const batch of store.readLines(id, query.after, { times: true })) {
    const stderr = new Set(batch.stderr);
    // A store may repeat lines before the page's next (see readLines); a gap would be lines missing from it.
    for (let i = page.firstLine + page.lines.length - batch.firstLine; i < batch.lines.length; i++) {
      if (i < 0 || page.lines.length >= query.limit || page.lines.length > 0 && text >= MAX_PAGE_TEXT) {
        full = true;
        break read;
      }
      const line = batch.firstLine + i;
      page.lines.push(batch.lines[i]);
      page.times.push(batch.times?.[i] ?? 0);
      if (stderr.has(line)) page.stderr.push(line);
      text += batch.lines[i].length + 1;
    }
  }
  page.nextLine = !full && page.lines.length > 0
    ? page.firstLine + page.lines.length
    : await store.countLines(id) + 1;
  return page;
}

/** The page as the route answers it. */
export async function linesResponse(store: LogStore, id: string, query: LinesQuery): Promise<Response> {
  return Response.json(await readLinesPage(store, id, query), { headers: { "cache-control": "no-cache" } });
}
