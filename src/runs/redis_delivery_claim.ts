/**
 * @module
 * One delivery per event in a cluster: every instance hears every change, and the one that first sets
 * `P:notified:<id>:<event>:<webhook>` (`SET NX`, the webhook as the first 16 hex digits of its URL's SHA-256, so
 * the key does not hold the URL's secret) sends that event to that webhook. The key lives for a day (`ttlMs`):
 * long past any repeat of a change (an instance that reconnects reloads every record and hears recent ones
 * again), and gone by itself after.
 */

import { createHash } from "node:crypto";
import type { RedisConnection } from "../redis/redis_connection.ts";
import type { DeliveryClaim } from "./notifier.ts";
import type { NotificationEvent } from "./notification.ts";

/** Options of {@linkcode RedisDeliveryClaim}. */
export interface RedisDeliveryClaimOptions {
  /** This instance's name, kept in the key (which instance sent it, for an operator). */
  instance: string;
  /** How long a claim is kept, in milliseconds. Default 86,400,000 (a day). */
  ttlMs?: number;
}

/** Claims on deliveries, in the Redis that a cluster shares. */
export class RedisDeliveryClaim implements DeliveryClaim {
  #connection: RedisConnection;
  #instance: string;
  #ttlMs: number;

  constructor(connection: RedisConnection, options: RedisDeliveryClaimOptions) {
    this.#connection = connection;
    this.#instance = options.instance;
    this.#ttlMs = options.ttlMs ?? 86_400_000;
  }

  async take(id: string, event: NotificationEvent, webhook: string): Promise<boolean> {
    const key = this.#connection.key(
      "notified",
      id,
      event,
      createHash("sha256").update(webhook).digest("hex").slice(0, 16),
    );
    const set = await this.#connection.commands.set(key, this.#instance, {
      condition: "NX",
      expiration: { type: "PX", value: this.#ttlMs },
    });
    return set === "OK";
  }
}
