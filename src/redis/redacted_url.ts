/**
 * @module
 * How a URL that may hold a password (`--redis`) is printed: never with the password.
 */

/** `url` as it may be printed: its password, if any, replaced by `***`; `***` alone if it does not parse. */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "***";
  }
  if (parsed.password !== "") parsed.password = "***";
  return parsed.href;
}
