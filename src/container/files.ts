/**
 * Every file and directory tsrun creates on the host goes through here, so that none of them can
 * be redirected by a name someone else planted first (tsrun runs as root; the directory of a
 * --pid-file or a --log file may be writable by other users):
 *
 *  - files are never opened for writing by a name that may already exist: a temp file is created
 *    with O_CREAT|O_EXCL|O_NOFOLLOW (a planted file or symlink, dangling or not, makes the create
 *    fail with "file exists" instead of being followed or truncated), written, fsync'd and renamed
 *    over the final name (rename replaces a planted symlink itself, never its target);
 *  - directories are made with mkdir(2), which never follows a symlink at the last component;
 *    directories that must be private are checked by lstat + an O_NOFOLLOW fd: owner and mode.
 *
 * Errors read like runc's (Go's): "open /run/x/.pid: file exists".
 */
import { strerror } from '../bundle/load';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from './errors';

const C = fs.constants;
/** Node does not export O_CLOEXEC (libuv adds it to every open anyway); its Linux value. */
const O_CLOEXEC = (C as Record<string, number>).O_CLOEXEC ?? 0o2000000;
const CREATE_EXCL = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | O_CLOEXEC;

/** "<op> <path>: <Go's errno text>", keeping the errno code on the error. */
function fileError(op: string, file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  const err = new RuntimeError(`${op} ${file}: ${strerror(e)}`) as RuntimeError & { code?: string };
  err.code = code;
  return err;
}

function checkName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new RuntimeError(`invalid file name ${JSON.stringify(name)}`);
  }
}

async function writeAll(fh: fs.promises.FileHandle, data: string | Buffer): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

export interface AtomicFileOptions {
  /** Permission bits of the new file (the umask applies, as with open(2)). */
  mode: number;
  /**
   * The temp file's name in the same directory. Default `.<name>`, runc's name for pid files:
   * predictable on purpose, so a leftover or planted one is refused ("file exists"), never reused.
   */
  tempName?: string;
  /** fsync before the rename (default true): a reader never sees an empty file after a crash. */
  sync?: boolean;
}

/**
 * Creates `<dir>/<name>` with `data`, atomically: readers see the old file or the complete new one.
 * Nothing existing is ever opened or followed: the temp file is created exclusively (a planted
 * temp name makes this fail with "open <tmp>: file exists"), and only what we created is removed
 * when something fails. On libuv's thread pool: a daemon writes state files for many containers
 * at once, and its event loop must not wait for the file system.
 */
export async function createFileAtomically(dir: string, name: string, data: string | Buffer, opts: AtomicFileOptions): Promise<void> {
  checkName(name);
  const tmpName = opts.tempName ?? `.${name}`;
  checkName(tmpName);
  const tmp = path.join(dir, tmpName);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, CREATE_EXCL, opts.mode);
  } catch (e) {
    throw fileError('open', tmp, e);
  }
  let done = false;
  try {
    try {
      await writeAll(fh, data);
      if (opts.sync !== false) await fh.sync();
    } catch (e) {
      throw fileError('write', tmp, e);
    } finally {
      await fh.close();
    }
    try {
      await fs.promises.rename(tmp, path.join(dir, name));
    } catch (e) {
      throw fileError('rename', tmp, e);
    }
    done = true;
  } finally {
    // Ours: O_EXCL created it. unlink never follows a symlink, whatever replaced it since.
    if (!done) await fs.promises.rm(tmp, { force: true });
  }
}

/**
 * Creates `file` exclusively (O_EXCL|O_NOFOLLOW) and writes `data`: for a file that must not
 * replace anything (`spec`'s config.json). EEXIST keeps its code for the caller's own wording.
 */
export function createFileExclusive(file: string, data: string | Buffer, mode: number): void {
  let fd: number;
  try {
    fd = fs.openSync(file, CREATE_EXCL, mode);
  } catch (e) {
    throw fileError('open', file, e);
  }
  let done = false;
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
    done = true;
  } catch (e) {
    throw fileError('write', file, e);
  } finally {
    fs.closeSync(fd);
    if (!done) fs.rmSync(file, { force: true });
  }
}

/**
 * Opens a log file for appending (created 0644 if missing). The last component is not followed
 * when it is a symlink someone else could have planted: a symlink is followed only when its
 * directory is writable by its owner alone and that owner is root or us (so `--log /dev/stderr`
 * works, a link planted in /tmp or a shared directory does not).
 */
export function openAppendFile(file: string, mode = 0o644): number {
  const flags = C.O_WRONLY | C.O_APPEND | C.O_CREAT | O_CLOEXEC;
  try {
    return fs.openSync(file, flags | C.O_NOFOLLOW, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOOP') throw fileError('open', file, e);
  }
  const parent = fs.statSync(path.dirname(path.resolve(file)));
  const trusted = (parent.uid === 0 || parent.uid === process.geteuid!()) && (parent.mode & 0o022) === 0;
  if (!trusted) throw new RuntimeError(`open ${file}: is a symlink in a directory others can write; refusing to follow it`);
  try {
    return fs.openSync(file, flags, mode);
  } catch (e) {
    throw fileError('open', file, e);
  }
}

/** mkdir(2) of one directory (never follows a symlink; EEXIST keeps its code on the error). */
export function makeDir(dir: string, mode: number): void {
  try {
    fs.mkdirSync(dir, { mode });
  } catch (e) {
    throw fileError('mkdir', dir, e);
  }
}

export interface PrivateDirOptions {
  /** What the directory is, for the errors ("--root", "state directory"). */
  what: string;
  /** Create it (and missing parents, 0700) when it does not exist. */
  create: boolean;
  /** Drop group/other read and search bits (they only leak names): chmod 0700 through the fd. */
  tighten: boolean;
}

/**
 * A directory only we may write: not a symlink (lstat, and the fd that is checked is opened with
 * O_NOFOLLOW and must be the same inode), owned by the user tsrun runs as (uid 0 when root), and
 * not writable by group or others. Returns false when it does not exist and `create` is false.
 */
export function ensurePrivateDir(dir: string, opts: PrivateDirOptions): boolean {
  const abs = path.resolve(dir);
  const refuse = (why: string) => new RuntimeError(`${opts.what} ${abs}: ${why}; refusing to use it`);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError('lstat', abs, e);
    if (!opts.create) return false;
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
      fs.mkdirSync(abs, { mode: 0o700 });
    } catch (err) {
      // Another tsrun made it in the meantime: checked below like any existing one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('mkdir', abs, err);
    }
    st = fs.lstatSync(abs);
  }
  if (st.isSymbolicLink()) throw refuse('is a symlink');
  if (!st.isDirectory()) throw refuse('not a directory');
  let fd: number;
  try {
    fd = fs.openSync(abs, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW | O_CLOEXEC);
  } catch (e) {
    throw fileError('open', abs, e);
  }
  try {
    const fst = fs.fstatSync(fd);
    if (fst.dev !== st.dev || fst.ino !== st.ino) throw refuse('replaced while it was being checked');
    const uid = process.geteuid!();
    if (fst.uid !== uid) throw refuse(`owned by uid ${fst.uid}, not by uid ${uid} (the user tsrun runs as)`);
    if ((fst.mode & 0o022) !== 0) throw refuse(`writable by group or others (mode ${(fst.mode & 0o7777).toString(8).padStart(4, '0')})`);
    if (opts.tighten && (fst.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * Writes a pid file atomically: decimal, no newline (containerd reads it as it appears). Its
 * directory may be writable by others: the temp file `.<name>` is created exclusively, as runc
 * does, so a planted `.<name>` (file or symlink) fails the command with "file exists" instead of
 * having root write through it.
 */
export function writePidFile(file: string, pid: number): Promise<void> {
  const abs = path.resolve(file);
  return createFileAtomically(path.dirname(abs), path.basename(abs), String(pid), { mode: 0o644 });
}
