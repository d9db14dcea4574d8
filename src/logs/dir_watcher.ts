/**
 * @module
 * One `Deno.watchFs` on one directory, shared by everything that follows a file in it: inotify instances are
 * scarce (128 per user by default) and every watcher sees every event, so one watcher per viewer would not
 * scale. Notifications are wake-ups, not data: a listener is told "your file may have changed" and reads it
 * itself, and is told whether the file was only written to or may have been replaced. A `rescan` (events were
 * dropped) wakes every listener, and a slow safety poll wakes those not heard of since the last poll, so a
 * missed notification can delay a line but never lose it.
 */

import { basename } from "node:path";

/** Options of {@linkcode DirWatcher}. */
export interface DirWatcherOptions {
  /** How often every listener is woken anyway, in milliseconds. Default 1000. */
  pollIntervalMs?: number;
  /**
   * Opens the watch of the directory. Default `Deno.watchFs(dir, { recursive: false })`; a test passes events
   * of its own, such as a `rescan` the kernel only sends when its queue overflows.
   */
  watchFs?: (dir: string) => FsEvents;
}

/** What the watcher reads its events from: what `Deno.watchFs` returns, or a test's events. */
export type FsEvents = AsyncIterable<Deno.FsEvent> & { close(): void };

/**
 * What may have happened to a file: `"data"` when it was written to (appended, or truncated), `"any"` when it
 * may also have been created, deleted or replaced, or nobody knows (a rescan, the safety poll).
 */
export type Change = "data" | "any";

type Wake = (change: Change) => void;

/** Wakes listeners when files of a directory change. Watches only while anybody listens. */
export class DirWatcher {
  #dir: string;
  #pollIntervalMs: number;
  #listeners = new Map<string, Set<Wake>>();
  #watchFs: (dir: string) => FsEvents;
  #watcher: FsEvents | undefined;
  #loop: Promise<void> | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  /** Files the watcher reported since the last safety poll. */
  #heard = new Set<string>();

  constructor(dir: string, options: DirWatcherOptions = {}) {
    this.#dir = dir;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#watchFs = options.watchFs ?? ((path) => Deno.watchFs(path, { recursive: false }));
  }

  /** Calls `wake` whenever `fileName` in the directory may have changed; returns the function that stops it. */
  watch(fileName: string, wake: Wake): () => void {
    let set = this.#listeners.get(fileName);
    if (!set) this.#listeners.set(fileName, set = new Set());
    set.add(wake);
    this.#start();
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.#listeners.get(fileName) === set) this.#listeners.delete(fileName);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Stops watching, whatever still listens. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#stop();
  }

  #start(): void {
    if (this.#watcher) return;
    this.#poll ??= setInterval(() => this.#pollQuiet(), this.#pollIntervalMs);
    let watcher: FsEvents;
    try {
      watcher = this.#watchFs(this.#dir);
    } catch (error) {
      // Out of inotify instances, say: the poll alone still delivers every line, only later. Try again next time.
      console.error(
        `shiplog: cannot watch ${this.#dir}, following logs by polling only:`,
        (error as Error).message,
      );
      return;
    }
    this.#watcher = watcher;
    this.#loop = (async () => {
      try {
        for await (const event of watcher) {
          if (event.flag === "rescan") this.#wakeAll();
          else {
            // Opening, writing, closing: the same file. Creating, deleting, renaming: maybe another one.
            const change = event.kind === "modify" || event.kind === "access" ? "data" : "any";
            for (const path of event.paths) this.#wake(basename(path), change);
          }
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) {
          console.error("shiplog: directory watch failed:", error);
        }
      }
    })();
  }

  async #stop(): Promise<void> {
    clearInterval(this.#poll);
    this.#poll = undefined;
    const watcher = this.#watcher;
    if (!watcher) return;
    this.#watcher = undefined;
    try {
      watcher.close();
    } catch {
      // Already closed by the loop's end.
    }
    await this.#loop;
  }

  #wake(fileName: string, change: Change): void {
    this.#heard.add(fileName);
    for (const wake of this.#listeners.get(fileName) ?? []) wake(change);
  }

  /** Wakes every listener, except those of the files in `skip`. */
  #wakeAll(skip?: ReadonlySet<string>): void {
    for (const [fileName, set] of [...this.#listeners]) {
      if (!skip?.has(fileName)) { for (const wake of [...set]) wake("any"); }
    }
  }

  /**
   * The safety poll wakes only files the watcher said nothing about since the last poll: for a file it just
   * reported, it evidently works, and a notification missed after that is caught by the next poll. A busy
   * server then spends nothing on polling the logs being written.
   */
  #pollQuiet(): void {
    const heard = this.#heard;
    this.#heard = new Set();
    this.#wakeAll(heard);
  }
}
