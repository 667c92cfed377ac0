import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDir } from '../config/private-file.js';

/**
 * One refresh at a time per user. Identity providers rotate refresh tokens and treat a second use of an old one as
 * theft, revoking the whole grant (OAuth 2.0 Security BCP, RFC 9700 §4.14.2) — so two guard-aws processes
 * refreshing the same login at once (an agent running calls in parallel) would log the user out. The lock is an
 * exclusive-create file; one left behind by a crashed process is taken over after `staleMs`.
 */
export async function withRefreshLock<T>(dir: string, fn: () => Promise<T>, staleMs = 30_000, waitMs = 45_000): Promise<T> {
  await ensurePrivateDir(dir);
  const path = join(dir, 'refresh.lock');
  const started = Date.now();
  let acquired = false;
  while (!acquired) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      acquired = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = await stat(path).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > staleMs) {
        await rm(path, { force: true });
        continue;
      }
      // Never hang a command on someone else's lock: after waitMs, go ahead without it.
      if (Date.now() - started > waitMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    if (acquired) await rm(path, { force: true });
  }
}
