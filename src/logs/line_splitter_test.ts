import assert from "node:assert/strict";
import { LineSplitter } from "./line_splitter.ts";

const encode = (text: string) => new TextEncoder().encode(text);

Deno.test("LineSplitter returns only complete lines and keeps the rest", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push(encode("one\ntw")), ["one"]);
  assert.equal(splitter.pendingBytes, 2);
  assert.deepEqual(splitter.push(encode("o\nthree\n")), ["two", "three"]);
  assert.equal(splitter.pendingBytes, 0);
});

Deno.test("LineSplitter normalises CRLF and keeps a lone CR inside a line", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push(encode("a\r\nb\rc\n\r\n")), ["a", "b\rc", ""]);
});

Deno.test("LineSplitter normalises a CRLF split between two pushes", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push(encode("a\r")), []);
  assert.deepEqual(splitter.push(encode("\n")), ["a"]);
});

Deno.test("LineSplitter decodes a multi-byte character split at every byte", () => {
  const bytes = encode("héllo 😀 wörld\n");
  for (let cut = 0; cut <= bytes.length; cut++) {
    const splitter = new LineSplitter();
    const lines = [...splitter.push(bytes.subarray(0, cut)), ...splitter.push(bytes.subarray(cut))];
    assert.deepEqual(lines, ["héllo 😀 wörld"], `cut at ${cut}`);
  }
});

Deno.test("LineSplitter replaces invalid UTF-8 without losing the line break", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push(new Uint8Array([0x61, 0xff, 0xe2, 0x82, 0x0a, 0x62, 0x0a])), [
    "a\uFFFD\uFFFD",
    "b",
  ]);
});

Deno.test("LineSplitter keeps leading spaces, tabs and empty lines", () => {
  const splitter = new LineSplitter();
  assert.deepEqual(splitter.push(encode("  two\n\tTab\n\n")), ["  two", "\tTab", ""]);
});

Deno.test("LineSplitter keeps a 1 MiB line whole", () => {
  const splitter = new LineSplitter();
  const line = "x".repeat(1024 * 1024);
  const bytes = encode(line + "\n");
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 4096) lines.push(...splitter.push(bytes.subarray(i, i + 4096)));
  assert.deepEqual(lines, [line]);
});

Deno.test("LineSplitter cuts an endless line at maxLineBytes on a character boundary", () => {
  const splitter = new LineSplitter({ maxLineBytes: 8 });
  const lines = splitter.push(encode("abcdefgé€xyz12"));
  assert.deepEqual(lines, ["abcdefg", "é€xyz"]);
  assert.equal(splitter.pendingBytes, 2);
  assert.deepEqual(splitter.push(encode("\n")), ["12"]);
});

Deno.test("LineSplitter cuts a long complete line as it cuts one that arrives unfinished", () => {
  const whole = new LineSplitter({ maxLineBytes: 8 });
  assert.deepEqual(whole.push(encode("abcdefghijklmnopq\r\nend\n")), ["abcdefgh", "ijklmnop", "q", "end"]);
  const pieces = new LineSplitter({ maxLineBytes: 8 });
  const lines = [...pieces.push(encode("abcdefghij")), ...pieces.push(encode("klmnopq\r\nend\n"))];
  assert.deepEqual(lines, ["abcdefgh", "ijklmnop", "q", "end"]);
});

Deno.test("LineSplitter keeps a CRLF line of exactly the maximum whole, however its bytes arrive", () => {
  const bytes = encode("abcdefgh\r\nnext\n");
  for (let cut = 0; cut <= bytes.length; cut++) {
    const splitter = new LineSplitter({ maxLineBytes: 8 });
    const lines = [...splitter.push(bytes.subarray(0, cut)), ...splitter.push(bytes.subarray(cut))];
    assert.deepEqual(lines, ["abcdefgh", "next"], `cut at ${cut}`);
  }
});

Deno.test("LineSplitter gives the same lines however the bytes are split between pushes", () => {
  // Seeded, so a failure can be replayed: runs longer than the maximum, multi-byte characters, CR, CRLF.
  let seed = 11;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const pieces = ["a", "é", "€", "😀", "\r", "\n", "\r\n", "abcdefgh", "abcdefghijkl", " "];
  for (let round = 0; round < 300; round++) {
    let text = "";
    for (let i = random(30); i > 0; i--) text += pieces[random(pieces.length)];
    const bytes = encode(text);
    const split = (cuts: number[]) => {
      const splitter = new LineSplitter({ maxLineBytes: 8 });
      const lines: string[] = [];
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        lines.push(...splitter.push(bytes.subarray(from, cut)));
        from = cut;
      }
      return [...lines, ...splitter.flush()];
    };
    const expected = split([]);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cuts = Array.from({ length: random(6) }, () => random(bytes.length + 1)).sort((a, b) => a - b);
      assert.deepEqual(split(cuts), expected, `${JSON.stringify(text)} cut at ${cuts}`);
    }
  }
});

Deno.test("LineSplitter.flush() returns the unfinished line once", () => {
  const splitter = new LineSplitter();
  splitter.push(encode("done\nno newline\r"));
  assert.deepEqual(splitter.flush(), ["no newline"]);
  assert.deepEqual(splitter.flush(), []);
});

Deno.test("LineSplitter rejects a maximum too small for one character", () => {
  assert.throws(() => new LineSplitter({ maxLineBytes: 3 }), RangeError);
});
