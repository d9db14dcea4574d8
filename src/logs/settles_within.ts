/**
 * @module
 * Waiting for something, but not for ever: {@linkcode settlesWithin} races a promise against a timer and
 * clears the timer either way, so nothing is left pending once the answer is known.
 */

/** True if `promise` settles (fulfilled or rejected) within `ms` milliseconds; false if the time ran out first. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
