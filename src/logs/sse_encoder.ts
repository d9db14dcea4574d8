/**
 * @module
 * The Server-Sent Events wire format, and nothing else: pure functions from an event to its exact text. The SSE
 * parser splits lines at CR, LF and CRLF, so every line break inside a value becomes its own `data:` line (the
 * client joins them with LF); no value can therefore forge a field, start a new event or end one early. Every
 * `data:` is followed by one space, which the parser strips, so a value's own leading spaces survive.
 */

/** One server-sent event. `data` may contain anything; `event` and `id` must not contain line breaks. */
export interface ServerSentEvent {
  /** The event type; omitted means the default `message` event. */
  event?: string;
  /** The event id, which the client sends back as `Last-Event-ID` when it reconnects. */
  id?: string | number;
  /** The payload; line breaks in it become separate `data:` lines. */
  data: string;
}

const LINE_BREAK = /\r\n|\r|\n/;

/** Encodes one event, ending with the blank line that dispatches it. */
export function encodeEvent(message: ServerSentEvent): string {
  let text = "";
  if (message.event !== undefined) text += `event: ${assertSingleLine(message.event, "event")}\n`;
  if (message.id !== undefined) text += `id: ${assertSingleLine(String(message.id), "id")}\n`;
  // Most data is one line: skip the split then (it is the hot path of every log line).
  if (!message.data.includes("\n") && !message.data.includes("\r")) text += `data: ${message.data}\n`;
  else for (const line of message.data.split(LINE_BREAK)) text += `data: ${line}\n`;
  return text + "\n";
}

/** Encodes a comment, which clients ignore; used to flush headers through proxies and as a heartbeat. */
export function encodeComment(comment: string): string {
  return comment.split(LINE_BREAK).map((line) => `: ${line}\n`).join("") + "\n";
}

/** Encodes a `retry:` field, which sets how long the client waits before reconnecting. */
export function encodeRetry(milliseconds: number): string {
  if (!Number.isInteger(milliseconds) || milliseconds < 0) {
    throw new RangeError(`Cannot encode retry "${milliseconds}": expected a whole number of milliseconds`);
  }
  return `retry: ${milliseconds}\n\n`;
}

function assertSingleLine(value: string, field: string): string {
  // An id with NUL is ignored by clients, so it would silently break resuming; refuse it like a line break.
  if (LINE_BREAK.test(value) || value.includes("\0")) {
    throw new TypeError(`Cannot encode SSE field "${field}": value contains a line break or NUL`);
  }
  return value;
}

/** Encodes consecutive log lines as events whose ids are their line numbers, `firstLine` onwards. */
export function encodeLogLines(firstLine: number, lines: readonly string[]): string {
  let text = "";
  for (let i = 0; i < lines.length; i++) text += encodeEvent({ id: firstLine + i, data: lines[i] });
  return text;
}

/**
 * The `times` event that goes before the line events of lines `firstLine` on (with `?times=1`): when each was
 * first seen (epoch ms, 0 when not known) and the numbers of those of stderr. No id: it is not a line, and a
 * client that reconnects resumes after the last line it got.
 */
export function encodeLineTimes(
  firstLine: number,
  times: readonly number[],
  stderr: readonly number[],
): string {
  return encodeEvent({ event: "times", data: JSON.stringify({ firstLine, times, stderr }) });
}

const LF = 0x0a;

/**
 * The bytes after the first `count` events of `bytes`, which holds whole events as {@linkcode encodeEvent}
 * writes them. An event ends at its first blank line (no value can hold one), so this is byte scanning: lines
 * already sent are cut from shared encoded bytes without decoding or encoding anything. The result is a copy:
 * a view would keep the whole shared batch alive while only its unsent part waits (and is counted) in a queue.
 */
export function skipEvents(bytes: Uint8Array, count: number): Uint8Array {
  let at = 0;
  for (let skipped = 0; skipped < count; skipped++) {
    let lf = bytes.indexOf(LF, at);
    while (lf >= 0 && bytes[lf + 1] !== LF) lf = bytes.indexOf(LF, lf + 1);
    if (lf < 0) throw new RangeError(`Cannot skip ${count} events: the bytes hold only ${skipped}`);
    at = lf + 2;
  }
  return bytes.slice(at);
}
