/**
 * Tests of `GET /events/<id>` responses on a store of our own: the file store's records and appends, read back
 * in batches that overlap, as a store on another engine may read them.
 */

import assert from "node:assert/strict";
import { Deployments } from "../runs/deployments.ts";
import { EventStream } from "./event_stream.ts";
import { eventsResponse } from "./events_response.ts";
import { FileStore } from "../logs/file_store.ts";
import { LogHub } from "./log_hub.ts";
import type { LineBatch, LogStore, ReadLinesOptions } from "../logs/log_store.ts";
import { Metrics } from "./metrics.ts";
import { makeTempDir, withDeadline } from "../testing/test_helpers.ts";

const PAGE_LINES = 10;
const encoder = new TextEncoder();

/**
 * A store whose reads overlap, as a paged range read with an inclusive start does (a stream read from the last
 * entry seen): a read starts at line `afterLine` itself, and each page of {@linkcode PAGE_LINES} starts with the
 * last line of the one before, until a page holds nothing else. It ignores `from` and reads from the start.
 * Everything else is the file store's.
 */
class OverlappingReads implements LogStore {
  #files: FileStore;

  constructor(files: FileStore) {
    this.#files = files;
  }

  async *readLines(id: string, afterLine: number, options: ReadLinesOptions = {}): AsyncIterable<LineBatch> {
    const lines: string[] = [];
    const ends: number[] = [];
    const times: number[] = [];
    const stderr: number[] = [];
    for await (
      const batch of this.#files.readLines(id, 0, { signal: options.signal, times: options.times })
    ) {
      for (const line of batch.lines) ends.push((ends.at(-1) ?? 0) + encoder.encode(line).length + 1);
      lines.push(...batch.lines);
      times.push(...batch.times ?? []);
      stderr.push(...batch.stderr ?? []);
    }
    for (let first = Math.max(1, afterLine); first <= lines.length;) {
      const page = lines.slice(first - 1, first - 1 + PAGE_LINES);
      const last = first + page.length - 1;
      yield {
        firstLine: first,
        lines: page,
        end: ends[last - 1],
        ...options.times && {
          times: times.slice(first - 1, last),
          stderr: stderr.filter((line) => line >= first && line <= last),
        },
      };
      if (page.length === 1) break;
      first += page.length - 1;
    }
  }

  list = () => this.#files.list();
  save: LogStore["save"] = (deployment) => this.#files.save(deployment);
  openAppender = (id: string) => this.#files.openAppender(id);
  countLines = (id: string) => this.#files.countLines(id);
  follow: LogStore["follow"] = (id, handlers) => this.#files.follow(id, handlers);
  lastWrittenAt = (id: string) => this.#files.lastWrittenAt(id);
  byteLength = (id: string) => this.#files.byteLength(id);
  remove = (id: string) => this.#files.remove(id);
  readRaw = (id: string) => this.#files.readRaw(id);
  close = () => this.#files.close();
}

/** A finished deployment of `lineCount` lines on an {@linkcode OverlappingReads} store, and its events. */
async function finishedDeployment(lineCount: number) {
  const temp = await makeTempDir();
  const store = new OverlappingReads(await FileStore.open(temp.path, { pollIntervalMs: 60_000 }));
  const deployments = await Deployments.load(store);
  const hub = new LogHub(store, deployments);
  const context = { deployments, store, hub, metrics: new Metrics(), openStream: () => new EventStream() };
  const { id } = await deployments.create("./deploy.sh");
  const appender = await store.openAppender(id);
  // Each line its own time, every third of stderr.
  for (let line = 1; line <= lineCount; line++) {
    await appender.write([`line ${line}`], { time: 1_700_000_000_000 + line, stderr: line % 3 === 0 });
  }
  appender.close();
  const finished = await deployments.update(id, { status: "succeeded", exitCode: 0 });
  return {
    /** The events of the response, `"<id>"` for a line (with its text checked), `"<id> done"` for the end. */
    async events(headers: Record<string, string> = {}): Promise<string[]> {
      const request = new Request(`http://shiplog.test/events/${id}`, { headers });
      const response = await eventsResponse(request, finished, context);
      const text = await withDeadline("the end of the stream", response.text());
      return text.split("\n\n").filter((event) => /^id: /m.test(event)).map((event) => {
        const lineId = /^id: (\d+)$/m.exec(event)![1];
        if (/^event: done$/m.test(event)) return `${lineId} done`;
        assert.match(event, new RegExp(`^data: line ${lineId}$`, "m"));
        return lineId;
      });
    },
    /** The `times` events of the response with `?times=1`, parsed, in order. */
    async times(headers: Record<string, string> = {}): Promise<TimesEvent[]> {
      const request = new Request(`http://shiplog.test/events/${id}?times=1`, { headers });
      const response = await eventsResponse(request, finished, context);
      const text = await withDeadline("the end of the stream", response.text());
      return text.split("\n\n").filter((event) => event.startsWith("event: times\n")).map((event) =>
        JSON.parse(event.slice(event.indexOf("data: ") + 6))
      );
    },
    async [Symbol.asyncDispose]() {
      hub.close();
      await store.close();
      await temp[Symbol.asyncDispose]();
    },
  };
}

interface TimesEvent {
  firstLine: number;
  times: number[];
  stderr: number[];
}

/** `"<from>"` to `"<to>"`, then `"<to> done"`. */
function linesThenDone(from: number, to: number): string[] {
  return [...Array.from({ length: to - from + 1 }, (_, i) => String(from + i)), `${to} done`];
}

Deno.test("eventsResponse() sends each line once though the store's batches overlap", async (t) => {
  await using deployment = await finishedDeployment(25);
  await t.step(
    "from the first line: each batch repeats a line, and the last one holds nothing new",
    async () => {
      assert.deepEqual(await deployment.events(), linesThenDone(1, 25));
    },
  );
  await t.step("resuming after line 5: the first batch starts with line 5", async () => {
    assert.deepEqual(await deployment.events({ "last-event-id": "5" }), linesThenDone(6, 25));
  });
});

Deno.test("eventsResponse() with ?times=1 sends each line's time once, the times events cut where the batches overlap", async (t) => {
  await using deployment = await finishedDeployment(25);
  /** The times of lines `from` to 25 as the appender wrote them: 1_700_000_000_000 + n, every third of stderr. */
  const written = (from: number) => {
    const lines = Array.from({ length: 26 - from }, (_, i) => from + i);
    return {
      times: lines.map((line) => 1_700_000_000_000 + line),
      stderr: lines.filter((line) => line % 3 === 0),
    };
  };
  const joined = (events: TimesEvent[]) => {
    for (let i = 1; i < events.length; i++) {
      const before = events[i - 1];
      assert.equal(events[i].firstLine, before.firstLine + before.times.length, "each starts after the last");
    }
    return { times: events.flatMap((event) => event.times), stderr: events.flatMap((event) => event.stderr) };
  };
  await t.step("from the first line", async () => {
    const events = await deployment.times();
    assert.equal(events[0].firstLine, 1);
    assert.deepEqual(joined(events), written(1));
  });
  await t.step(
    "resuming after line 5: the first batch starts with line 5, its times event with line 6",
    async () => {
      const events = await deployment.times({ "last-event-id": "5" });
      assert.equal(events[0].firstLine, 6);
      assert.deepEqual(joined(events), written(6));
    },
  );
});
