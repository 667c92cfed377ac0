import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { stampToken, tokenState } from '../io/liveness.js';

/**
 * Small key → value caches for lookups that cost a process start (which aws a pyenv shim runs, which release an
 * aws is), under guard-aws's cache directory (config/paths.ts `cacheDir`). Files are private and replaced
 * atomically; a cache that cannot be read or written only costs time.
 */

export class LookupCache {
  private readonly file: string;
  private entries: Record<string, string>;

  constructor(
    private readonly dir: string,
    name: string,
    private readonly maxEntries: number,
  ) {
    this.file = join(dir, name);
    try {
      this.entries = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
    } catch {
      this.entries = {};
    }
  }

  get(key: string): string | undefined {
    return Object.hasOwn(this.entries, key) ? this.entries[key] : undefined;
  }

  /** Stores `value` as the newest entry, dropping the oldest beyond `maxEntries`. */
  set(key: string, value: string): void {
    const kept = Object.entries(this.entries).filter(([k]) => k !== key).slice(-(this.maxEntries - 1));
    this.entries = Object.fromEntries([...kept, [key, value]]);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.entries), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      /* only costs time */
    }
  }
}

function olderThan(path: string, ms: number): boolean {
  try {
    return statSync(path).mtimeMs < Date.now() - ms;
  } catch {
    return false;
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms);

/**
 * Takes `path` as a lock (O_EXCL, holding the owner's process stamp). While another live process holds it, waits
 * and returns the answer `poll` finds once that process has cached it. A lock whose owner died is broken; one held
 * longer than `maxWaitMs` is ignored. Returns a release function, the polled answer, or undefined when no
 * lock can be used (cache directory not writable): then this process just asks itself.
 */
export function acquireLock(path: string, maxWaitMs: number, poll: () => string | undefined): (() => void) | string | undefined {
  const until = Date.now() + maxWaitMs;
  try {
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, stampToken());
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          unlinkSync(path);
        } catch {
          /* already broken by someone who thought us dead */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
    }
    const answer = poll();
    if (answer) return answer;
    let owner = '';
    try {
      owner = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile: try again
    }
    // Broken too: a lock whose owner is dead, and one whose owner cannot be judged (empty: a crash between
    // creating and stamping it; another host's stamp on a shared cache) once it is older than a whole wait, or
    // every cold call after it would wait the full time.
    if ((owner && tokenState(owner) === 'dead') || ((!owner || tokenState(owner) === 'unknown') && olderThan(path, maxWaitMs))) {
      try {
        unlinkSync(path);
      } catch {
        /* another waiter broke it */
      }
      continue;
    }
    if (Date.now() > until) return undefined;
    sleepSync(50);
  }
}
