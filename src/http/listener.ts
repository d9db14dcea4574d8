/**
 * @module
 * The HTTP server's listening socket, kept listening. `Deno.serve` stops accepting for good when an accept
 * fails (out of file descriptors: `Too many open files`): its `finished` rejects, nothing is logged, and the
 * process lives on answering nothing. A {@linkcode Listener} notices, says so once, closes the broken server's
 * idle connections (which gives their descriptors back; requests in progress, event streams among them, go on
 * to their end), and listens again on the same address, with back-off, until it can; then it says so once more.
 */

/** Options of {@linkcode Listener.listen}. */
export interface ListenerOptions {
  hostname: string;
  /** 0 picks a free port; listening again takes the port picked the first time. */
  port: number;
  /** PEM certificate and key, to serve HTTPS. */
  tls?: { cert: string; key: string };
  /** The answer to a request whose handler threw (see `Deno.ServeOptions.onError`). */
  onError?: (error: unknown) => Response | Promise<Response>;
  /** Milliseconds before the first try to listen again; doubled after each failed try. Default 100. */
  retryMs?: number;
  /** The longest wait between two tries, in milliseconds. Default 2000. */
  maxRetryMs?: number;
}

type Handler = Deno.ServeHandler<Deno.NetAddr>;

/** A `Deno.serve` that listens again when its listener ends without being shut down. */
export class Listener {
  #handler: Handler;
  #options: ListenerOptions;
  #address: Deno.NetAddr;
  #current: Deno.HttpServer<Deno.NetAddr>;
  /** Every server whose connections may still be open, with its shutdown once it was asked for. */
  #servers = new Map<Deno.HttpServer<Deno.NetAddr>, Promise<void> | undefined>();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  private constructor(handler: Handler, options: ListenerOptions) {
    this.#handler = handler;
    this.#options = options;
    this.#current = this.#serve(options.port);
    this.#address = this.#current.addr;
  }

  /** Listens on `options.hostname` and `options.port`; throws the runtime's error when it cannot. */
  static listen(handler: Handler, options: ListenerOptions): Listener {
    return new Listener(handler, options);
  }

  /** Where it listens. */
  get address(): Deno.NetAddr {
    return this.#address;
  }

  /** Stops listening (and trying to), and resolves when every connection of every server it ran is over. */
  shutdown(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    return Promise.all([...this.#servers.keys()].map((server) => this.#shutDown(server))).then(() => {});
  }

  #serve(port: number): Deno.HttpServer<Deno.NetAddr> {
    const server = Deno.serve({
      hostname: this.#options.hostname,
      port,
      ...this.#options.tls,
      onListen: () => {},
      onError: this.#options.onError,
    }, this.#handler);
    this.#servers.set(server, undefined);
    const ended = (error?: unknown) => this.#ended(server, error);
    server.finished.then(() => ended(), ended);
    return server;
  }

  #shutDown(server: Deno.HttpServer<Deno.NetAddr>): Promise<void> {
    let closed = this.#servers.get(server);
    if (!closed) {
      closed = server.shutdown().finally(() => this.#servers.delete(server));
      this.#servers.set(server, closed);
    }
    return closed;
  }

  #ended(server: Deno.HttpServer<Deno.NetAddr>, error: unknown): void {
    if (this.#stopped || server !== this.#current) return;
    console.error(
      `shiplog: stopped listening on ${this.#where()}: ${reason(error)}; listening again as soon as it can`,
    );
    // Its idle connections are what ran the descriptors out: closing them gives those back.
    this.#shutDown(server);
    this.#listenAgain(this.#options.retryMs ?? 100);
  }

  #listenAgain(waitMs: number): void {
    this.#retry = setTimeout(() => {
      try {
        this.#current = this.#serve(this.#address.port);
      } catch {
        // Still out of descriptors, or the port was taken meanwhile: said once already, for this outage.
        this.#listenAgain(Math.min(waitMs * 2, this.#options.maxRetryMs ?? 2000));
        return;
      }
      console.error(`shiplog: listening again on ${this.#where()}`);
    }, waitMs);
  }

  #where(): string {
    const { hostname, port } = this.#address;
    return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  }
}

/** An error's message without the runtime's "Error: " in front (`Too many open files (os error 24)`). */
function reason(error: unknown): string {
  if (error === undefined) return "the server ended";
  return (error instanceof Error ? error.message : String(error)).replace(/^Error: /, "");
}
