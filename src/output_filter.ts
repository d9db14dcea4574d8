/**
 * @module
 * What the runner does to a deployment's output before it reaches the log: secrets are replaced by `***`, so
 * they never reach the file or a viewer, and the log stops growing at a size cap, with one notice saying so,
 * while the command keeps running. Pure: lines in, lines out.
 */

/** Options of {@linkcode OutputFilter}. */
export interface OutputFilterOptions {
  /** Values to mask; empty ones are ignored, and one of several lines is masked line by line. */
  secrets?: readonly string[];
  /** Bytes of log allowed (UTF-8, line endings included); output past it is dropped. Default: no cap. */
  maxBytes?: number;
}

const encoder = new TextEncoder();
const LINE_BREAK = /\r\n|\r|\n/;
/** The shortest line of a multi-line secret that is masked on its own. */
const MIN_LINE_OF_SECRET = 4;

/** Masks secrets and enforces the size cap on one deployment's output. */
export class OutputFilter {
  #secrets: string[];
  #maxBytes: number;
  #bytes = 0;
  #full = false;

  constructor(options: OutputFilterOptions = {}) {
    const secrets = (options.secrets ?? []).filter((secret) => secret !== "");
    // Output is masked line by line, so a secret of several lines (a PEM key, say) is masked by its lines:
    // trimmed, as indentation may differ; those too short to identify anything (a `}`) would mask plain text.
    const lines = secrets.flatMap((secret) =>
      LINE_BREAK.test(secret)
        ? secret.split(LINE_BREAK).map((line) => line.trim()).filter((line) =>
          line.length >= MIN_LINE_OF_SECRET
        )
        : []
    );
    // Longest first, so that a secret containing another is masked whole.
    this.#secrets = [...new Set([...secrets, ...lines])].sort((a, b) => b.length - a.length);
    this.#maxBytes = options.maxBytes ?? Infinity;
  }

  /** True once the cap was reached and output is being dropped. */
  get full(): boolean {
    return this.#full;
  }

  /** The lines to append for `lines` of output. */
  filter(lines: readonly string[]): string[] {
    if (this.#full) return [];
    const out: string[] = [];
    for (const line of lines) {
      const masked = this.mask(line);
      const size = encoder.encode(masked).length + 1;
      if (this.#bytes + size > this.#maxBytes) {
        this.#full = true;
        out.push(`[shiplog] log truncated: it reached ${this.#maxBytes} bytes; further output is dropped`);
        break;
      }
      this.#bytes += size;
      out.push(masked);
    }
    return out;
  }

  /** `line` with every secret replaced by `***`. */
  mask(line: string): string {
    let masked = line;
    for (const secret of this.#secrets) {
      if (masked.includes(secret)) masked = masked.replaceAll(secret, "***");
    }
    return masked;
  }
}
