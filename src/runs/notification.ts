/**
 * @module
 * What a notification says: the JSON body POSTed to a webhook when a deployment starts (`deployment.started`,
 * its record became `running`) and when it ends (`deployment.finished`, its record is final), with the record,
 * the link to its page and one line for chat (`production v1.4.2 succeeded in 42s (alice)`). The line is the
 * `text` of a Slack or Mattermost incoming webhook, so either works as it is. Pure: no clock, no network.
 */

import type { Deployment } from "../logs/deployment.ts";

/** The moments a webhook is told of. */
export type NotificationEvent = "deployment.started" | "deployment.finished";

/** Every event, in the order of a deployment's life. */
export const NOTIFICATION_EVENTS: readonly NotificationEvent[] = [
  "deployment.started",
  "deployment.finished",
];

/** The body of a webhook's POST. */
export interface Notification {
  event: NotificationEvent;
  /** The record at the moment of the event. */
  deployment: Deployment;
  /** The deployment's page. */
  url: string;
  /** One line for chat, with `&`, `<` and `>` escaped as Slack requires (and Markdown renders them back). */
  text: string;
}

/** The event that a change to `record` is, if any: running is a start, a final status the end. */
export function eventOf(record: Deployment): NotificationEvent | undefined {
  if (record.status === "running") return "deployment.started";
  if (record.status === "queued") return undefined;
  return "deployment.finished";
}

/** The notification of `event` for `deployment`, whose page is under `baseUrl` (shiplog's public address). */
export function notificationFor(
  event: NotificationEvent,
  deployment: Deployment,
  baseUrl: string,
): Notification {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  return {
    event,
    deployment,
    url: new URL(`deployment/${deployment.id}`, base).href,
    text: escapeForChat(chatLine(event, deployment)),
  };
}

/**
 * The line for chat, unescaped: the target, the first parameter's value (the version, as a rule), what happened
 * and, in parentheses, who started it. `production v1.4.2 started (alice)`; `staging failed in 3m 5s: exit code
 * 1`; `production cancelled by bob while queued (alice)`.
 */
export function chatLine(event: NotificationEvent, deployment: Deployment): string {
  const first = Object.values(deployment.params)[0];
  const subject = first === undefined || first === "" ? deployment.target : `${deployment.target} ${first}`;
  const who = deployment.startedBy === null ? "" : ` (${deployment.startedBy})`;
  if (event === "deployment.started") return oneLine(`${subject} started${who}`);
  const { status, startedAt, finishedAt } = deployment;
  const took = startedAt === null
    ? " while queued"
    : ` ${status === "succeeded" || status === "failed" ? "in" : "after"} ${
      formatDuration(Date.parse(finishedAt ?? startedAt) - Date.parse(startedAt))
    }`;
  const by = status === "cancelled" && deployment.cancelledBy !== null ? ` by ${deployment.cancelledBy}` : "";
  // A cancel needs no reason; a failure and an interruption say theirs.
  const why = status !== "cancelled" && deployment.reason !== null ? `: ${deployment.reason}` : "";
  return oneLine(`${subject} ${status}${by}${took}${why}${who}`);
}

/** `0.4s`, `42s`, `3m 5s`, `2h 7m`: as precise as a reader of chat cares. */
export function formatDuration(ms: number): string {
  const tenths = Math.round(Math.max(0, ms) / 100);
  if (tenths < 100) return `${tenths / 10}s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    return seconds % 60 === 0 ? `${seconds / 60}m` : `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  }
  const minutes = Math.round(seconds / 60);
  return minutes % 60 === 0 ? `${minutes / 60}h` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** Control characters (a reason may quote a command's output) as spaces: the line stays one line. */
function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex -- exactly those are replaced
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ");
}

/**
 * Slack reads `<...>` as a link or a mention (`<!channel>` pings everyone) and asks for `&`, `<` and `>` as
 * entities; Markdown (Mattermost) shows the entities as the characters again. Mattermost pings for a word after
 * `@` (`@channel`, `@all`): a zero-width space after each `@` keeps the text as it reads and pings nobody. A
 * parameter's value must not ping.
 */
function escapeForChat(text: string): string {
  return text.replace(
    /[&<>@]/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "@\u200b",
  );
}
