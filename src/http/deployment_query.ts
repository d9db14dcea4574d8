/**
 * @module
 * The query of a list of deployments as the home page, its feed (`/events`) and the API take it: `target`,
 * `status`, `limit` and `before` (a cursor: where the page before ended, as `<createdAt>_<id>`). Checked here
 * once, so all three refuse the same bad value with the same `400`; and the address of the next page, for the
 * API's `Link` header and the home page's "Older" link. An empty value is no filter (a form's "any").
 */

import { type Status, STATUSES } from "../logs/deployment.ts";
import { isDeploymentId } from "../logs/deployment_id.ts";
import type { DeploymentCursor, DeploymentQuery } from "../runs/deployments.ts";
import { HttpError } from "./http_error.ts";

/** The records of a page when the query names no `limit`: the home page's latest 50. */
export const DEFAULT_LIMIT = 50;

/** The most records one page may ask for. */
export const MAX_LIMIT = 1000;

/** The query in `search`; 400 naming the parameter for a status, limit or cursor that cannot be read. */
export function parseDeploymentQuery(search: URLSearchParams): DeploymentQuery {
  const query: DeploymentQuery = { limit: DEFAULT_LIMIT };
  const target = search.get("target");
  if (target) query.target = target;
  const status = search.get("status");
  if (status) {
    if (!STATUSES.includes(status as Status)) {
      throw new HttpError(
        400,
        `Cannot filter by status ${quoted(status)}: expected one of ${STATUSES.join(", ")}`,
      );
    }
    query.status = status as Status;
  }
  const limit = search.get("limit");
  if (limit) {
    const value = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
    if (!(value >= 1 && value <= MAX_LIMIT)) {
      throw new HttpError(
        400,
        `Cannot read limit ${quoted(limit)}: expected an integer from 1 to ${MAX_LIMIT}`,
      );
    }
    query.limit = value;
  }
  const before = search.get("before");
  if (before) query.before = parseCursor(before);
  return query;
}

/** A cursor as a query parameter's value: `<createdAt>_<id>`. */
export function formatCursor({ createdAt, id }: DeploymentCursor): string {
  return `${createdAt}_${id}`;
}

/**
 * The address of `query`'s page that starts after `next` at `pathname` (`/` or `/api/deployments`), with the
 * same filter and limit; a path and query, for a link on the same server.
 */
export function pageAddress(pathname: string, query: DeploymentQuery, next?: DeploymentCursor): string {
  const search = new URLSearchParams();
  if (query.target !== undefined) search.set("target", query.target);
  if (query.status !== undefined) search.set("status", query.status);
  if (query.limit !== DEFAULT_LIMIT) search.set("limit", String(query.limit));
  if (next) search.set("before", formatCursor(next));
  const text = search.toString();
  return text ? `${pathname}?${text}` : pathname;
}

function parseCursor(text: string): DeploymentCursor {
  const split = text.lastIndexOf("_");
  const createdAt = text.slice(0, split);
  const id = text.slice(split + 1);
  if (split < 0 || !isDeploymentId(id) || createdAt.length > 40 || Number.isNaN(Date.parse(createdAt))) {
    throw new HttpError(
      400,
      `Cannot read before ${quoted(text)}: expected a cursor from the Link header of the page before ` +
        "(<createdAt>_<id>, such as 2026-11-24T08:00:00.000Z_0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f)",
    );
  }
  return { createdAt, id };
}

/** A value in a message, quoted, and cut short: a query may be kilobytes long. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}
