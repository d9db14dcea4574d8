/**
 * @module
 * `GET /events`: one event stream for the home page. It starts with the page the home page shows (the query's
 * filter and limit, from its cursor: `event: deployments`), then keeps that page live: each created or changed
 * record it shows or would show now (`event: deployment`), and the id of each shown one deleted
 * (`event: removed`). The latest deployment of each target comes too, for the cards above the list. The records
 * of the rest of the history are never sent: a page over 10,000 deployments costs what a page over 50 does.
 */

import {
  type DeploymentChange,
  type DeploymentQuery,
  type DeploymentRemoval,
  type Deployments,
  matchesFilter,
} from "../runs/deployments.ts";
import type { Deployment } from "../logs/deployment.ts";
import { EVENT_STREAM_HEADERS, STREAM_OPENING } from "./events_response.ts";
import type { EventStream } from "./event_stream.ts";
import { encodeEvent } from "../logs/sse_encoder.ts";

/** Streams the page of deployments that `query` names, and every change to it. */
export function deploymentsFeedResponse(
  deployments: Deployments,
  stream: EventStream,
  query: DeploymentQuery,
): Response {
  const { records } = deployments.page(query);
  // What the page shows, so a record that leaves the filter (a status filter) is sent once more, to go.
  const shown = new Set(records.map(({ id }) => id));
  stream.send(STREAM_OPENING);
  stream.send(encodeEvent({ event: "deployments", data: JSON.stringify(records) }));
  const onChange = (event: Event) => {
    const record = (event as DeploymentChange).detail;
    // A later page (a cursor) takes no new deployment: only the first page grows at the top.
    const wanted = matchesFilter(record, query) && (query.before === undefined || shown.has(record.id));
    if (wanted) shown.add(record.id);
    else if (!shown.delete(record.id) && !isLatestOfTarget(deployments, record)) return;
    stream.send(encodeEvent({ event: "deployment", data: JSON.stringify(record) }));
  };
  const onRemove = (event: Event) => {
    const id = (event as DeploymentRemoval).detail;
    if (shown.delete(id)) stream.send(encodeEvent({ event: "removed", data: id }));
  };
  deployments.addEventListener("change", onChange);
  deployments.addEventListener("remove", onRemove);
  stream.signal.addEventListener("abort", () => {
    deployments.removeEventListener("change", onChange);
    deployments.removeEventListener("remove", onRemove);
  }, { once: true });
  return new Response(stream.readable, { headers: EVENT_STREAM_HEADERS });
}

/**
 * True when `record` is its target's latest (a card shows it). Changes are to recent deployments (queued,
 * running), so the walk from the newest is short.
 */
function isLatestOfTarget(deployments: Deployments, record: Deployment): boolean {
  return deployments.page({ target: record.target, limit: 1 }).records[0]?.id === record.id;
}
