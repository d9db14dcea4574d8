/**
 * @module
 * What it costs a Deno process to learn that a line arrived, by the way it arrives: the experiment behind the
 * benchmark's scenario 3 CPU figure. A writer process (`writer.ts`) sends 2,000 lines at 400 lines/s, spread
 * over 200 targets as in scenario 3, and this process only notices each line, with one of:
 * - `none`: nothing (the floor: this process idles while the writer runs);
 * - `socket`: the lines come over one TCP connection, as they reach the baseline server;
 * - `watchFs`: the lines are appended to 200 files in one directory watched with `Deno.watchFs`, as shiplog does;
 * - `inotify`: the same files, watched with Linux inotify called through FFI, waiting with `poll` on a
 *   runtime thread (the only way FFI can wait without blocking the event loop).
 *
 * It prints this process's CPU time per line (user + system, from `/proc/self/stat`), the median of three
 * runs per way. Neither file way reads the files: the figures are the cost of the notification alone.
 *
 * Run: `deno run -A bench/wake_cost.ts` (Linux).
 */

import { readClockTicks, statCpuMs } from "./proc_stat.ts";
import type { WriterSpec } from "./writer.ts";

const TARGETS = 200;
const LINES_EACH = 10;
const RATE_EACH = 2;
const ROUNDS = 3;

type Way = "none" | "socket" | "watchFs" | "inotify";

/** Starts noticing lines the `way` says; resolves with where the writer should write and how to stop. */
async function listen(way: Way, dir: string, paths: string[]) {
  let noticed = 0;
  let stop = (): Promise<void> => Promise.resolve();
  let target: WriterSpec["target"] = { kind: "files", paths };
  if (way === "socket") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      for await (const conn of listener) {
        const buffer = new Uint8Array(64 * 1024);
        for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
          for (let i = 0; i < n; i++) if (buffer[i] === 0x0a) noticed++;
        }
        conn.close();
      }
    })();
    target = { kind: "baseline", port: listener.addr.port, channels: paths.map((_, i) => `c${i}`) };
    stop = () => (listener.close(), served);
  } else if (way === "watchFs") {
    const watcher = Deno.watchFs(dir, { recursive: false });
    const watched = (async () => {
      for await (const event of watcher) noticed += event.paths.length;
    })();
    stop = () => (watcher.close(), watched);
  } else if (way === "inotify") {
    const inotify = watchWithInotify(dir, () => noticed++);
    stop = inotify.close;
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { target, stop, noticed: () => noticed };
}

/** inotify through FFI: `poll` runs on a runtime thread and wakes the event loop, as `Deno.watchFs` does. */
function watchWithInotify(dir: string, onEvent: () => void): { close: () => Promise<void> } {
  const libc = Deno.dlopen("libc.so.6", {
    inotify_init1: { parameters: ["i32"], result: "i32" },
    inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    eventfd: { parameters: ["u32", "i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  });
  const NONBLOCK_CLOEXEC = 0o4000 | 0o2000000;
  const MODIFY_CREATE_DELETE_MOVE = 0x2 | 0x100 | 0x200 | 0x40 | 0x80;
  const fd = libc.symbols.inotify_init1(NONBLOCK_CLOEXEC);
  const wakeFd = libc.symbols.eventfd(0, NONBLOCK_CLOEXEC);
  libc.symbols.inotify_add_watch(fd, new TextEncoder().encode(dir + "\0"), MODIFY_CREATE_DELETE_MOVE);
  // struct pollfd[2]: { int fd; short events = POLLIN; short revents; }
  const pollFds = new DataView(new ArrayBuffer(16));
  pollFds.setInt32(0, fd, true);
  pollFds.setInt16(4, 1, true);
  pollFds.setInt32(8, wakeFd, true);
  pollFds.setInt16(12, 1, true);
  const events = new Uint8Array(64 * 1024);
  const view = new DataView(events.buffer);
  let open = true;
  const loop = (async () => {
    while (open) {
      await libc.symbols.poll(pollFds, 2n, -1);
      for (let n = Number(libc.symbols.read(fd, events, BigInt(events.length))); n > 0;) {
        // struct inotify_event: wd, mask, cookie, len (4 bytes each), then len bytes of name.
        for (let at = 0; at < n; at += 16 + view.getUint32(at + 12, true)) onEvent();
        n = Number(libc.symbols.read(fd, events, BigInt(events.length)));
      }
    }
  })();
  return {
    async close() {
      open = false;
      libc.symbols.write(wakeFd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8n);
      await loop;
      libc.symbols.close(fd);
      libc.symbols.close(wakeFd);
      libc.close();
    },
  };
}

async function runOnce(way: Way, clockTicks: number): Promise<number> {
  const cpuMs = () => statCpuMs(Deno.readTextFileSync("/proc/self/stat"), clockTicks);
  const dir = await Deno.makeTempDir({ prefix: "shiplog-wake-" });
  try {
    const paths = Array.from({ length: TARGETS }, (_, i) => `${dir}/${i}.log`);
    for (const path of paths) Deno.writeTextFileSync(path, "");
    const listening = await listen(way, dir, paths);
    const spec: WriterSpec = { target: listening.target, lines: LINES_EACH, rate: RATE_EACH };
    const before = cpuMs();
    const writer = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("writer.ts", import.meta.url).pathname, JSON.stringify(spec)],
      stdout: "null",
    });
    const { success } = await writer.output();
    if (!success) throw new Error("the writer failed");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const used = cpuMs() - before;
    await listening.stop();
    const lines = TARGETS * LINES_EACH;
    if (way !== "none" && listening.noticed() < lines) {
      throw new Error(`${way}: noticed ${listening.noticed()} of ${lines} lines`);
    }
    return used * 1000 / lines;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const clockTicks = readClockTicks();
  console.log("| way a line arrives | CPU per line (µs), median of 3 |");
  console.log("|---|---|");
  for (const way of ["none", "socket", "watchFs", "inotify"] as const) {
    const runs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) runs.push(await runOnce(way, clockTicks));
    runs.sort((a, b) => a - b);
    console.log(`| ${way} | ${runs[1].toFixed(0)} (${runs.map((r) => r.toFixed(0)).join(", ")}) |`);
  }
}
