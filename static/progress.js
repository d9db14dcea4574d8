/**
 * @module
 * The progress convention of shiplog logs: a line that starts with `[n/m]` says the deployment is at step n of
 * m, and the rest of the line names the step — `[3/8] Building image`. Spaces before the bracket and inside it
 * are allowed (`  [ 3 / 8 ] …`); the line is read after its escape codes are removed, so a coloured `[3/8]`
 * counts too. Pure, so it is tested without a browser.
 */

const STEP = /^\s*\[\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*\]\s*(.*)$/;

/**
 * A step of the deployment.
 * @typedef {object} Progress
 * @property {number} step The step being done, 0…total (a larger n is read as total).
 * @property {number} total How many steps there are, at least 1.
 * @property {string} label What the step does: the rest of the line, trimmed; may be empty.
 */

/**
 * Reads the progress a log line announces.
 * @param {string} text A log line without escape codes.
 * @returns {Progress | null} `null` when the line does not start with `[n/m]`, or m is 0.
 */
export function parseProgress(text) {
  const match = STEP.exec(text);
  if (match === null) return null;
  const total = Number(match[2]);
  if (total === 0) return null;
  return { step: Math.min(Number(match[1]), total), total, label: match[3].trim() };
}
