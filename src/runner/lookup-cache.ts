import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
