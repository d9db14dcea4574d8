/**
 * @module
 * `GET /events`: one event stream for the home page. It starts with the page the home page shows (the query's
 * filter and limit, from its cursor: `event: deployments`) and the latest deployment of each target and its
 * latest that succeeded, for the cards above the list (`event: latest`), then keeps them live: each created or
 * changed record the page shows or would show now, or that is one of those (`event: deployment`), the id of
 * each shown one deleted (`event: removed`), and how many run in all, at connect and when it changes
 * (`event: counts`, for the title).
 * The records of the rest of the history are never sent: a page over 10,000 deployments costs what a page over
 * 50 does.
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

/** Options of {@linkcode deploymentsFeedResponse}. */
export interface FeedOptions {
  /** The page of the list to send and keep live. */
  query: DeploymentQuery;
  /** The targets that have a card: their latest deployments follow the page at connect. Default none. */
  targets?: readonly string[];
}

/** Streams the page of deployments that `options.query` names, and every change to it. */
export function deploymentsFeedResponse(
  deployments: Deployments,
  stream: EventStream,
  { query, targets = [] }: FeedOptions,
): Response {
  const { records } = deployments.page(query);
  // What the page shows, so a record that leaves the filter (a status filter) is sent once more, to go.
  const shown = new Set(records.map(({ id }) => id));
  stream.send(STREAM_OPENING);
  stream.send(encodeEvent({ event: "deployments", data: JSON.stringify(records) }));
  // The cards as they are now: a page back from a long disconnection may have missed their changes.
  // Each target's latest, then its latest that succeeded when that is another: what the card shows.
  const latest = targets.flatMap((target) => {
    const { latest, deployed } = cardRecords(deployments, target);
    return [latest, deployed?.id === latest?.id ? undefined : deployed].filter((record) =>
      record !== undefined
    );
  });
  stream.send(encodeEvent({ event: "latest", data: JSON.stringify(latest) }));
  let running = -1;
  const sendCounts = () => {
    const now = deployments.countByStatus().get("running") ?? 0;
    if (now !== running) {
      stream.send(encodeEvent({ event: "counts", data: JSON.stringify({ running: now }) }));
    }
    running = now;
  };
  sendCounts();
  const onChange = (event: Event) => {
    sendCounts();
    const record = (event as DeploymentChange).detail;
    // A later page (a cursor) takes no new deployment: only the first page grows at the top.
    const wanted = matchesFilter(record, query) && (query.before === undefined || shown.has(record.id));
    if (wanted) shown.add(record.id);
    else if (!shown.delete(record.id) && !isLatestOfTarget(deployments, record)) return;
    stream.send(encodeEvent({ event: "deployment", data: JSON.stringify(record) }));
  };
  const onRemove = (event: Event) => {
    sendCounts();
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

/** What a target's card shows: its latest deployment, and its latest that succeeded (what is there now). */
export function cardRecords(
  deployments: Deployments,
  target: string,
): { latest: Deployment | undefined; deployed: Deployment | undefined } {
  return {
    latest: deployments.page({ target, limit: 1 }).records[0],
    deployed: deployments.page({ target, status: "succeeded", limit: 1 }).records[0],
  };
}

/**
 * True when `record` is its target's latest, or latest that succeeded (a card shows both). Changes are to
 * recent deployments (queued, running), so the walk from the newest is short.
 */
function isLatestOfTarget(deployments: Deployments, record: Deployment): boolean {
  const { target } = record;
  return deployments.page({ target, limit: 1 }).records[0]?.id === record.id ||
    (record.status === "succeeded" &&
      deployments.page({ target, status: "succeeded", limit: 1 }).records[0]?.id === record.id);
}
