import { chmodSync, closeSync, fchmodSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { GuardError } from '../errors.js';

/** The spool directory (`<stateDir>/spool`); resolved with the other per-user directories in config/paths.ts. */
export { spoolDir as defaultSpoolDir } from '../config/paths.js';

/**
 * Creates `dir` (and parents) and makes sure the leaf is a real directory, owned by us, mode 0700: the spool
 * holds transcript signing keys, so no other user may read it or swap it for a symlink.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new GuardError('config_invalid', `spool: ${dir} is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new GuardError('config_invalid', `spool: ${dir} belongs to another user (uid ${st.uid})`);
  }
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** Grant ids name spool entries; anything that could escape the directory is refused. */
export function checkGrantId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) {
    throw new GuardError('internal', `spool: grant id ${JSON.stringify(id.slice(0, 40))} is not a safe name`);
  }
  return id;
}

/**
 * Writes a 0600 file atomically (temp file + rename), so a reader never sees half of it. `durable` adds an
 * fsync before the rename (several ms on some disks): used for the signed envelope. The run-time files (key,
 * header) survive a killed process without it — the page cache outlives the process — and after a power loss
 * the run they belong to is gone anyway.
 */
export function writePrivateFileAtomic(path: string, data: string | Buffer, durable = false): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Opens a new 0600 file for appending; fails if it exists (O_EXCL), so nothing is ever overwritten. */
export function openPrivateAppend(path: string): number {
  const fd = openSync(path, 'ax', 0o600);
  fchmodSync(fd, 0o600);
  return fd;
}
