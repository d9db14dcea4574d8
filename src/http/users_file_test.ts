import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hashToken, parseUsersFile, userNameProblem } from "./users_file.ts";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

Deno.test("parseUsersFile() reads name:token and name:sha256:<hex> lines, skipping comments and blank lines", () => {
  const text = [
    "# who may deploy",
    "",
    "alice:correct-horse-battery",
    "  # indented comment",
    `bob:sha256:${sha256("bobs-own-token").toUpperCase()}`,
    "carol.smith@example.com:tok:en:with:colons#and-a-hash\r",
    "",
  ].join("\n");
  const users = parseUsersFile(text, "users.txt");
  assert.deepEqual(users.map(({ name, token }) => ({ name, token })), [
    { name: "alice", token: "correct-horse-battery" },
    { name: "bob", token: null },
    { name: "carol.smith@example.com", token: "tok:en:with:colons#and-a-hash" },
  ]);
  assert.deepEqual(users[0].tokenHash, hashToken("correct-horse-battery"));
  assert.equal(users[1].tokenHash.toHex(), sha256("bobs-own-token"));
});

const HEX_ONLY =
  'line 1: expected 64 hex digits after "alice:sha256:" and nothing else (the token\'s SHA-256: ' +
  "printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1)";

Deno.test("parseUsersFile() refuses each bad line with the file, its number and what is wrong, and a file of no users", () => {
  const cases: [string, string][] = [
    ["alice", "line 1: expected name:token or name:sha256:<hex of the token's SHA-256>"],
    [":correct-horse-battery", "line 1: expected a user name before the colon"],
    [
      "al ice:correct-horse-battery",
      'line 1: Cannot use user name "al ice": expected 1 to 100 letters, digits, or . _ @ + -, ' +
      "starting with a letter or digit",
    ],
    [
      "-alice:correct-horse-battery",
      'line 1: Cannot use user name "-alice": expected 1 to 100 letters, digits, or . _ @ + -, ' +
      "starting with a letter or digit",
    ],
    [
      "<b>x</b>:correct-horse-battery",
      'line 1: Cannot use user name "<b>x</b>": expected 1 to 100 letters, digits, or . _ @ + -, ' +
      "starting with a letter or digit",
    ],
    [
      `${"a".repeat(101)}:correct-horse-battery`,
      `line 1: Cannot use user name "${
        "a".repeat(40)
      }…": expected 1 to 100 letters, digits, or . _ @ + -, starting with a letter or digit`,
    ],
    ["alice:short", 'line 1: Cannot use the token of "alice": expected a token of at least 8 characters'],
    ["alice:", 'line 1: Cannot use the token of "alice": expected a token of at least 8 characters'],
    [
      "alice:caf\u00e9-caf\u00e9-caf\u00e9",
      'line 1: Cannot use the token of "alice": expected a token of printable ASCII characters without ' +
      "spaces at its ends",
    ],
    [
      "alice:sha256:abc",
      HEX_ONLY,
    ],
    [
      `alice:sha256:${"g".repeat(64)}`,
      HEX_ONLY,
    ],
    // sha256sum's whole output pasted, and the hash of no token (a recipe run with $TOKEN unset).
    [`alice:sha256:${"a".repeat(64)}  -`, HEX_ONLY],
    [
      "alice:sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      'line 1: the hash of "alice" is the SHA-256 of no token at all',
    ],
    ["# nobody yet\n\n", "it names no users"],
  ];
  for (const [line, message] of cases) {
    assert.throws(
      () => parseUsersFile(line, "/etc/shiplog/users"),
      new SyntaxError(`Cannot use users file /etc/shiplog/users: ${message}`),
      line,
    );
  }
});

Deno.test("parseUsersFile() refuses a name twice (in any case) and a token two users share, naming both lines", () => {
  assert.throws(
    () =>
      parseUsersFile("# team\nalice:correct-horse-battery\nbob:bobs-own-token\nAlice:another-token-1", "u"),
    new SyntaxError(
      'Cannot use users file u: line 4: user "Alice" is already on line 2; give each user one line',
    ),
  );
  assert.throws(
    () => parseUsersFile(`alice:correct-horse-battery\n\nbob:sha256:${sha256("correct-horse-battery")}`, "u"),
    new SyntaxError(
      'Cannot use users file u: line 3: the token of "bob" is the token of "alice" (line 1); give each their own',
    ),
  );
});

Deno.test("userNameProblem() allows plain names and e-mail addresses, and shows control characters escaped", () => {
  for (const name of ["alice", "Bob_2", "carol.smith@example.com", "d+e-f", "x".repeat(100)]) {
    assert.equal(userNameProblem(name), undefined, name);
  }
  assert.equal(
    userNameProblem("eve\u001b[31m"),
    'Cannot use user name "eve\\u001b[31m": expected 1 to 100 letters, digits, or . _ @ + -, ' +
      "starting with a letter or digit",
  );
});
