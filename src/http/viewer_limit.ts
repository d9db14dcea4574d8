/**
 * @module
 * Caps on open event streams, in all and per client address, so that one client (or a crowd) cannot exhaust
 * the server's sockets and memory. Past a cap the answer is `429` with `Retry-After`: `EventSource` treats any
 * answer but 200 as final, so a browser does not retry in a tight loop.
 */

import type { EventStream } from "./event_stream.ts";

/** Counts open streams and refuses new ones past the caps. */
export class ViewerLimit {
  #max: number;
  #maxPerClient: number;
  #total = 0;
  #perClient = new Map<string, number>();

  constructor(max: number, maxPerClient: number) {
    this.#max = max;
    this.#maxPerClient = maxPerClient;
  }

  /**
   * Takes a place for `address` until its connection is over (`completed` settles), or else until `stream`
   * ends; a message saying why when there is none. The connection, not the stream: a client too slow for its
   * stream is cut off from it at once, but its socket, and the kernel's buffers full of what it did not read,
   * stay until it goes, so it keeps its place until then.
   */
  acquire(address: string, stream: EventStream, completed?: Promise<void>): string | undefined {
    const mine = this.#perClient.get(address) ?? 0;
    if (this.#total >= this.#max) return `Too many open event streams (limit ${this.#max}); try again later`;
    if (mine >= this.#maxPerClient) {
      return `Too many open event streams from your address (limit ${this.#maxPerClient}); close some first`;
    }
    this.#total++;
    this.#perClient.set(address, mine + 1);
    const release = () => {
      this.#total--;
      const left = this.#perClient.get(address)! - 1;
      if (left === 0) this.#perClient.delete(address);
      else this.#perClient.set(address, left);
    };
    if (completed) completed.then(release, release);
    else stream.onEnd(release);
    return undefined;
  }

  get total(): number {
    return this.#total;
  }
}
