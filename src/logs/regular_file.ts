/**
 * @module
 * Opens a file of the data directory only if it is a regular file, never through a symlink: through a link, a
 * read would serve whatever file it points to (`/etc/passwd`) and a write would append to it; opening a FIFO
 * blocks until somebody opens its other end, and a device never ends. `Deno.open` has no `O_NOFOLLOW` (`node:fs`
 * passes the flag on, but its descriptor cannot become the `Deno.FsFile` that the store and the tail read), so
 * the path is lstat'ed before the open and again after it, against the open file's fstat: a link swapped in
 * between is caught by its device and inode, and the file closed before a byte is read or written. A file that
 * is missing is created with `O_EXCL`, which never follows a link: nothing is created where one points.
 */

/** A regular file, open, and its info (from the open file). */
export interface RegularFile {
  file: Deno.FsFile;
  info: Deno.FileInfo;
}

/** Why nothing was opened: what is there instead, in words ("a symlink, not a regular file"). */
export interface Refused {
  refused: string;
}

/** How often an open starts over when the file was created or deleted by somebody else meanwhile. */
const ATTEMPTS = 3;

/**
 * Opens `path` with `options` if it is a regular file; returns why not if something else is there, and
 * `undefined` if nothing is (and `options` create nothing). Synchronous, like the stat beside every use of it:
 * a local open is microseconds, and what could block (a FIFO) is refused before it is opened. Only a FIFO
 * swapped in between the lstat and the open, by somebody who may write to the data directory, could still
 * block it: `Deno.open` has no `O_NONBLOCK`. Other errors (its mode, a read-only directory) are thrown.
 */
export function openRegularFile(path: string, options: Deno.OpenOptions): RegularFile | Refused | undefined {
  const creates = options.create === true || options.createNew === true;
  for (let attempt = 1;; attempt++) {
    const before = lstatOrUndefined(path);
    if (before && !before.isFile) return { refused: describe(before) };
    if (!before && !creates) return undefined;
    let file: Deno.FsFile;
    try {
      // What exists is opened as it is (created by nobody); what does not is created with O_EXCL.
      file = Deno.openSync(path, { ...options, create: false, createNew: before ? options.createNew : true });
    } catch (error) {
      // Deleted, or created by somebody else, since the lstat: look again.
      const raced = before
        ? error instanceof Deno.errors.NotFound
        : error instanceof Deno.errors.AlreadyExists;
      if (raced && attempt < ATTEMPTS) continue;
      throw error;
    }
    const info = file.statSync();
    const now = lstatOrUndefined(path);
    if (info.isFile && now?.isFile && now.ino === info.ino && now.dev === info.dev) return { file, info };
    file.close();
    return {
      refused: now && !now.isFile ? describe(now) : "not a regular file (it was replaced while opened)",
    };
  }
}

/** The info of `path` itself (a link is not followed), or `undefined` when nothing is there. */
export function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function describe(info: Deno.FileInfo): string {
  const kind = info.isSymlink
    ? "a symlink"
    : info.isFifo
    ? "a FIFO"
    : info.isDirectory
    ? "a directory"
    : info.isSocket
    ? "a socket"
    : info.isBlockDevice || info.isCharDevice
    ? "a device"
    : "something";
  return `${kind}, not a regular file`;
}
