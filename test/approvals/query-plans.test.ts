import { describe, expect, it } from 'vitest';
import { ApprovalService } from '../../src/approvals/service.js';
import { APPROVALS_SCHEMA } from '../../src/approvals/schema.js';
import { openSqliteDb, type Db, type Sql } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { alice, approveDecision, bob, deleteBucket, erin } from './fixtures.js';

// Issue 9: opening a request cost time proportional to the pending ones (the duplicate check and the per-requester
// count went through the status/expiry index) and a listing sorted every matching request before its limit. The
// plans SQLite picks for the very statements the service runs, recorded as it runs them, must use the indexes made
// for them and never sort a whole table. (bench/approvals.mjs measures the latencies.) With the indexes before
// issue 9 (schema v2) these assertions fail.
function recording(db: Db, seen: { sql: string; params: readonly unknown[] }[]): Db {
  const wrap = (q: Sql): Sql => ({
    ...q,
    dialect: q.dialect,
    all: (sql, params) => (seen.push({ sql, params: params ?? [] }), q.all(sql, params)),
    get: (sql, params) => (seen.push({ sql, params: params ?? [] }), q.get(sql, params)),
    run: (sql, params) => q.run(sql, params),
    exec: (sql) => q.exec(sql),
    lock: (k) => q.lock(k),
  });
  return { ...db, ...wrap(db), transaction: (fn) => db.transaction((tx) => fn(wrap(tx))), close: () => db.close() };
}

async function plans(versions: number) {
  const db = openSqliteDb(':memory:');
  await migrate(db, 'approvals', APPROVALS_SCHEMA.slice(0, versions));
  // The per-group table (v4) the service writes to, without the v3 indexes when comparing with those before them.
  if (versions < 4) await db.exec((APPROVALS_SCHEMA[3] as { sqlite: string }).sqlite);
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  const svc = new ApprovalService(recording(db, seen), { now: () => Date.parse('2026-11-30T12:00:00Z') });
  const a = await svc.open({ requester: alice, invocation: deleteBucket('a'), target: 'prod', decision: approveDecision(), reason: '' });
  await svc.approve(a.id, bob);
  const page = await svc.listPage({ visibleTo: erin, limit: 1 });
  await svc.listPage({ status: 'pending', limit: 1 });
  await svc.listPage({ requester: 'alice', limit: 1, ...(page.next ? { cursor: page.next } : {}) });
  const out = new Map<string, string>();
  for (const { sql, params } of seen) {
    if (!/FROM approval_requests/.test(sql)) continue;
    const rows = await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params);
    out.set(sql.replace(/\s+/g, ' ').trim(), rows.map((r) => r.detail).join('; '));
  }
  await db.close();
  return [...out.entries()];
}

const find = (p: [string, string][], re: RegExp) => p.filter(([sql]) => re.test(sql)).map(([, plan]) => plan);

describe('approval queries use their indexes (SQLite query plans)', () => {
  it('the duplicate check and the pending count read only this requester\'s open requests', async () => {
    const p = await plans(APPROVALS_SCHEMA.length);
    expect(find(p, /binding_hash = \?/)).toEqual([expect.stringContaining('USING INDEX approval_requests_dup')]);
    expect(find(p, /COUNT\(\*\)/)).toEqual([expect.stringContaining('USING COVERING INDEX approval_requests_pending')]);
  });

  it('listings walk an index newest first and stop at the limit: no full scan, no sort of the matches', async () => {
    const p = await plans(APPROVALS_SCHEMA.length);
    const lists = find(p, /ORDER BY created_at DESC, id DESC LIMIT/);
    expect(lists.length).toBe(3);
    for (const plan of lists) {
      expect(plan).not.toMatch(/TEMP B-TREE/);
      expect(plan).toMatch(/USING (COVERING )?INDEX approval_requests_(recent|status|requester)/);
    }
  });

  it('(the indexes before issue 9 fail these checks)', async () => {
    const p = await plans(2);
    expect(find(p, /binding_hash = \?/)[0]).not.toContain('approval_requests_dup');
    expect(find(p, /ORDER BY created_at DESC, id DESC LIMIT/).some((plan) => /TEMP B-TREE/.test(plan))).toBe(true);
  });
});
