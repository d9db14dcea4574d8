/**
 * @module
 * Stops deploy processes left behind by a shiplog that died without cleaning up (kill -9, a crash, a power
 * cut on a long-lived container). Each deploy command runs in its own process group with
 * `SHIPLOG_DEPLOYMENT_ID` in its environment; that variable, read from `/proc`, identifies the processes of an
 * interrupted deployment without trusting a recorded pid that may since have been reused. Linux only; where
 * there is no `/proc`, nothing is found.
 */

/** The process groups whose processes carry one of `ids` as `SHIPLOG_DEPLOYMENT_ID`. */
export async function findOrphanGroups(ids: readonly string[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const wanted = new Set(ids.map((id) => `SHIPLOG_DEPLOYMENT_ID=${id}`));
  const groups = new Set<number>();
  let entries;
  try {
    entries = await Array.fromAsync(Deno.readDir("/proc"));
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const environ = await Deno.readTextFile(`/proc/${entry.name}/environ`);
      if (!environ.split("\0").some((variable) => wanted.has(variable))) continue;
      // Field 5 of /proc/<pid>/stat is the process group; the command name before it may contain spaces.
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (group > 1) groups.add(group);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return [...groups];
}

/** Sends SIGKILL to the processes of `ids`' deployments; returns how many process groups were signalled. */
export async function killOrphans(ids: readonly string[]): Promise<number> {
  let killed = 0;
  for (const group of await findOrphanGroups(ids)) {
    try {
      Deno.kill(-group, "SIGKILL");
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}
