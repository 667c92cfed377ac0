import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

/**
 * Files only the user may read, written so a crash never leaves half a file: the directory is 0700, the file is
 * created 0600 under a temporary name, flushed, then renamed over the old one (rename is atomic within a directory
 * on POSIX). This is how the AWS CLI keeps its SSO token cache under ~/.aws/sso/cache.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await stat(dir);
  // A directory that already existed may be group/world readable; tighten it (ours alone).
  if (process.platform !== 'win32' && (s.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

export async function writePrivateFile(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  await ensurePrivateDir(dir);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never follow or reuse an existing file at the temporary name.
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readOptionalFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
