/**
 * @module
 * Lines sent from outside (`POST /api/deployments/<id>/log`, a CI job on another machine reporting into a
 * deployment) appended to a queued or running deployment's log under the rules of the deployment's own output:
 * split into lines as the runner splits it, secrets masked, and the log's size cap, counted from what the log
 * holds already. Through the store interface only, so it works alike on files and on Redis; one write per
 * request, so its lines are numbered together and never interleave with the runner's.
 */

import { isFinal } from "../logs/deployment.ts";
import { LineSplitter } from "../logs/line_splitter.ts";
import { type LogStore, RecordEndedError, StoreUnavailableError } from "../logs/log_store.ts";
import { OutputFilter } from "../logs/output_filter.ts";
import type { Deployments } from "../runs/deployments.ts";
import { MAX_LINE_BYTES } from "../runs/runner.ts";
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from "./health.ts";
import { HttpError } from "./http_error.ts";

/** Options of {@linkcode LogAppend}: the runner's, so that lines from outside meet the same rules. */
export interface LogAppendOptions {
  /** Values replaced by `***` before a line is written. */
  secrets?: readonly string[];
  /** Bytes a log may reach; past it one notice is written and further lines dropped. Default: no cap. */
  maxLogBytes?: number;
}

/** What an append did, the JSON answer of the route. */
export interface AppendResult {
  /** The number of the first line appended (with none, the number the next line will have). */
  firstLine: number;
  /** Lines appended, the size cap's notice among them. */
  count: number;
  /** Lines of the body not appended for the size cap; absent when none were dropped. */
  dropped?: number;
}

/** Appends lines from outside to the logs of unfinished deployments. */
export class LogAppend {
  #deployments: Deployments;
  #store: LogStore;
  #secrets: readonly string[];
  #maxLogBytes: number;

  constructor(deployments: Deployments, store: LogStore, options: LogAppendOptions = {}) {
    this.#deployments = deployments;
    this.#store = store;
    this.#secrets = options.secrets ?? [];
    this.#maxLogBytes = options.maxLogBytes ?? Infinity;
  }

  /** Throws 409 unless the deployment `id` (a known one) is queued or running. */
  checkOpen(id: string): void {
    const deployment = this.#deployments.get(id);
    if (deployment && isFinal(deployment.status)) throw ended(id, deployment.status);
  }

  /**
   * Appends `lines` (without line endings) to the log of `id`, masked and within the size cap, in one write.
   * Throws 409 once the deployment has ended, here or, in a cluster, in the store (another instance ended it
   * after the check: the store refuses the write).
   */
  async append(id: string, lines: readonly string[]): Promise<AppendResult> {
    // Checked again after the body was read, which may have taken long.
    this.checkOpen(id);
    const written = await this.#store.byteLength(id);
    // A log at the cap has had its notice: nothing more, not a second notice.
    const full = written >= this.#maxLogBytes;
    const filter = new OutputFilter({
      secrets: this.#secrets,
      maxBytes: this.#maxLogBytes,
      writtenBytes: written,
    });
    const kept = full ? [] : filter.filter(lines);
    // Nothing kept for later while a shared store is away: the client is told to send again (503).
    const appender = await this.#store.openAppender(id, { bufferWhileAway: false });
    let firstLine: number;
    try {
      firstLine = await appender.write(kept);
    } catch (error) {
      if (error instanceof RecordEndedError) throw ended(id, error.stored.status);
      if (!(error instanceof StoreUnavailableError)) throw error;
      throw new HttpError(503, `Cannot append to the log now: ${error.message}; try again shortly`, {
        "retry-after": String(UNAVAILABLE_RETRY_AFTER_SECONDS),
      });
    } finally {
      appender.close();
    }
    // The notice takes the place of the first line dropped.
    const dropped = full ? lines.length : filter.full ? lines.length - (kept.length - 1) : 0;
    return { firstLine, count: kept.length, ...dropped > 0 ? { dropped } : {} };
  }
}

/** The answer to lines for a deployment that has ended. */
function ended(id: string, status: string): HttpError {
  return new HttpError(409, `Deployment ${id} has already ended (${status}): its log takes no more lines`);
}

/** Splits a body into lines as the runner splits output: on LF, CRLF too; a last line without one is a line. */
export class BodyLines {
  #splitter = new LineSplitter({ maxLineBytes: MAX_LINE_BYTES });
  #lines: string[] = [];

  /** Adds a chunk of the body. */
  push(chunk: Uint8Array): void {
    // One by one: spreading a chunk of many short lines into push() could overflow the stack.
    for (const line of this.#splitter.push(chunk)) this.#lines.push(line);
  }

  /** Every line of the body, once it has all arrived. */
  end(): string[] {
    for (const line of this.#splitter.flush()) this.#lines.push(line);
    return this.#lines;
  }
}
