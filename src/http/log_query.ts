/**
 * @module
 * The query parameters of the routes that read a log: the switches (`times` of `/events/<id>`; `timestamps`,
 * `plain` and `download` of the raw log), each `1` or `0`, and the page of `/api/deployments/<id>/lines`
 * (`after`, `limit`). Checked here once, so that a bad value is the same `400` naming it wherever it is sent.
 */

import { HttpError } from "./http_error.ts";

/** The most lines one page of `/api/deployments/<id>/lines` may ask for. */
export const MAX_LINES_LIMIT = 100_000;
/** The lines of a page that names no `limit`. */
export const DEFAULT_LINES_LIMIT = 10_000;

/** A page of a log: the lines after line `after` (0: from the first), at most `limit` of them. */
export interface LinesQuery {
  after: number;
  limit: number;
}

/** Whether switch `name` is on: `1` on, `0` or absent (or empty) off; anything else is a 400 naming it. */
export function querySwitch(search: URLSearchParams, name: string): boolean {
  const value = search.get(name);
  if (value === null || value === "" || value === "0") return false;
  if (value === "1") return true;
  throw new HttpError(400, `Cannot read ${name} ${quoted(value)}: expected 1 (on) or 0 (off)`);
}

/** The page `after` and `limit` ask for; 400 naming the parameter that cannot be read. */
export function parseLinesQuery(search: URLSearchParams): LinesQuery {
  const after = search.get("after");
  const limit = search.get("limit");
  return {
    after: after ? wholeNumber("after", after, 0, Number.MAX_SAFE_INTEGER, "a line number, 0 or more") : 0,
    limit: limit
      ? wholeNumber("limit", limit, 1, MAX_LINES_LIMIT, `an integer from 1 to ${MAX_LINES_LIMIT}`)
      : DEFAULT_LINES_LIMIT,
  };
}

function wholeNumber(name: string, text: string, min: number, max: number, expected: string): number {
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new HttpError(400, `Cannot read ${name} ${quoted(text)}: expected ${expected}`);
  }
  return value;
}

/** A value in a message: quoted, and cut short when long (it is the client's own, shown back to it). */
function quoted(value: string): string {
  return JSON.stringify(value.length > 100 ? value.slice(0, 100) + "…" : value);
}
