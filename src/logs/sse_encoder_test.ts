import assert from "node:assert/strict";
import { encodeComment, encodeEvent, encodeLogLines, encodeRetry, skipEvents } from "./sse_encoder.ts";

Deno.test("encodeEvent() writes the exact wire string of a log line", () => {
  assert.equal(encodeEvent({ id: 42, data: "hello" }), "id: 42\ndata: hello\n\n");
});

Deno.test("encodeEvent() writes event, id and data in that order", () => {
  assert.equal(
    encodeEvent({ event: "done", id: "7", data: '{"status":"succeeded"}' }),
    'event: done\nid: 7\ndata: {"status":"succeeded"}\n\n',
  );
});

Deno.test("encodeEvent() keeps leading spaces and an empty line", () => {
  assert.equal(encodeEvent({ data: "  indented" }), "data:   indented\n\n");
  assert.equal(encodeEvent({ data: "" }), "data: \n\n");
});

Deno.test("encodeEvent() turns CR, LF and CRLF inside data into separate data lines", () => {
  assert.equal(encodeEvent({ data: "a\rb\nc\r\nd" }), "data: a\ndata: b\ndata: c\ndata: d\n\n");
});

Deno.test("encodeEvent() cannot be forged by text that looks like a field", () => {
  assert.equal(
    encodeEvent({ id: 1, data: "x\revent: done\r\rdata: evil" }),
    "id: 1\ndata: x\ndata: event: done\ndata: \ndata: data: evil\n\n",
  );
});

Deno.test("encodeEvent() passes other control characters and non-ASCII through", () => {
  assert.equal(encodeEvent({ data: "\0\t\u001b[31mé😀\uFFFD" }), "data: \0\t\u001b[31mé😀\uFFFD\n\n");
});

Deno.test("encodeEvent() refuses a line break in the event type or id", () => {
  assert.throws(() => encodeEvent({ event: "a\nb", data: "" }), TypeError);
  assert.throws(() => encodeEvent({ id: "1\r", data: "" }), TypeError);
  assert.throws(() => encodeEvent({ id: "1\0", data: "" }), TypeError);
});

Deno.test("encodeComment() writes comment lines that cannot carry a field", () => {
  assert.equal(encodeComment("heartbeat"), ": heartbeat\n\n");
  assert.equal(encodeComment("a\ndata: x"), ": a\n: data: x\n\n");
});

Deno.test("encodeRetry() writes the retry field and rejects a negative delay", () => {
  assert.equal(encodeRetry(2000), "retry: 2000\n\n");
  assert.throws(() => encodeRetry(-1), RangeError);
});

Deno.test("encodeLogLines() numbers consecutive lines from the first line number", () => {
  assert.equal(encodeLogLines(41, ["a", " b"]), "id: 41\ndata: a\n\nid: 42\ndata:  b\n\n");
  assert.equal(encodeLogLines(1, []), "");
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("skipEvents() cuts whole events off the front of encoded log lines", () => {
  const bytes = encoder.encode(encodeLogLines(7, ["a", "", "b\rc"]));
  assert.equal(decoder.decode(skipEvents(bytes, 0)), encodeLogLines(7, ["a", "", "b\rc"]));
  assert.equal(decoder.decode(skipEvents(bytes, 1)), "id: 8\ndata: \n\nid: 9\ndata: b\ndata: c\n\n");
  assert.equal(decoder.decode(skipEvents(bytes, 2)), "id: 9\ndata: b\ndata: c\n\n");
  assert.equal(skipEvents(bytes, 3).length, 0);
  assert.throws(() => skipEvents(bytes, 4), RangeError);
});

Deno.test("skipEvents() returns a copy of the unsent part, not a view that keeps the whole batch alive", () => {
  const bytes = encoder.encode(encodeLogLines(1, ["a", "b"]));
  const rest = skipEvents(bytes, 1);
  assert.notEqual(rest.buffer, bytes.buffer);
  assert.equal(rest.buffer.byteLength, rest.length);
});

Deno.test("skipEvents() agrees with encoding fewer lines, for lines made of any characters", () => {
  // Seeded, so a failure can be replayed: lines of CR, LF-free text, blanks, field lookalikes, non-ASCII.
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const pieces = ["", "\r", "\r\r", " ", "data: x", "event: done", "id: 3", ":", "é😀", "\0", "a"];
  for (let round = 0; round < 200; round++) {
    const lines = Array.from({ length: random(8) }, () => {
      let line = "";
      for (let i = random(5); i > 0; i--) line += pieces[random(pieces.length)];
      return line;
    });
    const bytes = encoder.encode(encodeLogLines(1, lines));
    for (let skip = 0; skip <= lines.length; skip++) {
      assert.equal(decoder.decode(skipEvents(bytes, skip)), encodeLogLines(1 + skip, lines.slice(skip)));
    }
  }
});
