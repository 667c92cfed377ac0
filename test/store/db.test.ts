import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { openPostgresDb, sslModeOf, toDollar } from '../../src/store/db.js';
import { DIALECTS, startPostgres, testDatabases } from '../helpers/postgres.js';

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

  it('runs transactions started in the same tick one after another, each whole', async () => {
    // On SQLite one connection serves the process: three transactions begun together (an approval, the webhook
    // outbox's claim, a retention sweep) must queue, not fail with "cannot start a transaction within a transaction".
    const db = await dbs.open();
    await db.exec('CREATE TABLE c (k TEXT PRIMARY KEY, v BIGINT NOT NULL)');
    await db.run('INSERT INTO c (k, v) VALUES (?, ?)', ['n', 0]);
    const bump = () =>
      db.transaction(async (tx) => {
        const row = await tx.get<{ v: number }>('SELECT v FROM c WHERE k = ?', ['n']);
        await new Promise((r) => setTimeout(r, 5));
        await tx.run('UPDATE c SET v = ? WHERE k = ?', [Number(row!.v) + 1, 'n']);
      });
    const reads = Promise.all([db.get<{ v: number }>('SELECT v FROM c'), db.get<{ v: number }>('SELECT v FROM c')]);
    await Promise.all([bump(), bump(), bump(), bump()]);
    await reads;
    // PostgreSQL runs them on separate pool connections; without a row lock they may overlap (read committed), so
    // the exact count is asserted on SQLite only, where the port serialises them.
    const v = Number((await db.get<{ v: number }>('SELECT v FROM c'))!.v);
    if (dialect === 'sqlite') expect(v).toBe(4);
    else expect(v).toBeGreaterThanOrEqual(1);
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

// TLS to the database with libpq's sslmode meanings, against a real server with a certificate for `localhost` only.
describe('PostgreSQL over TLS', () => {
  let pg: Awaited<ReturnType<typeof startPostgres>>;
  beforeAll(async () => {
    pg = await startPostgres({ tls: true });
  });
  afterAll(() => pg?.stop());
  const at = (host: string) => `postgres://guard@${host}:${pg.port}/guard`;
  const outcome = async (o: Parameters<typeof openPostgresDb>[0]) => {
    const db = await openPostgresDb({ connectTimeoutMs: 2000, poolSize: 1, ...o });
    try {
      const r = await db.get<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return r!.ssl ? 'tls' : 'plain';
    } catch (e) {
      return isGuardError(e) ? e.code : `error: ${(e as Error).message}`;
    } finally {
      await db.close();
    }
  };

  it('verify-full checks the chain and the host name; verify-ca the chain only; require encrypts without checking', async () => {
    expect(await outcome({ url: at('localhost'), sslmode: 'verify-full', caFile: pg.caFile })).toBe('tls');
    // The certificate names localhost, not 127.0.0.1.
    expect(await outcome({ url: at('127.0.0.1'), sslmode: 'verify-full', caFile: pg.caFile })).toBe('store_unavailable');
    expect(await outcome({ url: at('127.0.0.1'), sslmode: 'verify-ca', caFile: pg.caFile })).toBe('tls');
    // Not signed by a CA the broker trusts (the system's): refused.
    expect(await outcome({ url: at('localhost'), sslmode: 'verify-full' })).toBe('store_unavailable');
    expect(await outcome({ url: at('127.0.0.1'), sslmode: 'require' })).toBe('tls');
    // sslmode in the URL, as libpq reads it.
    expect(await outcome({ url: `${at('localhost')}?sslmode=verify-full`, caFile: pg.caFile })).toBe('tls');
    expect(await outcome({ url: at('127.0.0.1'), sslmode: 'disable' })).toBe('plain');
  });

  it('the default: verify-full off loopback, none on loopback or a unix socket; the option wins over the URL', () => {
    expect(sslModeOf(new URL('postgres://guard@db.internal/guard'))).toBe('verify-full');
    expect(sslModeOf(new URL('postgres://guard@127.0.0.1/guard'))).toBe('disable');
    expect(sslModeOf(new URL('postgres://guard@localhost/guard'))).toBe('disable');
    expect(sslModeOf(new URL('postgres:///guard?host=/run/postgresql'))).toBe('disable');
    expect(sslModeOf(new URL('postgres://guard@db.internal/guard?sslmode=require'))).toBe('require');
    expect(sslModeOf(new URL('postgres://guard@db.internal/guard?sslmode=require'), 'verify-ca')).toBe('verify-ca');
  });
});
