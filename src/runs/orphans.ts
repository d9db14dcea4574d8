/**
 * @module
 * Stops deploy processes left behind by a shiplog that died without cleaning up (kill -9, a crash, a power
 * cut on a long-lived container). Each deploy command runs in its own process group with
 * `SHIPLOG_DEPLOYMENT_ID` in its environment; that variable, read from `/proc`, identifies the processes of an
 * interrupted deployment without trusting a recorded pid that may since have been reused. Linux only; where
 * there is no `/proc`, nothing is found.
 */

// Deno asks for every permission to read /proc, more than shiplog runs with, so a shell (which `--allow-run`
// already lets us start) reads it: one grep over every process's environment for any of the ids (a grep per
// process and id took a second with a thousand processes, and runs at the end of every deployment), then the
// process group of each match (field 5 of /proc/<pid>/stat; the command name before it may contain spaces,
// hence the match on the last ")").
// shiplog's own process group ($PPID's) is never one of them, even when shiplog itself carries an id.
// With "holding", only processes that hold open for writing (or reading and writing) a pipe that shiplog reads
// count: a deployment's output, still open. (Access mode from fdinfo's octal flags: 0 read, 1 write, 2 both.
// Another pipe both share, one the runtime leaks into every child, is open for writing in both, so it never
// matches.) Links are read line by line, never split and globbed: pipe:[12] is not a pattern. One `ls` per process,
// not a `readlink` per descriptor: shiplog may hold thousands of sockets.
const FIND_GROUPS = `
group() { sed -n 's/.*) . [0-9]* \\([0-9]*\\) .*/\\1/p' "$1" 2>/dev/null; }
pipes() {
  ls -l "$1/fd" 2>/dev/null | sed -n 's/.* \\([0-9]*\\) -> \\(pipe:\\[[0-9]*\\]\\)$/\\1 \\2/p' | while read -r fd link; do
    flags=$(sed -n 's/^flags:[[:space:]]*//p' "$1/fdinfo/$fd" 2>/dev/null)
    [ -n "$flags" ] && case $2$((0$flags & 3)) in read0|write1|write2) echo "$link";; esac
  done
}
own=$(group /proc/$PPID/stat)
mode=$1; shift
[ "$mode" = holding ] && ours=" $(pipes /proc/$PPID read | tr '\\n' ' ') "
holds() { pipes "$1" write | { while read -r link; do case $ours in *" $link "*) exit 0;; esac; done; exit 1; }; }
count=$#
for id in "$@"; do set -- "$@" -e "SHIPLOG_DEPLOYMENT_ID=$id"; done
shift "$count"
grep -lzxF "$@" /proc/[0-9]*/environ 2>/dev/null | while IFS= read -r environ; do
  [ "$mode" = holding ] && ! holds "\${environ%/environ}" && continue
  found=$(group "\${environ%/environ}/stat")
  [ "$found" != "$own" ] && echo "$found"
done
`;

/**
 * The process groups whose processes carry one of `ids` as `SHIPLOG_DEPLOYMENT_ID`; with `holdingOutput`, only
 * those of processes that still hold a deployment's output open (a daemon that let go of it is not found).
 */
export async function findOrphanGroups(
  ids: readonly string[],
  { holdingOutput = false } = {},
): Promise<number[]> {
  if (ids.length === 0) return [];
  const own = new Set([Deno.pid]);
  try {
    const { stdout } = await new Deno.Command("sh", {
      args: ["-c", FIND_GROUPS, "sh", holdingOutput ? "holding" : "any", ...ids],
      stderr: "null",
    })
      .output();
    const groups = new TextDecoder().decode(stdout).split("\n").map(Number);
    return [...new Set(groups)].filter((group) => Number.isInteger(group) && group > 1 && !own.has(group));
  } catch {
    return [];
  }
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
