/**
 * @module
 * `deno run --allow-all bench/shutdown.ts [N] [shiplog flags…]`: how long SIGTERM takes with a long queue. Spawns
 * shiplog with one deployment that runs for the length of the measure (`sleep 600`, `--max-running 1`), sends N
 * starts (default 10,000) over HTTP 16 at a time, sends SIGTERM, and prints the time to exit and the statuses
 * of the records left on disk (none should be `queued` or `running`). Add `--max-queued N` for more than 1,000.
 */

import { spawnShiplog, terminate } from "../src/testing/test_program.ts";

const count = Number(Deno.args[0] ?? 10_000);
const dir = await Deno.makeTempDir({ prefix: "shiplog_shutdown_" });
try {
  await using shiplog = await spawnShiplog(dir, [
    "--command",
    "sleep 600",
    "--max-running",
    "1",
    ...Deno.args.slice(1),
  ]);
  const answers = new Map<number, number>();
  let sent = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (sent < count) {
      sent++;
      const response = await fetch(new URL("start", shiplog.url), {
        method: "POST",
        headers: { accept: "application/json" },
      });
      await response.body?.cancel();
      answers.set(response.status, (answers.get(response.status) ?? 0) + 1);
    }
  }));
  console.log(
    `${count} starts in ${(performance.now() - started).toFixed(0)} ms:`,
    Object.fromEntries(answers),
  );
  const { code, elapsedMs } = await terminate(shiplog, 30_000);
  console.log(`SIGTERM -> exit ${code} in ${elapsedMs.toFixed(0)} ms`);
  const statuses: Record<string, number> = {};
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".json")) continue;
    const { status } = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`));
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  console.log("records on disk:", statuses);
  if (shiplog.stderr()) console.log("stderr:", shiplog.stderr().trim());
} finally {
  await Deno.remove(dir, { recursive: true });
}
