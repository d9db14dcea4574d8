/**
 * @module
 * What the runner does to a deployment's output before it reaches the log: secrets are replaced by `***`, so
 * they never reach the file or a viewer, as they are and in their base64 and URL-encoded forms, and the log
 * stops growing at a size cap, with one notice saying so, while the command keeps running. Pure: lines in,
 * lines out.
 */

/** Options of {@linkcode OutputFilter}. */
export interface OutputFilterOptions {
  /**
   * Values to mask, without the line breaks at their ends; ones under {@linkcode MIN_SECRET_LENGTH} characters
   * are ignored, and one of several lines is masked by its lines too.
   */
  secrets?: readonly string[];
  /** Bytes of log allowed (UTF-8, line endings included); output past it is dropped. Default: no cap. */
  maxBytes?: number;
  /** Bytes the log holds already, counted against `maxBytes` (lines appended to a log written before). Default 0. */
  writtenBytes?: number;
}

const encoder = new TextEncoder();
const LINE_BREAK = /\r\n|\r|\n/;
/** Line breaks at the end of a value: not part of it (a value read from a file often ends with one). */
const TRAILING_LINE_BREAKS = /[\r\n]+$/;
/** The shortest secret that is masked: a shorter one (a `1`, a space) would mask ordinary text everywhere. */
export const MIN_SECRET_LENGTH = 4;
/**
 * The shortest part of a longer base64 text that is masked as a secret's: 8 characters are 48 bits, which
 * other base64 text matches by chance once in 2^48 positions; 4 would be once in 2^24, a few times a GiB.
 */
const MIN_INNER_BASE64 = 8;
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
    const secrets = (options.secrets ?? []).map(secretValue).filter((secret) =>
      length(secret) >= MIN_SECRET_LENGTH
    );
    // Output is masked line by line, so a secret of several lines (a PEM key, a kubeconfig) is masked by its
    // lines, trimmed, as indentation may differ. A long one (a line of key material) is masked anywhere. A
    // short one (`users:`) would mask ordinary text inside other lines, so it is masked only as a whole line,
    // and one too short to identify anything (a `}`), like a secret that short, not at all.
    const lines = secrets.flatMap((secret) =>
      LINE_BREAK.test(secret) ? secret.split(LINE_BREAK).map((line) => line.trim()) : []
    );
    const anywhere = lines.filter((line) => line.length >= MIN_LINE_OF_SECRET_ANYWHERE);
    this.#secretLines = new Set(
      lines.filter((line) => length(line) >= MIN_SECRET_LENGTH && line.length < MIN_LINE_OF_SECRET_ANYWHERE),
    );
    // Longest first, so that a secret containing another is masked whole.
    this.#secrets = [...new Set([...secrets, ...secrets.flatMap(encodedForms), ...anywhere])]
      .sort((a, b) => b.length - a.length);
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#bytes = options.writtenBytes ?? 0;
  }

  /**
   * True when `secret` is left in clear for being too short: 1 to {@linkcode MIN_SECRET_LENGTH} - 1 characters,
   * besides the line breaks at its end. An empty one has nothing to hide.
   */
  static tooShort(secret: string): boolean {
    const characters = length(secretValue(secret));
    return characters > 0 && characters < MIN_SECRET_LENGTH;
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

/** Characters (code points) in `text`. */
function length(text: string): number {
  return [...text].length;
}

function secretValue(secret: string): string {
  return secret.replace(TRAILING_LINE_BREAKS, "");
}

/**
 * What else `secret` looks like in output: base64 (standard and URL-safe, with and without padding) and
 * URL-encoded (`encodeURIComponent`, every reserved character, and with `+` for a space).
 */
function encodedForms(secret: string): string[] {
  const bytes = encoder.encode(secret);
  const base64 = [bytes.toBase64(), bytes.toBase64({ omitPadding: true })];
  // Inside a longer base64 text (`Basic base64(user:password)`), the secret starts at one of the three bytes of
  // a 3-byte group; for each, the characters made of its bits only are the same whatever surrounds it. Those
  // at its ends, which share bits with its neighbours, stay in clear.
  for (const offset of [0, 1, 2]) {
    const shifted = new Uint8Array(offset + bytes.length);
    shifted.set(bytes, offset);
    const text = shifted.toBase64();
    const inner = text.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + bytes.length) * 8) / 6));
    if (inner.length >= MIN_INNER_BASE64) base64.push(inner);
  }
  const urlSafe = base64.map((text) => text.replaceAll("+", "-").replaceAll("/", "_"));
  // A lone surrogate cannot be percent-encoded; the UTF-8 encoder above makes it U+FFFD, as this does.
  const component = encodeURIComponent(secret.toWellFormed());
  const reserved = component.replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const url = [
    component,
    reserved,
    component.replaceAll("%20", "+"),
    new URLSearchParams({ v: secret }).toString().slice(2),
  ];
  return [...base64, ...urlSafe, ...url].filter((form) => form !== secret);
}
