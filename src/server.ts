/**
 * @module
 * The route table and the one error boundary: which path and method reach which module, nothing more. An
 * unknown path is 404; a known path with another method is 405 with `Allow` derived from the table. Only a
 * canonical deployment id reaches a module, and an unknown one is 404 before any file is touched.
 * {@linkcode HttpError} becomes its status with a short message; anything else is logged once and is a 500.
 */

import type { Deployment } from "./deployment.ts";
import { isFinal } from "./deployment.ts";
import type { Deployments } from "./deployments.ts";
import { deploymentsFeedResponse } from "./deployments_feed.ts";
import type { OpenStreams } from "./event_stream.ts";
import { eventsResponse } from "./events_response.ts";
import { HttpError } from "./http_error.ts";
import type { LogHub } from "./log_hub.ts";
import type { LogStore } from "./log_store.ts";
import type { Metrics } from "./metrics.ts";
import type { Pages } from "./pages.ts";
import type { Runner } from "./runner.ts";
import { isDeploymentId } from "./deployment_id.ts";

/** Everything the routes reach. */
export interface ServerContext {
  deployments: Deployments;
  store: LogStore;
  runner: Runner;
  hub: LogHub;
  streams: OpenStreams;
  pages: Pages;
  metrics: Metrics;
  /** Bytes that may wait for a slow viewer before it is disconnected. */
  maxQueueBytes?: number;
}

type Params = Record<string, string | undefined>;
type Handle = (request: Request, params: Params, context: ServerContext) => Response | Promise<Response>;

interface Route {
  pattern: URLPattern;
  methods: Partial<Record<"GET" | "POST", Handle>>;
}

const route = (pathname: string, methods: Route["methods"]): Route => ({
  pattern: new URLPattern({ pathname }),
  methods,
});

const ROUTES: Route[] = [
  route("/", { GET: (_, __, { pages, deployments }) => pages.home(deployments.list()) }),
  route("/start", { POST: start }),
  route("/deployment/:id", {
    GET: (_, params, context) => {
      known(params, context);
      return context.pages.deployment();
    },
  }),
  route("/events", {
    GET: (_, __, { deployments, streams }) => deploymentsFeedResponse(deployments, streams),
  }),
  route("/events/:id", {
    GET: (request, params, context) => eventsResponse(request, known(params, context), context),
  }),
  route("/deployments/:id/log", {
    GET: async (_, params, context) =>
      new Response(await context.store.readRaw(known(params, context).id), {
        headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-cache" },
      }),
  }),
  route("/api/deployments", { GET: (_, __, { deployments }) => Response.json(deployments.list()) }),
  route("/api/deployments/:id", { GET: (_, params, context) => Response.json(known(params, context)) }),
  route("/api/deployments/:id/cancel", { POST: cancel }),
  route("/static/:file", {
    GET: (_, { file }, { pages }) => {
      const asset = pages.asset(file ?? "");
      if (!asset) throw new HttpError(404, "Not found");
      return asset;
    },
  }),
  route("/healthz", { GET: () => new Response("ok\n") }),
  route("/metrics", {
    GET: (_, __, { metrics, deployments, hub, streams }) =>
      new Response(
        metrics.render({
          deploymentsByStatus: deployments.countByStatus(),
          logViewers: hub.viewerCount,
          followedLogs: hub.followedCount,
          openStreams: streams.size,
        }),
        { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } },
      ),
  }),
];

/** Creates the request handler of the whole server. */
export function createHandler(context: ServerContext): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      return await dispatch(request, context);
    } catch (error) {
      if (error instanceof HttpError) {
        return new Response(`${error.message}\n`, {
          status: error.status,
          headers: {
            ...Object.fromEntries(new Headers(error.headers)),
            "content-type": "text/plain; charset=utf-8",
          },
        });
      }
      context.metrics.requestErrors++;
      console.error(`shiplog: ${request.method} ${new URL(request.url).pathname} failed:`, error);
      return new Response("Internal server error\n", {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
  };
}

async function dispatch(request: Request, context: ServerContext): Promise<Response> {
  for (const { pattern, methods } of ROUTES) {
    const match = pattern.exec(request.url);
    if (!match) continue;
    const method = request.method === "HEAD" ? "GET" : request.method;
    const handle = methods[method as keyof Route["methods"]];
    if (!handle) {
      const allow = Object.keys(methods).flatMap((m) => m === "GET" ? ["GET", "HEAD"] : [m]).join(", ");
      throw new HttpError(405, `Method ${request.method} is not allowed here; allowed: ${allow}`, { allow });
    }
    return await handle(request, match.pathname.groups, context);
  }
  throw new HttpError(404, "Not found");
}

/** The deployment a route's `:id` names; 404 for anything but a known canonical id. */
function known(params: Params, { deployments }: ServerContext): Deployment {
  const id = params.id ?? "";
  const deployment = isDeploymentId(id) ? deployments.get(id) : undefined;
  if (!deployment) throw new HttpError(404, "No such deployment");
  return deployment;
}

async function start(request: Request, _: Params, { deployments, runner, metrics }: ServerContext) {
  await request.body?.cancel();
  const deployment = await deployments.create(runner.command);
  metrics.deploymentsStarted++;
  runner.enqueue(deployment.id);
  if (wantsJson(request)) return Response.json(deployment, { status: 201 });
  return new Response(null, { status: 303, headers: { location: `/deployment/${deployment.id}` } });
}

async function cancel(request: Request, params: Params, context: ServerContext) {
  await request.body?.cancel();
  const deployment = known(params, context);
  if (isFinal(deployment.status)) {
    throw new HttpError(409, `Deployment ${deployment.id} has already ended (${deployment.status})`);
  }
  await context.runner.cancel(deployment.id);
  return Response.json(context.deployments.get(deployment.id));
}

function wantsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("application/json");
}
