import assert from "node:assert/strict";
import { isDeploymentId } from "./deployment_id.ts";

Deno.test("isDeploymentId() accepts what crypto.randomUUID() makes", () => {
  for (let i = 0; i < 100; i++) assert.equal(isDeploymentId(crypto.randomUUID()), true);
});

Deno.test("isDeploymentId() rejects every other spelling and hostile path", () => {
  const id = "0b6f5b8e-3c1d-4e7a-9f2b-1a2b3c4d5e6f";
  for (
    const bad of [
      "",
      id.toUpperCase(),
      `{${id}}`,
      `${id}.json`,
      `${id}\n`,
      ` ${id}`,
      `${id}/../x`,
      "..",
      "%2e%2e",
      "..%2Fetc%2Fpasswd",
      "..\\..\\etc",
      `${id}\0`,
      id.replaceAll("-", ""),
      "a".repeat(10_000),
    ]
  ) {
    assert.equal(isDeploymentId(bad), false, JSON.stringify(bad));
  }
});
