/**
 * @module
 * Counters of what shiplog did, and their rendering in the Prometheus text format for `GET /metrics`. Gauges
 * that can be read off live objects (viewers, deployments by status, the Redis connection) and the instance's
 * name are passed in when rendering, not kept.
 */

import { type Status, STATUSES } from "../logs/deployment.ts";
import { NOTIFICATION_EVENTS, type NotificationEvent } from "../runs/notification.ts";

/** What is known only at the moment of rendering. */
export interface Gauges {
  deploymentsByStatus: Map<Status, number>;
  logViewers: number;
  followedLogs: number;
  openStreams: number;
  /** In a cluster, whether Redis can be reached now; `undefined` with files (no such metric). */
  redisUp?: boolean;
  /** This instance's name (`--instance`), in both modes: which instance a scrape reached. */
  instance?: string;
}

/** Counters that only grow while the server runs. */
export class Metrics {
  linesSent = 0;
  eventStreamsOpened = 0;
  slowViewersDisconnected = 0;
  viewersBehind = 0;
  deploymentsStarted = 0;
  requestErrors = 0;
  /** Webhook deliveries that arrived (2xx), by event. */
  webhookDeliveries: Record<NotificationEvent, number> = {
    "deployment.started": 0,
    "deployment.finished": 0,
  };
  /** Webhook deliveries given up (every try failed, or shutdown came first), by event. */
  webhookFailures: Record<NotificationEvent, number> = { "deployment.started": 0, "deployment.finished": 0 };

  /** The Prometheus text exposition of the counters and `gauges`. */
  render(gauges: Gauges): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    };
    metric(
      "shiplog_deployments",
      "gauge",
      "Deployments by status.",
      STATUSES.map((status) => [`{status="${status}"}`, gauges.deploymentsByStatus.get(status) ?? 0]),
    );
    metric(
      "shiplog_log_viewers",
      "gauge",
      "Viewers following the log of a deployment not ended yet (queued or running).",
      [["", gauges.logViewers]],
    );
    metric("shiplog_followed_logs", "gauge", "Logs followed for live viewers.", [["", gauges.followedLogs]]);
    metric("shiplog_event_streams", "gauge", "Open event streams of any kind.", [["", gauges.openStreams]]);
    metric("shiplog_log_lines_sent_total", "counter", "Log lines sent to viewers.", [["", this.linesSent]]);
    metric("shiplog_event_streams_opened_total", "counter", "Event streams opened.", [[
      "",
      this.eventStreamsOpened,
    ]]);
    metric(
      "shiplog_slow_viewers_disconnected_total",
      "counter",
      "Viewers disconnected because they did not read fast enough.",
      [["", this.slowViewersDisconnected]],
    );
    metric(
      "shiplog_viewers_behind_total",
      "counter",
      "Times a viewer fell far behind the others in a burst and read on from the log file on its own.",
      [["", this.viewersBehind]],
    );
    metric("shiplog_deployments_started_total", "counter", "Deployments created.", [[
      "",
      this.deploymentsStarted,
    ]]);
    metric("shiplog_request_errors_total", "counter", "Requests that failed unexpectedly.", [[
      "",
      this.requestErrors,
    ]]);
    metric(
      "shiplog_webhook_deliveries_total",
      "counter",
      "Notifications a webhook received (answered 2xx), by event; in a cluster each is sent by one instance.",
      NOTIFICATION_EVENTS.map((event) => [`{event="${event}"}`, this.webhookDeliveries[event]]),
    );
    metric(
      "shiplog_webhook_failures_total",
      "counter",
      "Notifications given up after every try failed (or at shutdown), by event.",
      NOTIFICATION_EVENTS.map((event) => [`{event="${event}"}`, this.webhookFailures[event]]),
    );
    if (gauges.instance !== undefined) {
      metric("shiplog_instance_info", "gauge", "The name of this instance (--instance), always 1.", [[
        `{instance="${labelValue(gauges.instance)}"}`,
        1,
      ]]);
    }
    if (gauges.redisUp !== undefined) {
      metric("shiplog_redis_up", "gauge", "1 while Redis can be reached, 0 while it cannot.", [[
        "",
        gauges.redisUp ? 1 : 0,
      ]]);
    }
    return out.join("\n") + "\n";
  }
}

/** A label value as the text format escapes it: backslash, double quote and line feed. */
function labelValue(text: string): string {
  return text.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}
