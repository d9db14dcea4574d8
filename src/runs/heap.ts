/**
 * @module
 * A binary min-heap: the least item by a comparison, in O(log n) per push and per pop. What the deployments
 * use to find the finished deployment to delete first without sorting them all at every end.
 */

/** Items kept so that the least one (by `compare`) comes out first. */
export class Heap<T> {
  #items: T[] = [];
  #compare: (a: T, b: T) => number;

  /** `compare` is negative when `a` comes out before `b`, as for `Array.prototype.sort`. */
  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    const items = this.#items;
    let at = items.push(item) - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.#compare(items[parent], item) <= 0) break;
      items[at] = items[parent];
      at = parent;
    }
    items[at] = item;
  }

  /** Takes out the least item; `undefined` when empty. */
  pop(): T | undefined {
    const items = this.#items;
    const least = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return least;
    let at = 0;
    while (true) {
      let child = 2 * at + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.#compare(items[child + 1], items[child]) < 0) child++;
      if (this.#compare(last, items[child]) <= 0) break;
      items[at] = items[child];
      at = child;
    }
    items[at] = last;
    return least;
  }
}
