/**
 * @module
 * The reader's choices that outlive the page (wrap lines, timestamps), kept in `localStorage` under
 * `shiplog.<name>`. A browser that refuses storage (private mode, a policy) keeps the defaults.
 */

/**
 * The remembered value of a switch, or `fallback` when none is.
 * @param {string} name
 * @param {boolean} fallback
 */
export function readSwitch(name, fallback) {
  try {
    const value = localStorage.getItem(`shiplog.${name}`);
    return value === null ? fallback : value === "true";
  } catch {
    return fallback;
  }
}

/**
 * Remembers a switch.
 * @param {string} name
 * @param {boolean} value
 */
export function writeSwitch(name, value) {
  try {
    localStorage.setItem(`shiplog.${name}`, String(value));
  } catch {
    // Not remembered; the page still does what was asked.
  }
}
