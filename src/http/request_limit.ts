/**
 * @module
 * A cap on requests in progress, each of which holds a connection and so a file descriptor: past it the answer
 * is `503` with `Connection: close`, so that the server runs out of neither descriptors (which would stop it
 * accepting connections, and deployments from writing their logs) nor memory. The cap comes from the open file
 * limit (see `descriptor_budget.ts`). Event streams count too; they have their own, lower caps besides.
 */

/** Counts requests in progress and refuses new ones past the cap. */
export class RequestLimit {
  #max: number;
  #inProgress = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place until `completed` settles (the response was sent, or the client went); else says why not. */
  acquire(completed: Promise<void>): string | undefined {
    if (this.#inProgress >= this.#max) {
      return `Too many requests in progress (limit ${this.#max}, from the open file limit); try again later`;
    }
    this.#inProgress++;
    const release = () => this.#inProgress--;
    completed.then(release, release);
    return undefined;
  }
}
