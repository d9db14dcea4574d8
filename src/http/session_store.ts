/**
 * @module
 * The narrow interface between the sign-in sessions and where their state is kept: the secret that session
 * keys are derived from (with the token), and the sessions signed out before they expired. Every instance that
 * shares a store accepts the same sessions and refuses the same revoked ones. {@linkcode FileSessionStore} (a
 * file in the data directory) is the built-in one; a store on a shared engine, for several shiplog instances
 * behind one load balancer, implements the same.
 */

/** The state of the sessions: a secret and the revoked session ids. */
export interface SessionStore {
  /** Random bytes kept across restarts, never sent to anyone: without them no session can be computed. */
  readonly secret: Uint8Array;
  /** Refuses the session `id` from now on; it may be forgotten once `expiresAt` (epoch milliseconds) passed. */
  revoke(id: string, expiresAt: number): Promise<void>;
  /** True when the session `id` was revoked. */
  isRevoked(id: string): Promise<boolean>;
}
