/**
 * @module
 * The route table and the one error boundary: which path and method reach which module, nothing more. An
 * unknown path is 404; a known path with another method is 405 with `Allow` derived from the table. Only a
 * canonical deployment id reaches a module, and an unknown one is 404 before any file is touched. Before any
 * route: the access check (when access is controlled), which says who the request comes from, the cross-site
 * check on POSTs, and the body size cap. Every page shown to someone signed in says who that is. Every answer
 * carries the security headers. {@linkcode HttpError} becomes its status with a short message; anything
 * else is logged once and is a 500.
 */

import type { Auth, Identity } from "./auth.ts";
import type { TrustedProxies } from "./client_address.ts";
import type { Deployment } from "../logs/deployment.ts";
import { isFinal } from "../logs/deployment.ts";
import { isDeploymentId } from "../logs/deployment_id.ts";
import type { CreateOptions, Deployments } from "../runs/deployments.ts";
import { cardRecords, deploymentsFeedResponse } from "./deployments_feed.ts";
import { pageAddress, parseDeploymentQuery } from "./deployment_query.ts";
import { EventStream, type EventStreamOptions, type OpenStreams } from "./event_stream.ts";
import { eventsResponse, statusEvent } from "./events_response.ts";
import {
  type Health,
  UNAVAILABLE_RETRY_AFTER_SECONDS,
  unavailableEvent,
  unavailableStreamResponse,
} from "./health.ts";
import { HttpError } from "./http_error.ts";
import type { LogHub } from "./log_hub.ts";
import { BodyLines, type LogAppend } from "./log_append.ts";
import { linesResponse } from "./lines_response.ts";
import { parseLinesQuery } from "./log_query.ts";
import { parseRawLogOptions, rawLogResponse } from "./raw_log_response.ts";
import type { LogStore } from "../logs/log_store.ts";
import type { Metrics } from "./metrics.ts";
import { errorPage, type Pages, type SignedIn } from "./pages.ts";
import type { RequestLimit } from "./request_limit.ts";
import type { Runner } from "../runs/runner.ts";
import { checkParams, checkStart, findTarget, type ParamError, type StartRequest } from "../runs/params.ts";
import type { Target, Targets } from "../runs/targets.ts";
import type { StartKeyGuard } from "./start_guard.ts";
import { safeNext, SIGN_IN_CSP, signInPage } from "./sign_in_page.ts";
import type { ViewerLimit } from "./viewer_limit.ts";

/** Everything the routes reach. */
export interface ServerContext {
  deployments: Deployments;
  /** Where deployments go, and the parameters each takes. */
  targets: Targets;
  store: LogStore;
  runner: Runner;
  /** Lines from outside into the logs of unfinished deployments. */
  logAppend: LogAppend;
  hub: LogHub;
  streams: OpenStreams;
  pages: Pages;
  metrics: Metrics;
  viewerLimit: ViewerLimit;
  /** The cap on requests in progress, from the open file limit; none when the limit is unknown. */
  requestLimit?: RequestLimit;
  /** Set when access is controlled: a token, users or a proxy's header are required. */
  auth?: Auth;
  /** The proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`); none when unset. */
  trustedProxies?: TrustedProxies;
  /** The largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** The address bound (`--hostname`): a name the `Host` header may carry besides localhost and IP literals. */
  hostname?: string;
  /** Bytes that may wait for a slow viewer before it is disconnected. */
  maxQueueBytes?: number;
  /** One deployment per press of Start (across the cluster, with a guard on the shared store). */
  startGuard: StartKeyGuard;
  /**
   * Whether the store that a cluster shares can be reached (see `health.ts`): in a cluster, the instance's
   * `RedisConnection`. None with files: always healthy.
   */
  health?: Health;
  /** This instance's name (`--instance`), for `/metrics`. */
  instance?: string;
  /**
   * The reconnection delay sent to event streams while the store is away, in milliseconds; each stream is
   * given a delay between this and twice this. Default 2000.
   */
  unavailableRetryMs?: number;
}

/** Where a request comes from, and who, once the access check has said. */
interface Client {
  /** The client's address: the peer's, or the one a trusted proxy forwarded for. */
  address: string;
  /** The TCP peer's address: a trusted proxy's header is believed from it alone. */
  peer: string;
  /** Who is signed in, for the top bar of the page answered (an error's too); unset when nobody is. */
  signedIn?: SignedIn;
}

/** What one request's handler gets besides the request. */
interface RequestContext extends ServerContext {
  params: Record<string, string | undefined>;
  /** The client's address: the peer's, or the one a trusted proxy forwarded for. */
  address: string;
  /** The request's URL, parsed once. */
  url: URL;
  /** Who sent the request: a signed-in user's name; `null` when nobody named did (no users, or `--token`). */
  user: string | null;
  /** Opens an event stream for this client, within the caps. */
  openStream(): EventStream;
}

type Handle = (request: Request, context: RequestContext) => Response | Promise<Response>;

interface Route {
  pattern: URLPattern;
  methods: Partial<Record<"GET" | "POST", Handle>>;
  /** Reachable without credentials. */
  open?: boolean;
}

const route = (pathname: string, methods: Route["methods"], open = false): Route => ({
  pattern: new URLPattern({ pathname }),
  methods,
  open,
});

const FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data"];

const ROUTES: Route[] = [
  route("/", {
    GET: (_, { pages, deployments, targets, url }) => {
      const query = parseDeploymentQuery(url.searchParams);
      return pages.home({
        targets: targets.list().map((target) => ({ target, ...cardRecords(deployments, target.name) })),
        query,
        page: deployments.page(query),
        running: deployments.countByStatus().get("running") ?? 0,
      });
    },
  }),
  route("/start", {
    GET: (_, { targets, pages, url }) => {
      const found = findTarget(targets, url.searchParams.get("target"));
      if ("error" in found) throw new HttpError(found.missing ? 400 : 404, found.error);
      // `param.<name>` fills its field (Run again's "Change values…" link): checked when the form is sent.
      const values = Object.fromEntries(
        [...found.target.params.keys()].flatMap((name) => {
          const value = url.searchParams.get(`param.${name}`);
          return value === null ? [] : [[name, value]];
        }),
      );
      return pages.startForm(found.target, { values });
    },
    POST: async (request, context) => {
      await refuseWhileAway(request, context.health, "start a deployment");
      const sent = await readStart(request, context.maxBodyBytes);
      const checked = "problem" in sent
        ? { target: undefined, errors: [{ param: null, message: sent.problem }] }
        : checkStart(context.targets, sent.start);
      if ("errors" in checked) {
        return startRefused(request, context, checked, "start" in sent ? sent.start : {});
      }
      const { target, params } = checked;
      return await startDeployment(request, context, sent.key, {
        command: target.command,
        target: target.name,
        params,
        startedBy: context.user,
      });
    },
  }),
  route("/deployment/:id", {
    GET: (_, context) => {
      const deployment = known(context);
      const rerun = rerunOf(deployment, context.targets);
      return context.pages.deployment(deployment, {
        rerunRefused: "problem" in rerun ? `Cannot run it again: ${rerun.problem}` : undefined,
        rerunTarget: "problem" in rerun ? context.targets.get(deployment.target) : rerun.target,
      });
    },
  }),
  route("/events", {
    GET: (_, context) => {
      // Checked before the stream opens: a bad query is a 400 (which EventSource does not retry), not a stream.
      const query = parseDeploymentQuery(context.url.searchParams);
      return unavailableStream(context) ??
        deploymentsFeedResponse(context.deployments, context.openStream(), {
          query,
          targets: context.targets.list().map(({ name }) => name),
        });
    },
  }),
  route("/events/:id", {
    GET: (request, context) => {
      const deployment = known(context);
      // The record as this instance last heard it: the page shows what it can while the log cannot be read.
      return unavailableStream(context, statusEvent(deployment)) ??
        eventsResponse(request, deployment, context);
    },
  }),
  route("/deployments/:id/log", {
    GET: async (request, context) => {
      const deployment = known(context);
      const options = parseRawLogOptions(context.url.searchParams);
      return await refuseWhileAway(request, context.health, "read the log") ??
        await rawLogResponse(context.store, deployment, options);
    },
  }),
  route("/api/deployments", {
    GET: (_, { deployments, url }) => {
      const query = parseDeploymentQuery(url.searchParams);
      const page = deployments.page(query);
      // Still a JSON array, as before pages: the next page is in the Link header.
      const headers = page.next
        ? { link: `<${pageAddress("/api/deployments", query, page.next)}>; rel="next"` }
        : undefined;
      return Response.json(page.records, { headers });
    },
  }),
  route("/api/deployments/:id", { GET: (_, context) => Response.json(known(context)) }),
  route("/api/deployments/:id/lines", {
    GET: async (request, context) => {
      const { id } = known(context);
      // The query first: a bad one is a 400 whether or not the store can be reached.
      const query = parseLinesQuery(context.url.searchParams);
      return await refuseWhileAway(request, context.health, "read the log") ??
        await linesResponse(context.store, id, query);
    },
  }),
  route("/api/deployments/:id/cancel", {
    POST: async (request, context) => {
      await refuseWhileAway(request, context.health, "cancel a deployment");
      await discardBody(request, [...FORM_TYPES, "application/json"], context.maxBodyBytes);
      const deployment = known(context);
      if (isFinal(deployment.status)) {
        throw new HttpError(409, `Deployment ${deployment.id} has already ended (${deployment.status})`);
      }
      await context.runner.cancel(deployment.id, { by: context.user });
      return Response.json(context.deployments.get(deployment.id));
    },
  }),
  route("/api/deployments/:id/rerun", {
    POST: async (request, context) => {
      await refuseWhileAway(request, context.health, "run a deployment again");
      const key = await startKey(request, context.maxBodyBytes);
      const old = known(context);
      // Run again repeats what has ended: a re-run of one under way would deploy the same thing twice in a row
      // (the page offers Run again only once it has ended).
      if (!isFinal(old.status)) {
        throw new HttpError(
          409,
          `Deployment ${old.id} has not ended yet (${old.status}); run it again once it has`,
        );
      }
      const rerun = rerunOf(old, context.targets);
      if ("problem" in rerun) {
        throw new HttpError(409, `Cannot run deployment ${old.id} again: ${rerun.problem}`);
      }
      const { target, params } = rerun;
      return await startDeployment(request, context, key, {
        command: target.command,
        target: target.name,
        params,
        startedBy: context.user,
        rerunOf: old.id,
      });
    },
  }),
  route("/api/deployments/:id/log", {
    POST: async (request, context) => {
      const { id } = known(context);
      await refuseWhileAway(request, context.health, "append to a log");
      const type = mediaType(request);
      if (type !== "text/plain") {
        await request.body?.cancel();
        throw new HttpError(415, `Unsupported content type ${type || "(none)"}; expected text/plain`);
      }
      // Before the body is read: an ended deployment is refused without waiting for it.
      context.logAppend.checkOpen(id);
      const lines = new BodyLines();
      await readBody(request, context.maxBodyBytes, (chunk) => lines.push(chunk));
      return Response.json(await context.logAppend.append(id, lines.end()));
    },
  }),
  route("/static/:file", {
    GET: (_, { params, pages }) => {
      const asset = pages.asset(params.file ?? "");
      if (!asset) throw new HttpError(404, "Not found");
      return asset;
    },
  }),
  route("/sign-in", {
    GET: (request, { auth }) => {
      const next = safeNext(new URL(request.url).searchParams.get("next"));
      // Only a proxy's header lets anyone in: signing in is the proxy's, so on to where the browser was going.
      if (auth?.takesTokens === false) {
        return new Response(null, { status: 303, headers: { location: next } });
      }
      return signInResponse(next, 200);
    },
    POST: signIn,
  }, true),
  route("/sign-out", {
    POST: async (request, { auth, maxBodyBytes }) => {
      await discardBody(request, FORM_TYPES, maxBodyBytes);
      const headers = new Headers({ location: "/" });
      // Without a token there is no session: no cookie to clear (not one named "undefined").
      if (auth) headers.set("set-cookie", await auth.signOut(request));
      return new Response(null, { status: 303, headers });
    },
  }, true),
  route("/healthz", {
    GET: (_, { health, auth }) =>
      health?.problem === undefined
        ? new Response("ok\n")
        // For a load balancer: this instance cannot serve now. The reason names Redis's address: with a token,
        // this route being open to anyone, it is left to shiplog's own log.
        : new Response(`unavailable: ${auth ? "the store cannot be reached" : health.problem}\n`, {
          status: 503,
          headers: {
            "content-type": "text/plain; charset=utf-8",
            "retry-after": String(UNAVAILABLE_RETRY_AFTER_SECONDS),
          },
        }),
  }, true),
  route("/metrics", {
    GET: (_, { metrics, deployments, hub, streams, health, instance }) =>
      new Response(
        metrics.render({
          deploymentsByStatus: deployments.countByStatus(),
          logViewers: hub.viewerCount,
          followedLogs: hub.followedCount,
          openStreams: streams.size,
          redisUp: health === undefined ? undefined : health.problem === undefined,
          instance,
        }),
        { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } },
      ),
  }),
];

/**
 * The routes by the first segment of their path, so a request tries only the patterns that can match it: each
 * `URLPattern.exec` allocates a kilobyte or more even when it misses, and the event streams are near the end.
 */
const ROUTES_BY_SEGMENT = Map.groupBy(ROUTES, (route) => firstSegment(route.pattern.pathname));

function firstSegment(pathname: string): string {
  const end = pathname.indexOf("/", 1);
  return end < 0 ? pathname : pathname.slice(0, end);
}

/** Headers on every answer: a strict Content-Security-Policy (no inline script), no sniffing, no framing. */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** Creates the request handler of the whole server. */
export function createHandler(
  context: ServerContext,
): (request: Request, info: { remoteAddr: Deno.Addr; completed?: Promise<void> }) => Promise<Response> {
  // The options of every event stream of this server: one object, not one (and a closure) per stream.
  const streamOptions: EventStreamOptions = {
    maxQueueBytes: context.maxQueueBytes,
    onOverflow: () => context.metrics.slowViewersDisconnected++,
  };
  // The store went away: every stream ends, and its client comes back (with Last-Event-ID) after a delay.
  context.health?.addEventListener("down", () => {
    const problem = context.health?.problem;
    if (problem !== undefined) {
      context.streams.endAll(unavailableEvent(problem, context.unavailableRetryMs ?? DEFAULT_RETRY_MS));
    }
  });
  return async (request, info) => {
    const peer = "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "local";
    const forwarded = context.trustedProxies?.clientAddress(peer, request.headers.get("x-forwarded-for"));
    const client: Client = { address: forwarded ?? peer, peer };
    let url: URL | undefined;
    let response: Response;
    try {
      admit(context, info.completed);
      url = requestUrl(request);
      response = await dispatch(request, url, context, client, streamOptions, info.completed);
    } catch (error) {
      response = errorResponse(request, url, error, context, client.signedIn);
    }
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!response.headers.has(name)) response.headers.set(name, value);
    }
    return response;
  };
}

/** Throws 503 past the cap on requests in progress: the client is to close this connection and come back. */
function admit({ requestLimit }: ServerContext, completed: Promise<void> | undefined): void {
  if (!requestLimit || !completed) return;
  const refused = requestLimit.acquire(completed);
  if (refused) throw new HttpError(503, refused, { connection: "close", "retry-after": "5" });
}

/**
 * The request's URL, parsed once: routes match its path alone, not a parse of the whole URL per route tried.
 * The runtime builds it from the Host header, so a Host that makes no URL (`a b`, a port past 65535) is a 400.
 */
function requestUrl(request: Request): URL {
  try {
    return new URL(request.url);
  } catch {
    throw new HttpError(400, "Cannot make a URL of this request: check its Host header");
  }
}

async function dispatch(
  request: Request,
  url: URL,
  context: ServerContext,
  client: Client,
  streamOptions: EventStreamOptions,
  completed: Promise<void> | undefined,
): Promise<Response> {
  checkHost(url, context);
  const { address } = client;
  const path = { pathname: url.pathname };
  for (const { pattern, methods, open } of ROUTES_BY_SEGMENT.get(firstSegment(url.pathname)) ?? []) {
    const match = pattern.exec(path);
    if (!match) continue;
    const identity = open ? undefined : await authorize(request, context, client);
    const method = request.method === "HEAD" ? "GET" : request.method;
    const handle = methods[method as keyof Route["methods"]];
    if (!handle) {
      const allow = Object.keys(methods).flatMap((m) => m === "GET" ? ["GET", "HEAD"] : [m]).join(", ");
      throw new HttpError(405, `Method ${request.method} is not allowed here; allowed: ${allow}`, { allow });
    }
    if (method === "POST") guardPost(request, context);
    return await handle(request, {
      ...context,
      pages: client.signedIn ? context.pages.for(client.signedIn) : context.pages,
      params: match.pathname.groups,
      url,
      address,
      user: identity?.user ?? null,
      openStream: () => openStream(context, address, streamOptions, completed),
    });
  }
  await authorize(request, context, client);
  throw new HttpError(404, "Not found");
}

/** The answer to a failed request; `url` is undefined when the request's URL could not be made. */
function errorResponse(
  request: Request,
  url: URL | undefined,
  error: unknown,
  context: ServerContext,
  signedIn: SignedIn | undefined,
): Response {
  if (error instanceof HttpError) {
    const headers = new Headers(error.headers);
    // Only a proxy's header lets anyone in: a form asking for a token could not.
    if (error.status === 401 && url && acceptsHtml(request) && context.auth?.takesTokens !== false) {
      // Back to where the browser was going after signing in, if it can go there by a link: a POST's target
      // (Start, Cancel) would answer 405 to the GET that follows sign-in.
      const next = request.method === "GET" || request.method === "HEAD"
        ? safeNext(url.pathname + url.search)
        : "/";
      const page = signInResponse(next, 401, error.message === "Wrong token" ? error.message : undefined);
      headers.forEach((value, name) => page.headers.set(name, value));
      return page;
    }
    // A browser (a page, or a form sent: Start) shown a bare line of text would have no way on; a client of the
    // API gets just the message.
    if (acceptsHtml(request)) {
      headers.set("content-type", "text/html; charset=utf-8");
      return new Response(errorPage(error.status, error.message, signedIn), {
        status: error.status,
        headers,
      });
    }
    // An API client that reads JSON gets it for a refusal too, as it does for a refused Start.
    if (wantsJson(request)) {
      headers.set("content-type", "application/json");
      return new Response(JSON.stringify({ error: error.message }), { status: error.status, headers });
    }
    headers.set("content-type", "text/plain; charset=utf-8");
    return new Response(`${error.message}\n`, { status: error.status, headers });
  }
  context.metrics.requestErrors++;
  console.error(`shiplog: ${request.method} ${url?.pathname ?? request.url} failed:`, error);
  return new Response("Internal server error\n", {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * Without a token, refuses requests addressed to a name other than localhost, an IP literal or the bound
 * hostname. This stops DNS rebinding: a web page whose own domain resolves to 127.0.0.1 would otherwise be
 * same-origin with shiplog in the victim's browser, and could read logs and start deployments.
 */
function checkHost(url: URL, { auth, hostname }: ServerContext): void {
  if (auth) return;
  const host = url.hostname.toLowerCase();
  const ipLiteral = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[");
  if (ipLiteral || host === "localhost" || host.endsWith(".localhost") || host === hostname?.toLowerCase()) {
    return;
  }
  throw new HttpError(403, `Host "${host}" is not served without --token; use localhost or an IP address`);
}

/**
 * Who sent the request (noted in `client` for the page's top bar); `undefined` when access is open. Throws 401
 * (or 429 for an address that keeps guessing) unless it carries a token, a session or a trusted proxy's header.
 */
async function authorize(
  request: Request,
  { auth }: ServerContext,
  client: Client,
): Promise<Identity | undefined> {
  if (!auth) return undefined;
  const found = await auth.identify(request, client.address, client.peer);
  if (typeof found !== "string") {
    client.signedIn = { user: found.user, canSignOut: found.via !== "header" };
    return found;
  }
  if (found === "throttled") throw tooManyWrongTokens(auth, client.address);
  const missing = auth.takesTokens
    ? "Sign in with the access token"
    : `Sign in through the single-sign-on proxy: shiplog takes who you are from its ${auth.headerName} header`;
  throw new HttpError(401, found === "wrong" ? "Wrong token" : missing, {
    "www-authenticate": 'Bearer realm="shiplog"',
  });
}

/**
 * Refuses cross-site POSTs (a form on another site posting to this one) and oversized bodies. Browsers send
 * `Sec-Fetch-Site` or `Origin`; clients like curl send neither and are let through (they hold the token).
 */
function guardPost(request: Request, { maxBodyBytes }: ServerContext): void {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  const own = new URL(request.url);
  if (site !== null && site !== "same-origin" && site !== "none") {
    throw new HttpError(403, "Cross-site requests are refused");
  }
  if (site === null && origin !== null && origin !== own.origin) {
    throw new HttpError(403, "Cross-site requests are refused");
  }
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > maxBodyBytes) throw new HttpError(413, `Request body too large (limit ${maxBodyBytes} bytes)`);
}

/**
 * Checks the body's type against what the route takes, then reads it to nowhere: counted, so that a body over
 * the cap is refused whether or not it declared its length.
 */
async function discardBody(request: Request, types: string[], maxBytes: number): Promise<void> {
  const type = mediaType(request);
  if (type && !types.includes(type)) {
    await request.body?.cancel();
    throw new HttpError(415, `Unsupported content type ${type}; expected one of ${types.join(", ")}`);
  }
  await readBody(request, maxBytes, () => {});
}

/**
 * The key of a press of Start or Run again, which makes a repeat of it harmless (see `start_guard.ts`): the
 * form's `key` field, or an `Idempotency-Key` header. Any other body is read to nowhere, as for any POST.
 */
async function startKey(request: Request, maxBytes: number): Promise<string | null> {
  const header = request.headers.get("idempotency-key");
  if (mediaType(request) === "application/x-www-form-urlencoded") {
    const form = await readForm(request, maxBytes);
    return header ?? form.get("key");
  }
  await discardBody(request, [...FORM_TYPES, "application/json"], maxBytes);
  return header;
}

/**
 * What a Start sent: the key of the press, which makes a repeat of it harmless (see `start_guard.ts`: the form's
 * `key` field, or an `Idempotency-Key` header), and the target and parameters: a JSON body
 * `{"target", "params"}`, or a form's `target` and `param.<name>` fields (a field sent twice is a list, which
 * the check refuses). No body asks for the only target with no parameters. A body that cannot be read as what
 * it says it is gives the `problem`.
 */
async function readStart(
  request: Request,
  maxBytes: number,
): Promise<{ key: string | null; start: StartRequest } | { key: string | null; problem: string }> {
  const header = request.headers.get("idempotency-key");
  const type = mediaType(request);
  if (type === "application/json") {
    const text = await readText(request, maxBytes);
    if (text.trim() === "") return { key: header, start: {} };
    let body;
    try {
      body = JSON.parse(text);
    } catch (error) {
      return { key: header, problem: `Cannot parse the body as JSON: ${(error as Error).message}` };
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return {
        key: header,
        problem: 'Cannot use the body: expected an object like {"target": "...", "params": {}}',
      };
    }
    const unknown = Object.keys(body).find((name) => name !== "target" && name !== "params");
    if (unknown !== undefined) {
      return {
        key: header,
        problem: `Unknown field ${
          JSON.stringify(unknown.slice(0, 60))
        } in the body; expected target and params`,
      };
    }
    return { key: header, start: body };
  }
  if (type === "application/x-www-form-urlencoded") {
    const form = await readForm(request, maxBytes);
    return { key: header ?? form.get("key"), start: formStart(form) };
  }
  if (type === "multipart/form-data") {
    const bytes = await readBytes(request, maxBytes);
    let form: FormData;
    try {
      form = await new Response(bytes, { headers: { "content-type": request.headers.get("content-type")! } })
        .formData();
    } catch {
      return { key: header, problem: "Cannot parse the body as multipart/form-data" };
    }
    const key = form.get("key");
    return { key: header ?? (typeof key === "string" ? key : null), start: formStart(form) };
  }
  await discardBody(request, [...FORM_TYPES, "application/json"], maxBytes);
  return { key: header, start: {} };
}

/** A form's `target` and `param.<name>` fields as a Start; other fields (`key`, a button's) are not its. */
function formStart(form: URLSearchParams | FormData): StartRequest {
  const params: Record<string, unknown> = {};
  for (const name of new Set(form.keys())) {
    if (!name.startsWith("param.")) continue;
    const values = form.getAll(name);
    params[name.slice("param.".length)] = values.length === 1 ? values[0] : values;
  }
  const target = form.get("target");
  return { target: target ?? undefined, params };
}

/**
 * The answer to a Start refused for its target or parameters: JSON `{"error", "errors"}` for an API client (or
 * a JSON body); for a browser's form, the target's form again with the values sent and each message next to its field (or a page with
 * the message, when no known target was named).
 */
function startRefused(
  request: Request,
  { pages }: RequestContext,
  { target, errors }: { target: Target | undefined; errors: ParamError[] },
  sent: StartRequest,
): Response {
  // A JSON body is a script's (or a page's script), whatever it accepts: it reads the reasons, not a page.
  if (wantsJson(request) || !acceptsHtml(request) || mediaType(request) === "application/json") {
    return Response.json({ error: errors[0].message, errors }, { status: 400 });
  }
  if (target === undefined) throw new HttpError(400, errors[0].message);
  const given = typeof sent.params === "object" && sent.params !== null ? sent.params : {};
  const values = Object.fromEntries(
    Object.entries(given).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
  // A parameter the target does not have has no field: its message goes above the form.
  const placed = errors.map((error) =>
    error.param !== null && target.params.has(error.param) ? error : { param: null, message: error.message }
  );
  return pages.startForm(target, { values, errors: placed });
}

/** What a Start or a Run again makes: the command to run and the record's fields besides the id. */
type NewDeployment = { command: string | null } & Omit<CreateOptions, "id" | "now">;

/**
 * Creates and queues a deployment, once per `key` (see `start_guard.ts`), within the runner's cap, and answers
 * `201` with its record (JSON) or `303 See Other` to its page (a browser's form).
 */
async function startDeployment(
  request: Request,
  { deployments, runner, metrics, startGuard }: RequestContext,
  key: string | null,
  { command, ...options }: NewDeployment,
): Promise<Response> {
  const start = await startGuard.start(key, async (id) => {
    const deployment = await runner.start(() =>
      deployments.create(command, { ...options, id }).catch((error) => {
        // The cluster's queue filled up between the runner's count and the creation (another instance's Start).
        if (error instanceof RangeError) {
          throw new HttpError(
            503,
            `Cannot start a deployment: ${error.message}; try again once some have started`,
          );
        }
        // A full disk or a read-only directory: the server's state, not a bug, and likely to pass.
        console.error("shiplog: cannot create a deployment:", (error as Error).message);
        // The cause without the path after it ("No space left on device (os error 28): write '/…'").
        const cause = (error as Error).message.replace(/\): .*$/s, ")");
        throw new HttpError(503, `Cannot start a deployment: its record cannot be written: ${cause}`);
      })
    );
    if (deployment) return deployment;
    throw new HttpError(
      503,
      runner.stopping
        ? "Cannot start a deployment: shiplog is stopping"
        : `Cannot start a deployment: ${runner.maxQueued} are queued already (--max-queued ${runner.maxQueued}); ` +
          "try again once some have started",
    );
  });
  const deployment = await start.deployment;
  // The same press sent again: the deployment it made, not a second one.
  if (!start.repeated) metrics.deploymentsStarted++;
  if (wantsJson(request)) return Response.json(deployment, { status: 201 });
  return new Response(null, { status: 303, headers: { location: `/deployment/${deployment.id}` } });
}

/** Reads a small form body, refusing one longer than the cap even when it did not say its length. */
async function readForm(request: Request, maxBytes: number): Promise<URLSearchParams> {
  const type = mediaType(request);
  if (type !== "application/x-www-form-urlencoded") {
    await request.body?.cancel();
    throw new HttpError(415, "Unsupported content type; expected application/x-www-form-urlencoded");
  }
  return new URLSearchParams(await readText(request, maxBytes));
}

/** Reads a small body, refusing one longer than the cap even when it did not say its length. */
async function readBytes(request: Request, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  await readBody(request, maxBytes, (chunk) => chunks.push(chunk));
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Reads a small body as UTF-8 text. */
async function readText(request: Request, maxBytes: number): Promise<string> {
  return new TextDecoder().decode(await readBytes(request, maxBytes));
}

/** The body's media type, lowercase and without parameters (`; charset=…`); undefined when none is given. */
function mediaType(request: Request): string | undefined {
  return request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
}

/** Hands the body's chunks to `onChunk`; 413 past `maxBytes` (the rest is not read), 400 if it breaks off. */
async function readBody(
  request: Request,
  maxBytes: number,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  let size = 0;
  try {
    for await (const chunk of request.body ?? []) {
      size += chunk.length;
      if (size > maxBytes) throw new HttpError(413, `Request body too large (limit ${maxBytes} bytes)`);
      onChunk(chunk);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    // The client went away or broke its body off: its fault, not an unexpected error worth a log line.
    throw new HttpError(400, "Cannot read the request body");
  }
}

async function signIn(request: Request, { auth, address, maxBodyBytes }: RequestContext): Promise<Response> {
  const form = await readForm(request, maxBodyBytes);
  const next = safeNext(form.get("next"));
  if (!auth) return new Response(null, { status: 303, headers: { location: next } });
  const result = await auth.byToken(form.get("token") ?? "", address);
  if (result === "throttled") {
    // The form again, to try once more (in a while), not a page with no way on.
    const page = signInResponse(next, 429, TOO_MANY_WRONG_TOKENS);
    page.headers.set("retry-after", String(auth.retryAfterSeconds(address)));
    return page;
  }
  if (typeof result === "string") return signInResponse(next, 401, "Wrong token");
  return new Response(null, {
    status: 303,
    headers: { location: next, "set-cookie": auth.sessionCookie(result.user) },
  });
}

const TOO_MANY_WRONG_TOKENS =
  "Too many wrong tokens from your address: tries are slowed down; try again later";

function tooManyWrongTokens(auth: Auth, address: string): HttpError {
  return new HttpError(429, TOO_MANY_WRONG_TOKENS, {
    "retry-after": String(auth.retryAfterSeconds(address)),
  });
}

function signInResponse(next: string, status: number, message?: string): Response {
  return new Response(signInPage(next, message), {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": SIGN_IN_CSP,
      "cache-control": "no-store",
    },
  });
}

function openStream(
  context: ServerContext,
  address: string,
  options: EventStreamOptions,
  completed: Promise<void> | undefined,
): EventStream {
  const stream = new EventStream(options);
  const refused = context.viewerLimit.acquire(address, stream, completed);
  if (refused) {
    stream.close();
    throw new HttpError(429, refused, { "retry-after": "30" });
  }
  context.streams.add(stream);
  context.metrics.eventStreamsOpened++;
  return stream;
}

const DEFAULT_RETRY_MS = 2000;

/**
 * While the store is away, refuses what needs it (503 with Retry-After; the body is let go unread). Resolves
 * with nothing otherwise.
 */
async function refuseWhileAway(
  request: Request,
  health: Health | undefined,
  what: string,
): Promise<undefined> {
  if (health?.problem === undefined) return undefined;
  await request.body?.cancel();
  throw new HttpError(
    503,
    `Cannot ${what} now: the store cannot be reached (${health.problem}); try again shortly`,
    { "retry-after": String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
  );
}

/** While the store is away, the answer to a new event stream (see `health.ts`); else `undefined`. */
function unavailableStream(
  { health, unavailableRetryMs }: RequestContext,
  first?: string,
): Response | undefined {
  const problem = health?.problem;
  if (problem === undefined) return undefined;
  return unavailableStreamResponse(problem, unavailableRetryMs ?? DEFAULT_RETRY_MS, first);
}

/** The deployment a route's `:id` names; 404 for anything but a known canonical id. */
function known({ params, deployments }: RequestContext): Deployment {
  const id = params.id ?? "";
  const deployment = isDeploymentId(id) ? deployments.get(id) : undefined;
  if (!deployment) throw new HttpError(404, "No such deployment");
  return deployment;
}

/**
 * What a re-run of `old` deploys: its target and values as the config has them now (a choice taken out is not
 * deployed again; a parameter added since gets its default), or why it cannot be run again.
 */
function rerunOf(old: Deployment, targets: Targets): { target: Target; params: Record<string, string> } | {
  problem: string;
} {
  const target = targets.get(old.target);
  if (!target) return { problem: `its target "${old.target}" is no longer configured` };
  const checked = checkParams(target, old.params);
  return "errors" in checked ? { problem: checked.errors[0].message } : { target, params: checked.params };
}

function wantsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("application/json");
}

function acceptsHtml(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("text/html");
}
