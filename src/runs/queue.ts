/**
 * @module
 * A first-in-first-out queue of distinct items where any item can also leave before its turn, each in O(1)
 * (amortised): what the runner keeps its queued deployments in, so that neither a cancel nor the next start
 * searches a long queue. An array shifted from the front, or a `Set` read from its first entry, cost O(n) per
 * take once the queue is long.
 */

/** Distinct items in the order they were added. */
export class Queue<T> {
  /** Every item added, in order, from `#head` on; those since removed are skipped when their turn comes. */
  #order: T[] = [];
  #head = 0;
  #members = new Set<T>();

  get size(): number {
    return this.#members.size;
  }

  /**
   * Adds an item at the end; one already in the queue keeps its place. Each item is meant to be added once (a
   * deployment's id): one deleted and added again would be handed out at its first place.
   */
  add(item: T): void {
    if (this.#members.has(item)) return;
    this.#members.add(item);
    this.#order.push(item);
  }

  /** Takes an item out of the queue wherever it is; false when it was not in it. */
  delete(item: T): boolean {
    return this.#members.delete(item);
  }

  /** The first item, left in the queue; `undefined` when empty. */
  peek(): T | undefined {
    // Those deleted before their turn are passed for good, as `shift` would pass them.
    while (this.#head < this.#order.length && !this.#members.has(this.#order[this.#head])) this.#head++;
    return this.#order[this.#head];
  }

  /** Takes out the first item; `undefined` when empty. */
  shift(): T | undefined {
    while (this.#head < this.#order.length) {
      const item = this.#order[this.#head++];
      if (!this.#members.delete(item)) continue;
      // What was taken is dropped from time to time, in one copy, so the array does not grow for ever.
      if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
        this.#order = this.#order.slice(this.#head);
        this.#head = 0;
      }
      return item;
    }
    return undefined;
  }

  /** Takes out every item, first first. */
  clear(): T[] {
    const all = [...this.#members];
    this.#members.clear();
    this.#order = [];
    this.#head = 0;
    return all;
  }
}
