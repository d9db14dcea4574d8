/**
 * @module
 * Turns bytes, arriving in pieces split anywhere, into complete lines of text. Splitting happens on the byte
 * 0x0A before decoding (it never occurs inside a multi-byte UTF-8 character), so a character cut between two
 * reads is decoded whole. A CR before the LF is dropped (CRLF endings are normalised); invalid UTF-8 becomes
 * U+FFFD. A line longer than `maxLineBytes` is cut into pieces at a character boundary, so one unterminated
 * flood cannot hold unbounded memory; every reader of a log uses this same rule, so line numbers agree.
 */

/** Options of {@linkcode LineSplitter}. */
export interface LineSplitterOptions {
  /**
   * The longest line kept whole, in bytes (a CRLF's CR not counted); longer ones are cut into pieces. Default
   * 8 MiB.
   */
  maxLineBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;

/** Splits a byte stream into complete lines. Keeps the unfinished last line until its end arrives. */
export class LineSplitter {
  // The unfinished line, as the chunks it arrived in: joining them only once a line ends (or grows past the
  // maximum) keeps a long line fed in small reads from being copied over and over.
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #decoder = new TextDecoder();
  #maxLineBytes: number;

  constructor(options: LineSplitterOptions = {}) {
    this.#maxLineBytes = options.maxLineBytes ?? 8 * 1024 * 1024;
    if (!(this.#maxLineBytes >= 4)) {
      throw new RangeError(`Cannot split lines of at most ${this.#maxLineBytes} bytes: expected at least 4`);
    }
  }

  /** Bytes received that do not yet form a complete line. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Adds bytes and returns the lines they complete, without their line endings. */
  push(chunk: Uint8Array): string[] {
    if (chunk.length === 0) return [];
    if (this.#pendingBytes + chunk.length <= this.#maxLineBytes && !chunk.includes(LF)) {
      this.#pending.push(chunk.slice());
      this.#pendingBytes += chunk.length;
      return [];
    }
    const bytes = this.#pending.length === 0
      ? chunk
      : concat([...this.#pending, chunk], this.#pendingBytes + chunk.length);
    const lines: string[] = [];
    let start = 0;
    const lastLf = bytes.lastIndexOf(LF);
    if (lastLf >= 0) {
      if (lastLf <= this.#maxLineBytes) {
        // One decode for every complete line in the chunk: far cheaper than one per line.
        const text = this.#decoder.decode(bytes.subarray(0, lastLf));
        for (const line of text.split("\n")) lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      } else {
        // A line here may be longer than the maximum. It is cut as if it had arrived unfinished, so a line
        // reads the same however its bytes were split between reads (a live tail and a replay number alike).
        for (let lineStart = 0; lineStart <= lastLf;) {
          const lf = bytes.indexOf(LF, lineStart);
          const end = lf > lineStart && bytes[lf - 1] === CR ? lf - 1 : lf;
          const rest = this.#cut(bytes, lineStart, end, lines);
          lines.push(this.#decoder.decode(bytes.subarray(rest, end)));
          lineStart = lf + 1;
        }
      }
      start = lastLf + 1;
    }
    // A CR at the end may be half of a CRLF: like the line ending it may be, it does not count as text.
    start = this.#cut(bytes, start, bytes.at(-1) === CR ? bytes.length - 1 : bytes.length, lines);
    this.#pending = start < bytes.length ? [bytes.slice(start)] : [];
    this.#pendingBytes = bytes.length - start;
    return lines;
  }

  /**
   * Adds the pieces of maxLineBytes or less cut off the front of the line bytes[start, end) (its text,
   * without a CRLF's CR); returns where the rest starts.
   */
  #cut(bytes: Uint8Array, start: number, end: number, lines: string[]): number {
    while (end - start > this.#maxLineBytes) {
      const cut = characterBoundary(bytes, start + this.#maxLineBytes, start);
      lines.push(this.#decoder.decode(bytes.subarray(start, cut)));
      start = cut;
    }
    return start;
  }

  /** Returns the unfinished last line, if any, as a line of its own (used when a writer is done for good). */
  flush(): string[] {
    if (this.#pendingBytes === 0) return [];
    const pending = concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    const end = pending.at(-1) === CR ? pending.length - 1 : pending.length;
    return [this.#decoder.decode(pending.subarray(0, end))];
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** The largest index at or before `index` (but after `floor`) where a UTF-8 character starts. */
function characterBoundary(bytes: Uint8Array, index: number, floor: number): number {
  let i = index;
  while (i > floor + 1 && i > index - 4 && (bytes[i] & 0xc0) === 0x80) i--;
  return (bytes[i] & 0xc0) === 0x80 ? index : i;
}
