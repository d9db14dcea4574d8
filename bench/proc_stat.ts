/**
 * @module
 * CPU times read from `/proc`, for the benchmark and its experiments: the fields of a `stat` line, and the
 * clock ticks they are counted in.
 */

/** Clock ticks per second, the unit of CPU times in `/proc` (`getconf CLK_TCK`; 100 if it cannot say). */
export function readClockTicks(): number {
  try {
    const { stdout } = new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).outputSync();
    const ticks = Number(new TextDecoder().decode(stdout).trim());
    return ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** The CPU time (ms) a `/proc/<pid>/stat` line gives: user + system, plus its reaped children's if asked. */
export function statCpuMs(stat: string, clockTicks: number, withChildren = false): number {
  // After the command name, which may hold spaces: fields[0] is field 3 (state), so utime, stime, cutime and
  // cstime (fields 14 to 17) are fields[11] to fields[14].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const own = Number(fields[11]) + Number(fields[12]);
  const children = withChildren ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + children) * 1000 / clockTicks;
}
