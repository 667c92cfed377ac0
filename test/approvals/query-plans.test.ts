import { describe, expect, it } from 'vitest';
import { ApprovalService } from '../../src/approvals/service.js';
import { APPROVALS_SCHEMA } from '../../src/approvals/schema.js';
import { openSqliteDb, type Db, type Sql } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { alice, approveDecision, bob, carol, dave, deleteBucket, erin } from './fixtures.js';

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

// Schema v4: the group-filtered listings — what a caller may see (their own requests and those of their approver
// groups) and an approver's queue — read each request's approver_groups JSON before, which no index serves: the
// planner walked every request newest first until the page was full, all 100,000 of them when few were in the
// caller's groups. Now each of the caller's groups is a walk of approval_groups' (group_name[, status], created_at,
// approval_id) index that stops at the limit; the caller's own requests a walk of (requester, created_at, id).
// (bench/approvals.mjs measures it: the `group` figures.)
const OLD_VISIBLE = `SELECT * FROM approval_requests WHERE (requester = ? OR EXISTS (SELECT 1 FROM json_each(approver_groups) g
  WHERE g.value IN (SELECT value FROM json_each(?)))) ORDER BY created_at DESC, id DESC LIMIT ?`;
const OLD_QUEUE = `SELECT * FROM approval_requests WHERE status = 'pending' AND expires_at > ? AND requester <> ? AND EXISTS (SELECT 1
  FROM json_each(approver_groups) g WHERE g.value IN (SELECT value FROM json_each(?))) AND NOT EXISTS (SELECT 1 FROM approval_events e
  WHERE e.approval_id = approval_requests.id AND e.kind = 'approved' AND e.actor = ?) ORDER BY created_at DESC, id DESC LIMIT ?`;

/** A group listing's plan reads approval_groups' indexes and never walks the whole approval_requests table. */
function walksGroups(plan: string): boolean {
  return /SEARCH g USING COVERING INDEX approval_groups_(recent|status) \(group_name=\?/.test(plan) && !/\bSCAN (approval_requests|r)\b/.test(plan);
}

async function groupPlans() {
  const db = openSqliteDb(':memory:');
  await migrate(db, 'approvals', APPROVALS_SCHEMA);
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  const now = Date.parse('2026-11-30T12:00:00Z');
  const svc = new ApprovalService(recording(db, seen), { now: () => now });
  await svc.open({ requester: alice, invocation: deleteBucket('a'), target: 'prod', decision: approveDecision(), reason: '' });
  await svc.open({ requester: dave, invocation: deleteBucket('d'), target: 'prod', decision: approveDecision(1, ['sre']), reason: '' });
  seen.length = 0;
  const page = await svc.listPage({ visibleTo: erin, limit: 1 });
  await svc.listPage({ visibleTo: dave, limit: 1 });
  await svc.listPage({ visibleTo: carol, status: 'pending', limit: 1 });
  await svc.listPage({ visibleTo: carol, status: 'used', limit: 1 });
  await svc.listPage({ forApprover: bob, limit: 1 });
  await svc.listPage({ forApprover: carol, limit: 1, ...(page.next ? { cursor: page.next } : {}) });
  const explain = async (sql: string, params: readonly unknown[]) =>
    (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join('; ');
  const lists = await Promise.all(seen.filter((s) => /FROM approval_groups g/.test(s.sql)).map((s) => explain(s.sql, s.params)));
  const old = {
    visible: await explain(OLD_VISIBLE, ['carol', JSON.stringify(carol.groups), 2]),
    queue: await explain(OLD_QUEUE, [now, 'bob', JSON.stringify(bob.groups), 'bob', 2]),
  };
  await db.close();
  return { lists, old };
}

describe('group-filtered listings walk the per-group index (SQLite query plans)', () => {
  it('what a caller may see and an approver\'s queue read only their groups\' requests, status included in the walk', async () => {
    const { lists } = await groupPlans();
    expect(lists).toHaveLength(5);
    for (const plan of lists) expect(walksGroups(plan), plan).toBe(true);
    // With a status (the queue: pending) the walk is of (group_name, status, created_at, approval_id).
    expect(lists.slice(1).every((plan) => plan.includes('approval_groups_status (group_name=? AND status=?'))).toBe(true);
    // The cursor continues inside the index rather than from its start.
    expect(lists[4]).toMatch(/approval_groups_status \(group_name=\? AND status=\? AND \(created_at,approval_id\)<\(\?,\?\)\)/);
  });

  it('(the queries before v4 fail these checks: they walk every request)', async () => {
    const { old } = await groupPlans();
    for (const plan of [old.visible, old.queue]) expect(walksGroups(plan), plan).toBe(false);
    // Every request newest first / every pending request of every group, each checked against the JSON.
    expect(old.visible).toMatch(/^SCAN approval_requests USING INDEX approval_requests_recent/);
    expect(old.queue).toMatch(/^SEARCH approval_requests USING INDEX approval_requests_status \(status=\?\)/);
    expect(old.queue).toMatch(/json_each/);
  });
});
