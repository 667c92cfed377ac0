import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { migrate } from '../../src/store/migrate.js';
import { migrateAll, notReady, openSqliteStore, openStore, SCHEMA_VERSIONS, storageFrom } from '../../src/broker/storage.js';
import { createBrokerStore } from '../../src/store/sqlite.js';
import type { GrantRecord } from '../../src/store/types.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'guard-store-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const grant = (id: string, over: Partial<GrantRecord> = {}): GrantRecord => ({
  id,
  createdAt: '2026-11-25T10:00:00.000Z',
  subject: 'alice',
  groups: ['dev'],
  name: 'Alice',
  argv: ['s3', 'ls'],
  target: 'dev',
  account: '111122223333',
  region: 'eu-west-1',
  decision: 'allow',
  rule: 'r1',
  reason: 'ok',
  actions: ['s3:ListAllMyBuckets'],
  sessionPolicy: '{"Version":"2012-10-17","Statement":[]}',
  roleSessionName: 'alice.g1',
  sourceIdentity: 'alice',
  expiresAt: '2026-11-25T10:15:00.000Z',
  transcriptKey: 'k'.repeat(43),
  ...over,
});

// The same tests on both stores (SQLite file, real PostgreSQL server).
describe.each(DIALECTS)('broker store on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('round-trips grants (with the transcript key) and refusals, filters and orders newest first', async () => {
    const s = createBrokerStore(await dbs.open());
    await s.recordGrant(grant('g1'));
    await s.recordGrant(grant('g2', { subject: 'bob', createdAt: '2026-11-25T11:00:00.000Z', approvalId: 'apr_1' }));
    await s.recordRefusal({ id: 'r1', createdAt: '2026-11-25T10:30:00.000Z', subject: 'bob', groups: [], argv: ['iam', 'x'], target: 'dev', code: 'denied', decision: 'deny', rule: 'no-iam', reason: 'no' });
    expect(await s.getGrant('g1')).toEqual({ ...grant('g1'), approvalId: null, requestId: null });
    expect((await s.getGrant('g2'))?.approvalId).toBe('apr_1');
    expect(await s.getGrant('nope')).toBeUndefined();
    expect((await s.listGrants()).map((g) => g.id)).toEqual(['g2', 'g1']);
    expect((await s.listGrants({ subject: 'alice' })).map((g) => g.id)).toEqual(['g1']);
    expect((await s.listGrants({ since: '2026-11-25T10:30:00.000Z' })).map((g) => g.id)).toEqual(['g2']);
    expect((await s.listGrants({ limit: 1 })).map((g) => g.id)).toEqual(['g2']);
    expect(await s.listRefusals({ subject: 'bob' })).toMatchObject([{ id: 'r1', code: 'denied', rule: 'no-iam', groups: [] }]);
    await s.close();
    await s.close(); // idempotent
  });

  it('a grant id is recorded once only', async () => {
    const s = createBrokerStore(await dbs.open());
    await s.recordGrant(grant('g1'));
    await expect(s.recordGrant(grant('g1'))).rejects.toThrow(/UNIQUE|duplicate key/);
  });

  it('components version their own tables; a failing step leaves neither its changes nor a version bump', async () => {
    const db = await dbs.open();
    const strict = dialect === 'sqlite' ? ' STRICT' : '';
    expect(await migrate(db, 'extra', [`CREATE TABLE a (x INTEGER)${strict}`])).toBe(1);
    expect(await migrate(db, 'extra', [`CREATE TABLE a (x INTEGER)${strict}`, 'ALTER TABLE a ADD COLUMN y TEXT'])).toBe(2);
    await db.run('INSERT INTO a (x, y) VALUES (1, ?)', ['z']);
    await expect(migrate(db, 'extra', ['', '', 'CREATE TABLE b (x INTEGER); SELECT * FROM missing'])).rejects.toThrow();
    await expect(db.get('SELECT * FROM b')).rejects.toThrow();
    expect(await db.get("SELECT version FROM schema_version WHERE component = 'extra'")).toEqual({ version: 2 });
    // Migrating again is a no-op: every component stays at this code's version, and the store is ready.
    await migrateAll(db);
    expect(await notReady(db)).toBeUndefined();
  });

  it('refuses a database written by a newer schema (config_invalid, exit 78), and is then not ready', async () => {
    const db = await dbs.open();
    await db.run("UPDATE schema_version SET version = version + 1 WHERE component = 'approvals'");
    const e = await migrateAll(db).catch((x: unknown) => x);
    expect(isGuardError(e) && e.code).toBe('config_invalid');
    expect((e as Error).message).toMatch(new RegExp(`schema of approvals is version ${SCHEMA_VERSIONS.approvals! + 1}, this guard-aws knows up to ${SCHEMA_VERSIONS.approvals}`));
    expect(await notReady(db)).toMatch(/^schema: approvals is at/);
  });
});

describe('PostgreSQL store', () => {
  const dbs = testDatabases('postgres');
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('several brokers starting at once against an empty database: every migration applied exactly once', async () => {
    const url = await dbs.server!.freshUrl();
    // Eight brokers open the same empty database at the same moment (each with its own pool).
    const stores = await Promise.all(Array.from({ length: 8 }, () => openStore({ postgres: { url, poolSize: 2 } })));
    try {
      const versions = await stores[0]!.db.all<{ component: string; version: number }>('SELECT component, version FROM schema_version ORDER BY component');
      expect(Object.fromEntries(versions.map((v) => [v.component, v.version]))).toEqual(SCHEMA_VERSIONS);
      for (const s of stores) expect(await notReady(s.db)).toBeUndefined();
      await stores[3]!.recordGrant(grant('g1'));
      expect((await stores[6]!.getGrant('g1'))?.id).toBe('g1');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('the URL comes from GUARD_AWS_STORE_URL before the config file, and must be a postgres:// URL', () => {
    expect(storageFrom({ postgres: { url: 'postgres://file/db' } }, { GUARD_AWS_STORE_URL: 'postgres://env/db' })).toEqual({ postgres: { url: 'postgres://env/db' } });
    expect(storageFrom({ postgres: { url: 'postgres://file/db' } }, {})).toEqual({ postgres: { url: 'postgres://file/db' } });
    expect(() => storageFrom({ postgres: {} }, {})).toThrow(/set GUARD_AWS_STORE_URL/);
    expect(() => storageFrom({ postgres: {} }, { GUARD_AWS_STORE_URL: 'mysql://x' })).toThrow(/GUARD_AWS_STORE_URL: must be a postgres:\/\/ URL/);
    expect(storageFrom({ sqlite: '/x.db' }, { GUARD_AWS_STORE_URL: 'postgres://env/db' })).toEqual({ sqlite: '/x.db' });
  });

  it('a server that is down: opening fails closed with store_unavailable, the password never in the message', async () => {
    const e = await openStore({ postgres: { url: `postgres://guard:pw-s3cret@127.0.0.1:${dbs.server!.port + 1}/guard`, connectTimeoutMs: 500 } }).catch((x: unknown) => x);
    expect(isGuardError(e) && e.code).toBe('store_unavailable');
    expect((e as Error).message).not.toContain('pw-s3cret');
  });

  it('audit_log refuses UPDATE, DELETE and TRUNCATE', async () => {
    const db = await dbs.open();
    await db.run(`INSERT INTO audit_log (seq, id, kind, at, body, prev_hash, hash, sig) VALUES (1, 'a', 'unreported', 'x', '{}', 'p', 'h', 's')`);
    await expect(db.run("UPDATE audit_log SET body = '{}' WHERE seq = 1")).rejects.toThrow(/append-only/);
    await expect(db.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    await expect(db.exec('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
  });
});

describe('SQLite store', () => {
  it('opens in WAL mode, creates its directory, keeps its data across reopening without re-running migrations', async () => {
    const path = join(tmp(), 'nested', 'broker.db');
    const s = await openSqliteStore({ path });
    await s.recordGrant(grant('g1'));
    expect(s.db.raw!.pragma('journal_mode', { simple: true })).toBe('wal');
    await s.close();
    const again = await openSqliteStore({ path });
    expect((await again.listGrants()).length).toBe(1);
    expect(await again.db.get("SELECT version FROM schema_version WHERE component = 'broker'")).toEqual({ version: 1 });
    await again.close();
  });

  it('an unopenable path → config_invalid naming it', async () => {
    const d = tmp();
    await expect(openSqliteStore({ path: d })).rejects.toThrow(new RegExp(`storage: cannot open SQLite database ${d}`));
  });
});
