import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/runner/lookup-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'guard-aws-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the lookup lock (one process asks aws --version, the others wait)', () => {
  it('an empty or foreign-host lock older than a whole wait is broken at once, not waited out', () => {
    for (const [name, owner] of [
      ['empty', ''], // a crash between creating the lock and stamping it
      ['foreign', 'otherhost.1234.5678.9'], // another host's stamp on a shared cache
    ] as const) {
      const path = join(dir, `${name}.lock`);
      writeFileSync(path, owner);
      const old = new Date(Date.now() - 60_000);
      utimesSync(path, old, old);
      const started = Date.now();
      const got = acquireLock(path, 5_000, () => undefined);
      expect(typeof got, name).toBe('function');
      expect(Date.now() - started, name).toBeLessThan(2_000);
      (got as () => void)();
    }
  });

  it('a fresh lock whose owner cannot be judged is respected for a whole wait first', () => {
    const path = join(dir, 'fresh.lock');
    writeFileSync(path, '');
    const started = Date.now();
    const got = acquireLock(path, 300, () => undefined);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    if (typeof got === 'function') got();
  });
});
