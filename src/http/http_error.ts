/**
 * @module
 * The one error type that carries an HTTP status. Route handlers throw it for bad requests; the error boundary
 * in `server.ts` turns it into a short plain-text answer. Anything else thrown is unexpected and becomes a 500.
 */

/** An error with the HTTP status and headers the client should get; its message is shown to the client. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: HeadersInit;

  constructor(status: number, message: string, headers: HeadersInit = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}
