import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalSummary } from '../../src/api/types.js';
import { APPROVALS_SCHEMA } from '../../src/approvals/schema.js';
import type { ApprovalService, ApprovalStatus, ListOptions } from '../../src/approvals/service.js';
import { openPostgresDb, openSqliteDb, type Db, type Sql } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import type { Caller } from '../../src/policy/types.js';
import { alice, approveDecision, bob, carol, codeOf, dave, deleteBucket, erin, newService } from './fixtures.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

// Schema v4: group-filtered listings (what a caller may see, an approver's queue) walk the per-group table
// approval_groups instead of reading every request's approver_groups JSON. These tests hold the rewrite to the
// authorization it replaced — the rules of state.canView / state.canDecide, checked here in plain JS over every
// request — on both databases, and try to reach a request of another group through every listing path.

/** Every page of a listing, `limit` at a time, following `next`. */
async function allPages(service: ApprovalService, opts: ListOptions, limit = 3): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await service.listPage({ ...opts, limit, ...(cursor ? { cursor } : {}) });
    ids.push(...page.approvals.map((a) => a.id));
    cursor = page.next;
    if (!cursor) return ids;
  }
  throw new Error('listing never ended');
}

const meets = (c: Caller, groups: readonly string[]) => c.groups.some((g) => groups.includes(g));
/** The rules the SQL must reproduce (state.canView without the auditor case, state.canDecide). */
const visible = (s: ApprovalSummary, c: Caller) => s.requester === c.subject || meets(c, s.approverGroups);
const decidable = (s: ApprovalSummary, c: Caller) =>
  s.status === 'pending' && s.requester !== c.subject && meets(c, s.approverGroups) && !s.approvals.some((a) => a.by === c.subject);

const frank: Caller = { subject: 'frank', groups: ['dba'] };
const gina: Caller = { subject: 'gina', groups: ['dba', 'approvers', 'dba'] };
const nobody: Caller = { subject: 'zed', groups: [] };

/** Group rows out of step with their request (status or membership): must always be none. */
async function outOfStep(db: Db): Promise<unknown[]> {
  const rows = await db.all<{ id: string; status: string; approver_groups: string }>('SELECT id, status, approver_groups FROM approval_requests');
  const groups = await db.all<{ approval_id: string; group_name: string; status: string }>('SELECT approval_id, group_name, status FROM approval_groups');
  const bad: unknown[] = [];
  for (const r of rows) {
    const mine = groups.filter((g) => g.approval_id === r.id);
    const want = [...new Set(JSON.parse(r.approver_groups) as string[])].sort();
    if (JSON.stringify(mine.map((g) => g.group_name).sort()) !== JSON.stringify(want) || mine.some((g) => g.status !== r.status)) bad.push({ r, mine });
  }
  for (const g of groups) if (!rows.some((r) => r.id === g.approval_id)) bad.push({ orphan: g });
  return bad;
}

describe.each(DIALECTS)('on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('a request of another group stays invisible and undecidable through every listing path', async () => {
    const { service, clock } = await newService({ maxPendingPerRequester: 100 }, await dbs.open());
    // Many requests of the approvers group around one of the dba group (before and after it in time).
    for (let i = 0; i < 12; i++) {
      if (i === 6) {
        await service.open({ requester: dave, invocation: deleteBucket('dba-only'), target: 'prod', decision: approveDecision(1, ['dba']), reason: '' });
      }
      await service.open({ requester: i % 2 ? alice : dave, invocation: deleteBucket(`b${i}`), target: 'prod', decision: approveDecision(), reason: '' });
      clock.advance(i % 3 ? 1 : 0);
    }
    const secret = (await service.list({ visibleTo: erin, limit: 1000 })).find((s) => s.argv.includes('dba-only'))!;
    const statuses: (ApprovalStatus | undefined)[] = [undefined, 'pending', 'approved', 'denied', 'used', 'withdrawn', 'expired'];
    const paths = (c: Caller): ListOptions[] =>
      statuses.flatMap((status) => [
        { visibleTo: c },
        { forApprover: c },
        { forApprover: c, visibleTo: c },
        { visibleTo: c, requester: 'dave' },
        { forApprover: c, requester: 'dave' },
      ].map((o) => ({ ...o, ...(status ? { status } : {}) })));
    for (const opts of paths(bob)) {
      for (const limit of [1, 3, 100]) expect(await allPages(service, opts, limit), JSON.stringify(opts)).not.toContain(secret.id);
    }
    for (const opts of paths(nobody)) expect(await allPages(service, opts)).toEqual([]);
    expect(await codeOf(() => service.approve(secret.id, bob))).toBe('not_approver');
    expect(await codeOf(() => service.deny(secret.id, carol))).toBe('not_approver');
    expect(service.canView((await service.get(secret.id))!, bob)).toBe(false);
    // Its own group sees it, alone among the others' requests, and may decide it; a member of both sees both.
    expect(await allPages(service, { visibleTo: frank })).toEqual([secret.id]);
    expect(await allPages(service, { forApprover: frank })).toEqual([secret.id]);
    expect(await allPages(service, { visibleTo: gina }, 4)).toHaveLength(13);
    // Callers in hundreds of groups: the walks are spread over several statements and merged, with the same result.
    const filler = Array.from({ length: 240 }, (_, i) => `team-${i}`);
    const many: Caller = { subject: 'ivy', groups: [...filler, 'dba'] };
    // dba first and approvers last: their requests come from different statements and interleave in time.
    const manyGina: Caller = { subject: 'gina', groups: ['dba', ...filler, 'approvers'] };
    expect(await allPages(service, { visibleTo: many })).toEqual([secret.id]);
    expect(await allPages(service, { forApprover: many, visibleTo: many })).toEqual([secret.id]);
    for (const opts of paths(manyGina)) {
      const plain = { ...opts, ...(opts.visibleTo ? { visibleTo: gina } : {}), ...(opts.forApprover ? { forApprover: gina } : {}) };
      expect(await allPages(service, opts, 5), JSON.stringify(opts)).toEqual(await allPages(service, plain, 5));
    }
    await service.deny(secret.id, frank, 'not today');
    expect(await allPages(service, { forApprover: frank })).toEqual([]);
    expect(await allPages(service, { visibleTo: frank, status: 'denied' })).toEqual([secret.id]);
    for (const opts of paths(bob)) expect(await allPages(service, opts), JSON.stringify(opts)).not.toContain(secret.id);
  });

  it('every listing returns exactly the requests the visibility and decision rules allow, in order, through every change', async () => {
    const env = await newService({ maxPendingPerRequester: 1000, pendingTtlMs: 20_000 }, await dbs.open());
    const { service, clock, db } = env;
    let seed = 7;
    // A fixed LCG (its high bits: the low ones cycle fast), so a failure replays exactly.
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), Math.floor(seed / 65536) % n);
    const people: Caller[] = [alice, bob, carol, dave, frank, gina, { subject: 'hal', groups: ['ops', 'sre'] }];
    const groupSets = [['approvers'], ['sre'], ['dba'], ['ops'], ['approvers', 'dba'], ['sre', 'ops']];
    const opened: { id: string; requester: Caller; bucket: string }[] = [];
    for (let i = 0; i < 45; i++) {
      const requester = people[rnd(people.length)]!;
      const groups = groupSets[rnd(groupSets.length)]!;
      const bucket = `r${i}`;
      const s = await service.open({ requester, invocation: deleteBucket(bucket), target: 'prod', decision: approveDecision(1 + rnd(2), groups), reason: '' });
      opened.push({ id: s.id, requester, bucket });
      clock.advance(rnd(3) * 1000); // ties in created_at too
      // Changes along the way: votes, denials, withdrawals, uses and a use given back.
      for (let k = 0; k < 2; k++) {
      const t = opened[rnd(opened.length)]!;
      const cur = (await service.get(t.id))!;
      const who = people.find((p) => decidable(cur, p));
      const action = rnd(6);
      if (action === 0 && who) await service.approve(t.id, who);
      if (action === 1 && who) await service.deny(t.id, who);
      if (action === 2 && cur.status === 'pending') await service.withdraw(t.id, t.requester);
      if (action >= 3 && cur.status === 'approved') {
        await service.consume(t.id, { requester: t.requester, invocation: deleteBucket(t.bucket), target: 'prod' });
        if (action === 4) await service.release(t.id, t.requester, 'sts refused');
      }
      }
    }
    expect(await outOfStep(db)).toEqual([]);
    const everything = await service.list({ visibleTo: erin, limit: 1000 });
    expect(everything).toHaveLength(45);
    expect([...new Set(everything.map((s) => s.status))].sort()).toEqual(['approved', 'denied', 'expired', 'pending', 'used', 'withdrawn']);
    const statuses: (ApprovalStatus | undefined)[] = [undefined, 'pending', 'approved', 'denied', 'used', 'withdrawn', 'expired'];
    let nonEmpty = 0;
    for (const c of [...people, nobody]) {
      for (const status of statuses) {
        const want = (f: (s: ApprovalSummary) => boolean) => everything.filter((s) => (!status || s.status === status) && f(s)).map((s) => s.id);
        const st = status ? { status } : {};
        const cases: [ListOptions, string[]][] = [
          [{ visibleTo: c, ...st }, want((s) => visible(s, c))],
          [{ forApprover: c, ...st }, want((s) => decidable(s, c))],
          [{ forApprover: c, visibleTo: c, ...st }, want((s) => decidable(s, c))],
          [{ visibleTo: c, requester: 'carol', ...st }, want((s) => s.requester === 'carol' && visible(s, c))],
          [{ forApprover: c, requester: 'dave', ...st }, want((s) => s.requester === 'dave' && decidable(s, c))],
        ];
        for (const [opts, ids] of cases) {
          if (ids.length) nonEmpty++;
          expect(await allPages(service, opts, 4), `${c.subject} ${JSON.stringify(opts)}`).toEqual(ids);
        }
      }
    }
    expect(nonEmpty).toBeGreaterThan(50);
    // Later the open ones expire: the listings follow the clock, the group rows need no sweep.
    clock.advance(3_600_000);
    for (const c of people) {
      expect(await allPages(service, { forApprover: c })).toEqual([]);
      expect(await allPages(service, { visibleTo: c, status: 'expired' })).toEqual(
        (await service.list({ visibleTo: erin, status: 'expired', limit: 1000 })).filter((s) => visible(s, c)).map((s) => s.id),
      );
    }
  });

  it('retention deletes a request\'s group rows with it, in the same transaction', async () => {
    const { service, clock, db } = await newService({ retainClosedMs: 60_000, pendingTtlMs: 30_000, maxPendingPerRequester: 100 }, await dbs.open());
    const denied = await service.open({ requester: alice, invocation: deleteBucket('x'), target: 'prod', decision: approveDecision(1, ['approvers', 'dba']), reason: '' });
    await service.deny(denied.id, bob);
    const open = await service.open({ requester: alice, invocation: deleteBucket('y'), target: 'prod', decision: approveDecision(1, ['dba']), reason: '' });
    clock.advance(120_000);
    const fresh = await service.open({ requester: alice, invocation: deleteBucket('z'), target: 'prod', decision: approveDecision(1, ['dba']), reason: '' });
    expect(await service.purgeClosed()).toBe(2); // the denied one and the one that expired unanswered
    const left = await db.all<{ approval_id: string }>('SELECT approval_id FROM approval_groups ORDER BY approval_id');
    expect(left.map((r) => r.approval_id)).toEqual([fresh.id]);
    expect(open.id).not.toBe(fresh.id);
    expect(await outOfStep(db)).toEqual([]);
  });

  it('the v4 migration backfills the group rows of existing requests', async () => {
    const db = dialect === 'sqlite' ? openSqliteDb(':memory:') : await openPostgresDb({ url: await dbs.server!.freshUrl(), poolSize: 2 });
    try {
      await migrate(db, 'approvals', APPROVALS_SCHEMA.slice(0, 3));
      const now = Date.parse('2026-11-25T12:00:00Z');
      const insert = (id: string, requester: string, status: string, groups: string[], created: number) =>
        db.run(
          `INSERT INTO approval_requests (id, status, binding_hash, requester, target, call, rule_reason, reason, approver_groups, required, created_at, expires_at)
           VALUES (?, ?, ?, ?, 'prod', '{}', 'r', '', ?, 1, ?, ?)`,
          [id, status, `h-${id}`, requester, JSON.stringify(groups), created, now + 600_000],
        );
      await insert('apr_old1', 'alice', 'pending', ['approvers', 'dba'], now - 3000);
      await insert('apr_old2', 'dave', 'denied', ['sre'], now - 2000);
      await insert('apr_old3', 'dave', 'pending', ['dba', 'dba'], now - 1000);
      await migrate(db, 'approvals', APPROVALS_SCHEMA);
      expect(await db.all('SELECT approval_id, group_name, status, created_at FROM approval_groups ORDER BY approval_id, group_name')).toEqual([
        { approval_id: 'apr_old1', group_name: 'approvers', status: 'pending', created_at: now - 3000 },
        { approval_id: 'apr_old1', group_name: 'dba', status: 'pending', created_at: now - 3000 },
        { approval_id: 'apr_old2', group_name: 'sre', status: 'denied', created_at: now - 2000 },
        { approval_id: 'apr_old3', group_name: 'dba', status: 'pending', created_at: now - 1000 },
      ]);
      const { service } = await newService({}, db);
      expect((await service.list({ forApprover: frank })).map((s) => s.id)).toEqual(['apr_old3', 'apr_old1']);
      expect((await service.list({ visibleTo: carol })).map((s) => s.id)).toEqual(['apr_old2', 'apr_old1']);
    } finally {
      await db.close();
    }
  });

  if (dialect === 'postgres') {
    it('PostgreSQL plans the group walks on approval_groups\' indexes, never a scan of all requests (EXPLAIN)', async () => {
      const db = await dbs.open();
      const now = Date.parse('2026-11-25T12:00:00Z');
      // 20,000 requests of the approvers group, 5 of the dba group.
      await db.exec(`INSERT INTO approval_requests (id, status, binding_hash, requester, target, call, rule_reason, reason, approver_groups, required, created_at, expires_at)
        SELECT 'apr_f' || i, CASE WHEN i % 2 = 0 THEN 'pending' ELSE 'used' END, 'h' || i, 'user' || (i % 500), 'prod', '{}', 'r', '',
               CASE WHEN i % 4000 = 0 THEN '["dba"]' ELSE '["approvers"]' END, 1, ${now} - 20000000 + i * 1000, ${now} + 3600000
          FROM generate_series(1, 20000) AS s(i);
        INSERT INTO approval_groups (approval_id, group_name, status, created_at)
          SELECT id, CASE WHEN approver_groups = '["dba"]' THEN 'dba' ELSE 'approvers' END, status, created_at FROM approval_requests;
        ANALYZE`);
      const seen: { sql: string; params: readonly unknown[] }[] = [];
      const { service } = await newService({}, recording(db, seen)); // its clock starts at `now`
      expect((await service.listPage({ visibleTo: frank, limit: 50 })).approvals).toHaveLength(5);
      expect((await service.listPage({ forApprover: frank, limit: 50 })).approvals).toHaveLength(5);
      expect((await service.listPage({ visibleTo: frank, status: 'used', limit: 50 })).approvals).toHaveLength(0);
      expect((await service.listPage({ forApprover: bob, limit: 50 })).approvals).toHaveLength(50);
      const lists = seen.filter((s) => /FROM approval_groups g/.test(s.sql));
      expect(lists).toHaveLength(4);
      for (const { sql, params } of lists) {
        const plan = (await db.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
        expect(plan, plan).toMatch(/Index (Only )?Scan (Backward )?using approval_groups_(recent|status) on approval_groups/);
        expect(plan, plan).not.toMatch(/Seq Scan on approval_requests/);
        expect(plan, plan).not.toMatch(/Seq Scan on approval_groups/);
      }
    });
  }
});

/** The database, recording the SQL of every read the service runs through it. */
function recording(db: Db, seen: { sql: string; params: readonly unknown[] }[]): Db {
  const wrap = (q: Sql): Sql => ({
    ...q,
    dialect: q.dialect,
    all: (sql, params) => (seen.push({ sql, params: params ?? [] }), q.all(sql, params)),
    get: (sql, params) => q.get(sql, params),
    run: (sql, params) => q.run(sql, params),
    exec: (sql) => q.exec(sql),
    lock: (k) => q.lock(k),
  });
  return { ...db, ...wrap(db), transaction: (fn) => db.transaction((tx) => fn(wrap(tx))), close: () => db.close() };
}
