/**
 * @module
 * What the runner does to a deployment's output before it reaches the log: secrets are replaced by `***`, so
 * they never reach the file or a viewer, and the log stops growing at a size cap, with one notice saying so,
 * while the command keeps running. Pure: lines in, lines out.
 */

/** Options of {@linkcode OutputFilter}. */
export interface OutputFilterOptions {
  /** Values to mask; empty ones are ignored, and one of several lines is masked by its lines too. */
  secrets?: readonly string[];
  /** Bytes of log allowed (UTF-8, line endings included); output past it is dropped. Default: no cap. */
  maxBytes?: number;
}

const encoder = new TextEncoder();
const LINE_BREAK = /\r\n|\r|\n/;
/** Line breaks at the end of a value: not part of it (a value read from a file often ends with one). */
const TRAILING_LINE_BREAKS = /[\r\n]+$/;
/** The shortest line of a multi-line secret that is masked on its own, as a whole output line. */
const MIN_LINE_OF_SECRET = 4;
/** The shortest line of a multi-line secret that is masked wherever it appears, like a whole secret. */
const MIN_LINE_OF_SECRET_ANYWHERE = 16;

/** Masks secrets and enforces the size cap on one deployment's output. */
export class OutputFilter {
  #secrets: string[];
  /** Short lines of multi-line secrets, masked only when they are a whole output line (trimmed). */
  #secretLines: Set<string>;
  #maxBytes: number;
  #bytes = 0;
  #full = false;

  constructor(options: OutputFilterOptions = {}) {
    const secrets = (options.secrets ?? []).map((secret) => secret.replace(TRAILING_LINE_BREAKS, ""))
      .filter((secret) => secret !== "");
    // Output is masked line by line, so a secret of several lines (a PEM key, a kubeconfig) is masked by its
    // lines, trimmed, as indentation may differ. A long one (a line of key material) is masked anywhere. A
    // short one (`users:`) would mask ordinary text inside other lines, so it is masked only as a whole line,
    // and one too short to identify anything (a `}`) not at all.
    const lines = secrets.flatMap((secret) =>
      LINE_BREAK.test(secret) ? secret.split(LINE_BREAK).map((line) => line.trim()) : []
    );
    const anywhere = lines.filter((line) => line.length >= MIN_LINE_OF_SECRET_ANYWHERE);
    this.#secretLines = new Set(
      lines.filter((line) => line.length >= MIN_LINE_OF_SECRET && line.length < MIN_LINE_OF_SECRET_ANYWHERE),
    );
    // Longest first, so that a secret containing another is masked whole.
    this.#secrets = [...new Set([...secrets, ...anywhere])].sort((a, b) => b.length - a.length);
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
    if (this.#secretLines.size > 0) {
      const trimmed = line.trim();
      if (this.#secretLines.has(trimmed)) masked = line.replace(trimmed, "***");
    }
    for (const secret of this.#secrets) {
      if (masked.includes(secret)) masked = masked.replaceAll(secret, "***");
    }
    return masked;
  }
}
