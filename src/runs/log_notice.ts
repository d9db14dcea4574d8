/**
 * @module
 * The lines shiplog itself writes into a deployment's log when it ends one that did not end on its own: who
 * cancelled it (`shiplog: cancelled by alice`), or why it was interrupted (`shiplog: interrupted: <reason>`),
 * so that a log read alone (downloaded, tailed) says why it stops. A notice goes in before the record ends: a
 * store shared by a cluster refuses lines for an ended deployment. The cluster's scripts that end a deployment
 * themselves (cancel.lua for a queued one, reap.lua) write the same lines in the same step.
 */

import { type LogStore, RecordEndedError } from "../logs/log_store.ts";

/** The notice of a cancel: by whom, when someone named did it. */
export function cancelledNotice(by: string | null | undefined): string {
  return by ? `shiplog: cancelled by ${by}` : "shiplog: cancelled";
}

/** The notice of an interruption, with its reason in words. */
export function interruptedNotice(reason: string): string {
  return `shiplog: interrupted: ${reason}`;
}

/**
 * Appends one notice line to a deployment's log, through an appender of its own. A log that cannot take it (a
 * full disk, Redis away) does not keep the deployment from ending: the failure is said once, and the end goes on.
 */
export async function writeNotice(store: LogStore, id: string, line: string): Promise<void> {
  try {
    // Not kept while Redis is away: the end that follows must not overtake it and have it refused.
    const log = await store.openAppender(id, { bufferWhileAway: false });
    try {
      await log.write([line]);
    } finally {
      log.close();
    }
  } catch (error) {
    // Ended meanwhile, by another instance: its end said what happened.
    if (error instanceof RecordEndedError) return;
    console.error(`shiplog: cannot write "${line}" into the log of ${id}: ${(error as Error).message}`);
  }
}
