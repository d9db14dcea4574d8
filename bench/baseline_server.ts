/**
 * @module
 * The benchmark's baseline: the smallest Deno SSE fan-out we can write, the runtime's own limit against which
 * shiplog is measured. Lines arrive from memory (a raw TCP control connection, no files), are encoded once per
 * read as `id: N\ndata: text\n\n` (shiplog's wire format) and the same bytes are enqueued to every viewer of the
 * channel. A channel keeps its history so a late viewer gets everything, like a finished shiplog log.
 *
 * Run: `deno run -A bench/baseline_server.ts`; prints `http://127.0.0.1:PORT/ control=PORT`.
 * - `GET /events/<channel>` — SSE: `: connected`, the history, then live lines; `event: done` after an end.
 * - control (TCP, one command per line): `P <channel> <text>` publishes a line, `E <channel>` ends the channel.
 */

interface Channel {
  history: Uint8Array[];
  nextId: number;
  viewers: Set<ReadableStreamDefaultController<Uint8Array>>;
  ended: boolean;
}

const encoder = new TextEncoder();
const CONNECTED = encoder.encode(": connected\n\n");
const DONE = encoder.encode('event: done\ndata: {"status":"succeeded","exitCode":0}\n\n');

function main(): void {
  const channels = new Map<string, Channel>();
  const channel = (name: string): Channel => {
    let found = channels.get(name);
    if (found === undefined) {
      found = { history: [], nextId: 1, viewers: new Set(), ended: false };
      channels.set(name, found);
    }
    return found;
  };

  const control = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (!path.startsWith("/events/")) return new Response("not found", { status: 404 });
    const ch = channel(decodeURIComponent(path.slice("/events/".length)));
    let self: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        controller.enqueue(CONNECTED);
        if (ch.history.length > 0) {
          // One write for the whole history, as a file-backed server would read it in large chunks.
          const all = new Uint8Array(ch.history.reduce((n, chunk) => n + chunk.length, 0));
          let at = 0;
          for (const chunk of ch.history) {
            all.set(chunk, at);
            at += chunk.length;
          }
          controller.enqueue(all);
        }
        if (ch.ended) {
          controller.enqueue(DONE);
          controller.close();
        } else {
          ch.viewers.add(controller);
        }
      },
      cancel() {
        ch.viewers.delete(self);
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
    });
  });

  // Lines of one read are grouped per channel, encoded once and shared by all its viewers.
  const publish = (text: string): void => {
    const pending = new Map<Channel, string[]>();
    for (const line of text.split("\n")) {
      const space = line.indexOf(" ", 2);
      if (line.startsWith("P ") && space > 0) {
        const ch = channel(line.slice(2, space));
        let parts = pending.get(ch);
        if (parts === undefined) pending.set(ch, parts = []);
        parts.push(`id: ${ch.nextId++}\ndata: ${line.slice(space + 1)}\n\n`);
      } else if (line.startsWith("E ")) {
        const ch = channel(line.slice(2));
        flush(ch, pending.get(ch));
        pending.delete(ch);
        ch.ended = true;
        for (const viewer of ch.viewers) {
          viewer.enqueue(DONE);
          viewer.close();
        }
        ch.viewers.clear();
      }
    }
    for (const [ch, parts] of pending) flush(ch, parts);
  };
  const flush = (ch: Channel, parts: string[] | undefined): void => {
    if (parts === undefined) return;
    const bytes = encoder.encode(parts.join(""));
    ch.history.push(bytes);
    for (const viewer of ch.viewers) viewer.enqueue(bytes);
  };

  (async () => {
    for await (const conn of control) {
      (async () => {
        const decoder = new TextDecoder();
        let rest = "";
        for await (const chunk of conn.readable) {
          const text = rest + decoder.decode(chunk, { stream: true });
          const end = text.lastIndexOf("\n");
          if (end < 0) {
            rest = text;
            continue;
          }
          rest = text.slice(end + 1);
          publish(text.slice(0, end));
        }
      })().catch((error) => console.error("control connection failed:", error));
    }
  })().catch(() => {});

  console.log(`http://127.0.0.1:${server.addr.port}/ control=${(control.addr as Deno.NetAddr).port}`);
  const stop = () => Deno.exit(0);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

if (import.meta.main) main();
