/**
 * @module
 * One shiplog per data directory. A second one would take the first one's running deployments for those of a
 * crashed run: record them interrupted and kill their processes, before it even found its port taken. The
 * lock is an exclusive `flock` on `.shiplog.lock` in the directory, which the kernel releases when the process
 * ends, however it ends: a crash leaves nothing to clean up. The file holds the owner's pid, for the message.
 */

import { join } from "node:path";
import { openRegularFile, type Refused, type RegularFile } from "./regular_file.ts";
import { settlesWithin } from "./settles_within.ts";

/** The lock file's name in the data directory. */
export const LOCK_FILE = ".shiplog.lock";

/** Held until released, or until the process ends. */
export interface DirectoryLock {
  release(): void;
}

/** Options of {@linkcode lockDirectory}. */
export interface LockOptions {
  /**
   * How long to wait for another shiplog to let go (a restart whose old process is still shutting down, which
   * takes up to 4.5 s). Default 5000 ms.
   */
  waitMs?: number;
  /** Told once when the lock is not free at once, with the owner's pid. */
  onWait?: (owner: string) => void;
}

/**
 * Takes the directory's lock, waiting up to `waitMs` for its owner to exit; throws if it does not. On a
 * directory that takes no writes (a read-only mount) an existing lock file is locked as it is, and without one
 * there is nothing to lock: a warning, and no lock.
 */
export async function lockDirectory(dir: string, options: LockOptions = {}): Promise<DirectoryLock> {
  const path = join(dir, LOCK_FILE);
  const file = await openLockFile(path);
  if (!file) {
    console.error(
      `shiplog: warning: cannot create ${path} (read-only): another shiplog could use ${dir} too`,
    );
    return { release() {} };
  }
  let gaveUp = false;
  // flock blocks (on a thread of the runtime's pool): there is no try-lock, so the wait is raced with a timer.
  // If it is taken after we gave up, it is let go at once.
  const locked = file.lock(true).then(() => {
    if (gaveUp) file.close();
  });
  if (!await settlesWithin(locked, 50)) {
    options.onWait?.(await owner(path));
    if (!await settlesWithin(locked, options.waitMs ?? 5000)) {
      gaveUp = true;
      throw new Error(`Cannot use ${dir}: another shiplog (pid ${await owner(path)}) is using it`);
    }
  }
  try {
    await locked;
  } catch (error) {
    file.close();
    throw error;
  }
  // The pid is for the message of whoever finds the lock taken: nice to have, so a full disk does not stop us
  // (and a file opened read-only refuses it).
  await file.truncate(0).then(() => file.write(new TextEncoder().encode(`${Deno.pid}\n`))).catch(() => {});
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      file.close();
    },
  };
}

/**
 * Opens the lock file, refusing anything but a regular file: through a symlink, the pid written into it would
 * overwrite whatever file it points to, and a FIFO would block whoever reads the owner's pid. Read-only when
 * the directory takes no writes; `undefined` when there is no lock file and none can be made.
 */
// deno-lint-ignore require-await -- async, so that an error of the open rejects, as the lock's own do
async function openLockFile(path: string): Promise<Deno.FsFile | undefined> {
  let opened: RegularFile | Refused | undefined;
  try {
    opened = openRegularFile(path, { read: true, write: true, create: true });
  } catch (error) {
    // EROFS has no class of its own in Deno; PermissionDenied is a directory we may not write to.
    const readOnly = error instanceof Deno.errors.PermissionDenied || /os error 30\b/.test(String(error));
    if (!readOnly) throw error;
    opened = openRegularFile(path, { read: true });
  }
  if (opened && "refused" in opened) {
    throw new Error(`Cannot use ${path}: it is ${opened.refused}; remove it`);
  }
  return opened?.file;
}

async function owner(path: string): Promise<string> {
  const pid = (await Deno.readTextFile(path).catch(() => "")).trim();
  return /^\d+$/.test(pid) ? pid : "unknown";
}
