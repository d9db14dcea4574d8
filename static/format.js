/**
 * @module
 * How both pages write statuses, times and durations, so the home list and a deployment's page agree. Pure
 * functions of their arguments (the clock is passed in), tested without a browser.
 */

/** The statuses after which nothing more happens. */
export const FINAL_STATUSES = ["succeeded", "failed", "cancelled", "interrupted"];

/** Every status the server sends. */
export const STATUSES = ["queued", "running", ...FINAL_STATUSES];

/**
 * True once a deployment has ended for good.
 * @param {string} status
 */
export function isFinal(status) {
  return FINAL_STATUSES.includes(status);
}

/**
 * A short duration: `0s`, `42s`, `3m 07s`, `2h 05m`.
 * @param {number} milliseconds Negative values (clock skew) count as 0.
 * @returns {string}
 */
export function formatDuration(milliseconds) {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/**
 * The part of a deployment's JSON the pages read.
 * @typedef {object} DeploymentTimes
 * @property {string} status
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 */

/**
 * How long a deployment ran (or has been running, or waiting), in milliseconds; `null` when there is nothing
 * to measure. A deployment cancelled while queued never started: its time is counted from its creation.
 * @param {DeploymentTimes} deployment
 * @param {number} now The current time, in milliseconds since the epoch.
 * @returns {number | null}
 */
export function elapsedMilliseconds(deployment, now) {
  const start = Date.parse(deployment.startedAt ?? deployment.createdAt);
  if (Number.isNaN(start)) return null;
  if (deployment.finishedAt) {
    const end = Date.parse(deployment.finishedAt);
    return Number.isNaN(end) ? null : Math.max(0, end - start);
  }
  if (isFinal(deployment.status)) return null;
  return Math.max(0, now - start);
}

/**
 * A moment, in the reader's time zone: `14:03:27` today, `24 Nov, 14:03` another day of this year, and with
 * the year otherwise.
 * @param {string} iso
 * @param {number} now
 * @returns {string}
 */
export function formatTime(iso, now) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date(now);
  if (date.toDateString() === today.toDateString()) {
    return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  /** @type {Intl.DateTimeFormatOptions} */
  const options = { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
  return date.toLocaleString(undefined, options);
}

/**
 * The first 8 characters of an id, as shown in lists and titles.
 * @param {string} id
 */
export function shortId(id) {
  return id.slice(0, 8);
}
