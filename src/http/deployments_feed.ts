/**
 * @module
 * `GET /events`: one event stream for the home page with every deployment's status. It starts with the whole
 * list (`event: deployments`), then sends each created or changed record (`event: deployment`) and the id of
 * each deleted one (`event: removed`), so a page listing a hundred deployments keeps one connection, not one
 * per deployment.
 */

import type { DeploymentChange, DeploymentRemoval, Deployments } from "../runs/deployments.ts";
import { EVENT_STREAM_HEADERS, STREAM_OPENING } from "./events_response.ts";
import type { EventStream } from "./event_stream.ts";
import { encodeEvent } from "../logs/sse_encoder.ts";

/** Streams the list of deployments and every change to it. */
export function deploymentsFeedResponse(deployments: Deployments, stream: EventStream): Response {
  stream.send(STREAM_OPENING);
  stream.send(encodeEvent({ event: "deployments", data: JSON.stringify(deployments.list()) }));
  const onChange = (event: Event) => {
    stream.send(
      encodeEvent({ event: "deployment", data: JSON.stringify((event as DeploymentChange).detail) }),
    );
  };
  const onRemove = (event: Event) => {
    stream.send(encodeEvent({ event: "removed", data: (event as DeploymentRemoval).detail }));
  };
  deployments.addEventListener("change", onChange);
  deployments.addEventListener("remove", onRemove);
  stream.signal.addEventListener("abort", () => {
    deployments.removeEventListener("change", onChange);
    deployments.removeEventListener("remove", onRemove);
  }, { once: true });
  return new Response(stream.readable, { headers: EVENT_STREAM_HEADERS });
}
