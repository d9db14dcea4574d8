/**
 * @module
 * What names a deployment: a canonical lowercase UUID, as made by `crypto.randomUUID()`. Every route checks an
 * id with {@linkcode isDeploymentId} before any file is touched, so no other string can reach a file path.
 */

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `value` is a canonical lowercase UUID (no braces, no uppercase, no surrounding text). */
export function isDeploymentId(value: string): boolean {
  return CANONICAL_UUID.test(value);
}
