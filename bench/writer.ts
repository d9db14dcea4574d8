/**
 * @module
 * The benchmark's writer, run as its own process the way any program appending to a log would be. It writes
 * numbered, time-stamped lines `seq=N t=MS` (MS = `performance.timeOrigin + performance.now()`, wall-clock ms
 * with fractions, taken just before the write) by appending to shiplog's `<id>.log` files, by sending
 * `P <channel> <line>` commands to the baseline's control port, or by `POST /api/deployments/<id>/log` (the one
 * way in from outside in cluster mode, where the log is not a file). Every target gets exactly the same lines on
 * the same schedule. Over HTTP each write is one request, answered before the next is sent (one connection, kept
 * alive): two requests in flight could be appended in either order.
 *
 * Run: `deno run -A bench/writer.ts '<WriterSpec as JSON>'`; prints one JSON {@link WriterReport} on stdout.
 */

export type WriterTarget =
  | { kind: "files"; paths: string[] }
  | { kind: "baseline"; port: number; channels: string[] }
  | { kind: "http"; urls: string[] };

export interface WriterSpec {
  target: WriterTarget;
  /** Lines per target (seq 1..lines). */
  lines: number;
  /** Lines per second per target; 0 = as fast as possible. Targets are staggered evenly within a period. */
  rate: number;
  /** Pad each line with ` pad=xxx…` to about this many characters; default: no padding. */
  padTo?: number;
  /** With rate 0: lines per write (default 1000; over HTTP, keep a write under the server's `--max-body-bytes`). */
  batch?: number;
  /** After the last line, end the baseline channels (`E`); default false. */
  end?: boolean;
  /** The line's first word, `seq` unless told (viewers measure only `seq=` lines; `warmup=` lines are not). */
  prefix?: string;
}

export interface WriterReport {
  written: number;
  firstT: number;
  lastT: number;
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

function line(prefix: string, seq: number, padTo: number): string {
  const text = `${prefix}=${seq} t=${wallClock().toFixed(3)}`;
  if (text.length + 5 >= padTo) return text + "\n";
  return `${text} pad=${"x".repeat(padTo - text.length - 5)}\n`;
}

interface Sink {
  /** Writes `text` for target `index` (complete lines). */
  write(index: number, text: string): Promise<void> | void;
  close(end: boolean): Promise<void>;
}

async function openSink(target: WriterTarget): Promise<Sink> {
  const encoder = new TextEncoder();
  if (target.kind === "files") {
    // O_APPEND: each write lands at the end, whole, as with `echo >>`.
    const files = target.paths.map((path) => Deno.openSync(path, { append: true, create: true }));
    return {
      write(index, text) {
        const bytes = encoder.encode(text);
        let at = 0;
        while (at < bytes.length) at += files[index].writeSync(bytes.subarray(at));
      },
      close() {
        for (const file of files) file.close();
        return Promise.resolve();
      },
    };
  }
  if (target.kind === "http") {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
    return {
      async write(index, text) {
        const response = await fetch(target.urls[index], {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: text,
          client,
        });
        const answer = await response.text();
        const lines = text.split("\n").length - 1;
        if (response.status !== 200 || JSON.parse(answer).count !== lines) {
          throw new Error(
            `POST ${target.urls[index]} (${lines} lines) -> ${response.status}: ${answer.slice(0, 200)}`,
          );
        }
      },
      close() {
        client.close();
        return Promise.resolve();
      },
    };
  }
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: target.port });
  conn.setNoDelay(true);
  const prefixes = target.channels.map((channel) => `P ${channel} `);
  const writeAll = async (bytes: Uint8Array) => {
    let at = 0;
    while (at < bytes.length) at += await conn.write(bytes.subarray(at));
  };
  return {
    write(index, text) {
      const prefix = prefixes[index];
      // Every line becomes one command; the text ends with "\n".
      return writeAll(encoder.encode(prefix + text.slice(0, -1).replaceAll("\n", "\n" + prefix) + "\n"));
    },
    async close(end) {
      if (end) await writeAll(encoder.encode(target.channels.map((channel) => `E ${channel}\n`).join("")));
      conn.close();
    },
  };
}

/** Writes the lines described by `spec`; resolves with the first and last time stamps. */
export async function write(spec: WriterSpec): Promise<WriterReport> {
  const targets = spec.target.kind === "files"
    ? spec.target.paths.length
    : spec.target.kind === "http"
    ? spec.target.urls.length
    : spec.target.channels.length;
  const padTo = spec.padTo ?? 0;
  const prefix = spec.prefix ?? "seq";
  const sink = await openSink(spec.target);
  let firstT = NaN;
  let written = 0;
  try {
    if (spec.rate <= 0) {
      const batch = spec.batch ?? 1000;
      firstT = wallClock();
      for (let seq = 1; seq <= spec.lines; seq += batch) {
        for (let index = 0; index < targets; index++) {
          let text = "";
          for (let s = seq; s < Math.min(spec.lines + 1, seq + batch); s++) text += line(prefix, s, padTo);
          await sink.write(index, text);
        }
        written += Math.min(batch, spec.lines - seq + 1) * targets;
      }
    } else {
      const period = 1000 / spec.rate;
      const start = wallClock() + 5;
      firstT = start;
      const total = spec.lines * targets;
      for (let k = 0; k < total; k++) {
        // Event k: line seq of target index, due at start + (seq-1)*period + index*period/targets.
        const seq = Math.floor(k / targets) + 1;
        const index = k % targets;
        const due = start + (seq - 1) * period + index * period / targets;
        const wait = due - wallClock();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
        await sink.write(index, line(prefix, seq, padTo));
        written++;
      }
    }
  } finally {
    await sink.close(spec.end ?? false);
  }
  return { written, firstT, lastT: wallClock() };
}

if (import.meta.main) {
  const spec = JSON.parse(Deno.args[0]) as WriterSpec;
  const report = await write(spec);
  console.log(JSON.stringify(report));
}
