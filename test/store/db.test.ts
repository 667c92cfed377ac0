import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { openPostgresDb, toDollar } from '../../src/store/db.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

describe('toDollar', () => {
  it('numbers placeholders outside quotes only', () => {
    expect(toDollar(`SELECT '?' AS q, "a?" FROM t WHERE a = ? AND b IN (?, ?)`)).toBe(`SELECT '?' AS q, "a?" FROM t WHERE a = $1 AND b IN ($2, $3)`);
  });
});

describe.each(DIALECTS)('SQL port on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    const db = await dbs.open();
    await db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)');
    await db.transaction(async (tx) => {
      await tx.run('INSERT INTO kv (k, v) VALUES (?, ?)', ['a', 1]);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO kv (k, v) VALUES (?, ?)', ['b', 2]);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await db.all('SELECT k, v FROM kv ORDER BY k')).toEqual([{ k: 'a', v: 1 }]);
    // BIGINT comes back as a number on both.
    expect(typeof (await db.get<{ v: number }>('SELECT v FROM kv'))!.v).toBe('number');
    expect(await db.run('UPDATE kv SET v = v + 1 WHERE k = ?', ['a'])).toBe(1);
  });

  it('keeps statements outside a transaction out of it while it awaits', async () => {
    const db = await dbs.open();
    await db.exec('CREATE TABLE n (x INTEGER)');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await t.run('INSERT INTO n (x) VALUES (1)');
      await gate;
      throw new Error('rolled back');
    });
    const outside = db.run('INSERT INTO n (x) VALUES (2)');
    release();
    await expect(tx).rejects.toThrow('rolled back');
    await outside;
    expect(await db.all('SELECT x FROM n')).toEqual([{ x: 2 }]);
  });
});

describe('PostgreSQL unreachable', () => {
  it('fails closed with store_unavailable, naming no password', async () => {
    const db = await openPostgresDb({ url: 'postgres://guard:s3cret-pw@127.0.0.1:1/guard', connectTimeoutMs: 500 });
    try {
      const e = await db.get('SELECT 1').catch((x: unknown) => x);
      expect(isGuardError(e) && e.code).toBe('store_unavailable');
      expect((e as Error).message).not.toContain('s3cret-pw');
      expect((e as Error).message).toContain('127.0.0.1:1');
    } finally {
      await db.close();
    }
  });
});
