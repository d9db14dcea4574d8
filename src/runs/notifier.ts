/**
 * @module
 * Tells the webhooks what happens: hears every change of the {@linkcode Deployments} (this instance's and, in a
 * cluster, every other's), and when a record becomes `running` or final POSTs a `deployment.started` or
 * `deployment.finished` {@linkcode Notification} to each URL, in the background. A deployment's events reach a
 * webhook in their order (its end waits for its start there to be delivered or given up), and one cancelled
 * while queued has only its end. Nothing waits for a receiver: a change is heard synchronously and only queued
 * here, so a receiver that is down, slow or answers 500 never delays a deployment, a status or an answer. At
 * shutdown the deliveries under way get a bounded time, then are given up. In a cluster every instance hears
 * every change: a {@linkcode DeliveryClaim} lets one of them send each event to each URL.
 */

import { type Deployment, isFinal } from "../logs/deployment.ts";
import { settlesWithin } from "../logs/settles_within.ts";
import type { DeploymentChange, DeploymentRemoval, Deployments } from "./deployments.ts";
import { eventOf, type NotificationEvent, notificationFor } from "./notification.ts";
import { pause, postWebhook } from "./webhook.ts";

/** Which instance of a cluster sends an event to a webhook: the one whose claim is taken first. */
export interface DeliveryClaim {
  /** True for the one caller that is to send `event` of deployment `id` to `webhook`. Rejects if it cannot tell. */
  take(id: string, event: NotificationEvent, webhook: string): Promise<boolean>;
}

/** How one delivery ended, for `/metrics`. */
export type DeliveryOutcome = "delivered" | "failed";

/** Options of {@linkcode Notifier}. */
export interface NotifierOptions {
  /** The URLs to POST to; at least one. */
  webhooks: readonly string[];
  /** shiplog's public address: the pages linked are under it. */
  baseUrl: string;
  /** The key that signs each body; none: unsigned. */
  secret?: string;
  /** Decides which instance sends, in a cluster. Default: this one sends everything it hears of. */
  claim?: DeliveryClaim;
  /** Tries per delivery. Default 3. */
  tries?: number;
  /** The timeout of one try, in milliseconds. Default 5000. */
  timeoutMs?: number;
  /** The pause after the first failed try, doubled after each, in milliseconds. Default 1000. */
  backoffMs?: number;
  /** How long {@linkcode Notifier.close} waits for the deliveries under way, in milliseconds. Default 2000. */
  closeWaitMs?: number;
  /**
   * Deliveries under way at once to one webhook; more wait, first come first served. Default 4: a shutdown that
   * interrupts a long queue ends many deployments at once, and a chat's webhook takes about one a second.
   */
  maxInFlight?: number;
  /** Deliveries that may wait for one webhook; more are given up (a receiver down for long). Default 1000. */
  maxWaiting?: number;
  /** Told of every delivery that ended, delivered or given up (the counters of `/metrics`). */
  onOutcome?: (event: NotificationEvent, outcome: DeliveryOutcome) => void;
  /** Where a delivery given up is said, in one line. Default `console.error`. */
  log?: (line: string) => void;
}

/** The deliveries to one webhook: how many are under way, and those waiting for a slot, in order. */
interface Lane {
  active: number;
  waiting: (() => void)[];
  /** Deliveries are being given up because too many wait: said once, until none waits. */
  dropping: boolean;
}

/** Sends the notifications of the deployments' changes to the webhooks. */
export class Notifier {
  #deployments: Deployments;
  #webhooks: readonly string[];
  #baseUrl: string;
  #secret: string | undefined;
  #claim: DeliveryClaim | undefined;
  #tries: number;
  #timeoutMs: number;
  #backoffMs: number;
  #closeWaitMs: number;
  #onOutcome: (event: NotificationEvent, outcome: DeliveryOutcome) => void;
  #log: (line: string) => void;
  /** The events sent (or being sent) of each deployment known: a change heard twice is sent once. */
  #sent = new Map<string, Set<NotificationEvent>>();
  /** The last delivery under way of each deployment to each webhook: the next one there waits for it. */
  #last = new Map<string, Promise<void>>();
  #pending = new Set<Promise<void>>();
  /** Per webhook, the deliveries under way and those waiting for one of its slots. */
  #lanes = new Map<string, Lane>();
  #maxInFlight: number;
  #maxWaiting: number;
  #stop = new AbortController();
  #closing: Promise<void> | undefined;

  constructor(deployments: Deployments, options: NotifierOptions) {
    this.#deployments = deployments;
    // A URL given twice is one receiver: told once.
    this.#webhooks = [...new Set(options.webhooks)];
    this.#baseUrl = options.baseUrl;
    this.#secret = options.secret;
    this.#claim = options.claim;
    this.#tries = options.tries ?? 3;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#backoffMs = options.backoffMs ?? 1000;
    this.#closeWaitMs = options.closeWaitMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 4;
    this.#maxWaiting = options.maxWaiting ?? 1000;
    for (const webhook of this.#webhooks) {
      this.#lanes.set(webhook, { active: 0, waiting: [], dropping: false });
    }
    this.#onOutcome = options.onOutcome ?? (() => {});
    this.#log = options.log ?? ((line) => console.error(line));
    deployments.addEventListener("change", this.#onChange);
    deployments.addEventListener("remove", this.#onRemove);
  }

  #onChange = (event: Event) => this.#heard((event as DeploymentChange).detail);
  #onRemove = (event: Event) => this.#sent.delete((event as DeploymentRemoval).detail);

  /**
   * Sends the end of deployments that ended before this notifier listened: those the start found unfinished
   * and recorded interrupted (shiplog crashed under them).
   */
  announce(ids: readonly string[]): void {
    for (const id of ids) {
      const record = this.#deployments.get(id);
      if (record && isFinal(record.status)) this.#heard(record);
    }
  }

  /** Resolves once every delivery begun so far has ended (delivered or given up). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled(this.#pending);
  }

  /**
   * Stops hearing changes, waits up to `closeWaitMs` for the deliveries under way (the ends of what the shutdown
   * interrupted among them), then gives up the rest.
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#deployments.removeEventListener("change", this.#onChange);
      this.#deployments.removeEventListener("remove", this.#onRemove);
      if (!await settlesWithin(this.settled(), this.#closeWaitMs)) {
        this.#log(
          `shiplog: gave up ${this.#pending.size} notification(s) still being delivered after ${this.#closeWaitMs} ms`,
        );
        this.#stop.abort();
        await this.settled();
      }
    })();
  }

  #heard(record: Deployment): void {
    const event = eventOf(record);
    if (event === undefined || this.#stop.signal.aborted) return;
    let sent = this.#sent.get(record.id);
    if (!sent) this.#sent.set(record.id, sent = new Set());
    if (sent.has(event)) return;
    sent.add(event);
    const body = JSON.stringify(notificationFor(event, record, this.#baseUrl));
    for (const webhook of this.#webhooks) {
      // In order at each webhook; one that hangs holds up only its own.
      const key = `${record.id} ${webhook}`;
      const before = this.#last.get(key);
      const delivery: Promise<void> = (async () => {
        await before;
        await this.#deliver(record.id, event, webhook, body);
      })().catch((error) => {
        // Nothing here is expected to throw; if something did, the next delivery must still go.
        console.error(`shiplog: a notification of deployment ${record.id} failed:`, error);
      }).finally(() => {
        this.#pending.delete(delivery);
        if (this.#last.get(key) === delivery) this.#last.delete(key);
      });
      this.#last.set(key, delivery);
      this.#pending.add(delivery);
    }
  }

  async #deliver(id: string, event: NotificationEvent, webhook: string, body: string): Promise<void> {
    const lane = this.#lanes.get(webhook)!;
    if (lane.waiting.length >= this.#maxWaiting) {
      // A receiver that has been down for long behind many deployments: memory is not spent on it for ever.
      this.#onOutcome(event, "failed");
      if (!lane.dropping) {
        this.#log(
          `shiplog: webhook ${shownUrl(webhook)} has ${lane.waiting.length} notifications waiting; ` +
            "dropping further ones until it catches up",
        );
      }
      lane.dropping = true;
      return;
    }
    if (lane.active < this.#maxInFlight) lane.active++;
    else await new Promise<void>((resolve) => lane.waiting.push(resolve));
    try {
      await this.#send(id, event, webhook, body);
    } finally {
      // The slot goes to the next in line, or is freed.
      const next = lane.waiting.shift();
      if (next) next();
      else lane.active--;
      if (lane.waiting.length === 0) lane.dropping = false;
    }
  }

  async #send(id: string, event: NotificationEvent, webhook: string, body: string): Promise<void> {
    const claimed = await this.#take(id, event, webhook);
    if (claimed === false) return; // Another instance sends it.
    const outcome = claimed === true
      ? await postWebhook(webhook, body, {
        secret: this.#secret,
        tries: this.#tries,
        timeoutMs: this.#timeoutMs,
        backoffMs: this.#backoffMs,
        headers: { "x-shiplog-event": event, "x-shiplog-delivery": `${id}:${event}` },
        signal: this.#stop.signal,
      })
      : { delivered: false, tries: this.#tries, problem: claimed };
    this.#onOutcome(event, outcome.delivered ? "delivered" : "failed");
    // Those given up at shutdown are said in one line, by close().
    if (!outcome.delivered && !this.#stop.signal.aborted) {
      this.#log(
        `shiplog: webhook ${shownUrl(webhook)} did not get ${event} of deployment ${id} ` +
          `(${outcome.tries} ${outcome.tries === 1 ? "try" : "tries"}): ${outcome.problem}`,
      );
    }
  }

  /**
   * Takes the claim on a delivery, trying as often as a delivery is tried (Redis may be back by then). True: this
   * instance sends; false: another does; text: why nobody can tell (it is then given up, not sent twice).
   */
  async #take(id: string, event: NotificationEvent, webhook: string): Promise<boolean | string> {
    if (!this.#claim) return true;
    let problem = "";
    for (let attempt = 1; attempt <= this.#tries && !this.#stop.signal.aborted; attempt++) {
      if (attempt > 1) await pause(this.#backoffMs * 2 ** (attempt - 2), this.#stop.signal);
      try {
        return await this.#claim.take(id, event, webhook);
      } catch (error) {
        problem = (error as Error).message;
      }
    }
    return `cannot tell whether another instance sends it: ${problem || "shiplog was stopped"}`;
  }
}

/** The URL as a log line may show it: scheme and host, not the path that is often the webhook's secret. */
function shownUrl(webhook: string): string {
  const url = new URL(webhook);
  return `${url.protocol}//${url.host}/…`;
}
