import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/migrate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { GrantRecord } from '../../src/store/types.js';

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

describe('SQLite store', () => {
  it('round-trips grants (with the transcript key) and refusals, filters and orders newest first', async () => {
    const path = join(tmp(), 'nested', 'broker.db');
    const s = openSqliteStore({ path });
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
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    await s.close();
    await s.close(); // idempotent
    // Reopening keeps the data and does not re-run migrations.
    const again = openSqliteStore({ path });
    expect((await again.listGrants()).length).toBe(2);
    expect(again.db.prepare("SELECT version FROM schema_version WHERE component = 'broker'").get()).toEqual({ version: 1 });
    await again.close();
  });

  it('a grant id is recorded once only', async () => {
    const s = openSqliteStore({ path: ':memory:' });
    await s.recordGrant(grant('g1'));
    await expect(s.recordGrant(grant('g1'))).rejects.toThrow(/UNIQUE/);
    await s.close();
  });

  it('other components version their own tables in the same file', () => {
    const db = new BetterSqlite3(':memory:');
    expect(migrate(db, 'approvals', ['CREATE TABLE a (x INTEGER) STRICT'])).toBe(1);
    expect(migrate(db, 'approvals', ['CREATE TABLE a (x INTEGER) STRICT', 'ALTER TABLE a ADD COLUMN y TEXT'])).toBe(2);
    db.prepare('INSERT INTO a (x, y) VALUES (1, ?)').run('z');
    // A failing step leaves neither its changes nor a version bump behind.
    expect(() => migrate(db, 'approvals', ['', '', 'CREATE TABLE b (x); SELECT * FROM missing'])).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'b'").get()).toBeUndefined();
    expect(db.prepare("SELECT version FROM schema_version WHERE component = 'approvals'").get()).toEqual({ version: 2 });
    db.close();
  });

  it('refuses a file written by a newer schema', () => {
    const db = new BetterSqlite3(':memory:');
    migrate(db, 'broker', ['SELECT 1', 'SELECT 1']);
    expect(() => migrate(db, 'broker', ['SELECT 1'])).toThrow(/schema of broker is version 2, this guard-aws knows up to 1/);
    db.close();
  });

  it('an unopenable path → config_invalid naming it', () => {
    const d = tmp();
    expect(() => openSqliteStore({ path: d })).toThrow(new RegExp(`storage: cannot open SQLite database ${d}`));
  });
});
