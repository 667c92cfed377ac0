#!/usr/bin/env node
// Approval store latency against the number of requests already stored (issue 9: opening one cost 0.7 ms empty and
// 24 ms at 10,000 pending, and `approvals list` sorted every matching request even with a limit). For 100, 10,000
// and 100,000 stored requests (40% pending, the rest closed, 2,000 requesters), the median of:
//   open  — ApprovalService.open for a new call (duplicate check, pending cap, insert, event, read back);
//   list  — listPage({ limit: 50 }) as an auditor sees it (every request, newest first) and the pending ones;
//   group — group-filtered listings where few match: what a member of the `dba` group may see and that member's
//           queue (listPage({ visibleTo }) and listPage({ forApprover }), limit 50), with 10 of the stored requests
//           in that group whatever their number (schema v4's per-group walks). `old group` is the statement the
//           visibility listing ran before v4 (approver_groups JSON read row by row), timed alone on the same data.
// On SQLite with this version's indexes, the same with the indexes before issue 9 (the baseline: schema v2), and on
// PostgreSQL. The figure is the ratio 100,000 / 100: flat is ≈ 1. Usage: npm run build && node bench/approvals.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dist } from './lib/core.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { report } from './lib/report.mjs';

const SIZES = (process.env.APPROVALS_BENCH_SIZES ?? '100,10000,100000').split(',').map(Number);
const OPENS = 60;
const LISTS = 40;
const OLD_LISTS = 12;
const { ApprovalService } = await dist('approvals/service.js');
const { APPROVALS_SCHEMA } = await dist('approvals/schema.js');
const { openSqliteDb, openPostgresDb } = await dist('store/db.js');
const { migrate } = await dist('store/migrate.js');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const NOW = Date.parse('2026-11-30T12:00:00Z');

const inv = (bucket) => {
  const argv = ['s3api', 'delete-bucket', '--bucket', bucket];
  return {
    argv, canonicalArgv: argv, kind: 'api', command: 's3api', subcommand: 'delete-bucket', service: 's3', operation: 'DeleteBucket',
    apiCalls: ['DeleteBucket'], params: { Bucket: bucket }, globals: {}, region: 'us-east-1',
    permissions: [{ action: 's3:DeleteBucket', resources: [`arn:aws:s3:::${bucket}`], derived: true }],
    actions: ['s3:DeleteBucket'], resources: [`arn:aws:s3:::${bucket}`], accessLevels: { 's3:DeleteBucket': 'Write' },
    risks: ['write', 'destructive'], files: [], notes: [],
  };
};
const decision = { rule: 'r', reason: 'destructive', source: 'p.yaml:1', approval: { groups: ['approvers'], count: 1 } };

const DBA = 10;
const dbaMember = { subject: 'frank', groups: ['dba'] };
/** The few requests of the dba group: DBA of them spread evenly over the history, alternately pending and used. */
const dbaAt = (n) => new Map(Array.from({ length: DBA }, (_, k) => [Math.floor(((k + 0.5) * n) / DBA), k % 2 ? 'used' : 'pending']));
const OLD_VISIBLE = {
  sqlite: `SELECT * FROM approval_requests WHERE (requester = ? OR EXISTS (SELECT 1 FROM json_each(approver_groups) g
    WHERE g.value IN (SELECT value FROM json_each(?)))) ORDER BY created_at DESC, id DESC LIMIT ?`,
  postgres: `SELECT * FROM approval_requests WHERE (requester = ? OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(approver_groups::jsonb) g(v)
    WHERE g.v IN (SELECT jsonb_array_elements_text(?::jsonb)))) ORDER BY created_at DESC, id DESC LIMIT ?`,
};

/** n stored requests written directly (multi-row INSERTs), as a broker would have accumulated them. */
async function fill(db, n) {
  const dba = dbaAt(n);
  const call = JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', 'x'], region: 'us-east-1', service: 's3', operation: 'DeleteBucket', actions: [], permissions: [], resources: [], risks: [], parameters: [] });
  const statuses = ['pending', 'pending', 'pending', 'pending', 'denied', 'used', 'withdrawn', 'used', 'denied', 'used'];
  for (let i = 0; i < n; i += 500) {
    const rows = [];
    const args = [];
    const groupRows = [];
    const groupArgs = [];
    for (let j = i; j < Math.min(n, i + 500); j++) {
      const status = dba.get(j) ?? statuses[j % 10];
      const group = dba.has(j) ? 'dba' : 'approvers';
      const created = NOW - (n - j) * 1000;
      rows.push('(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
      args.push(`apr_fill${j}`, status, `h${j}`, `user${j % 2000}`, null, 'prod', call, 'r', 'destructive', null, '', JSON.stringify([group]), 1, null, created,
        status === 'pending' ? NOW + 3_600_000 : created + 60_000);
      groupRows.push('(?,?,?,?)');
      groupArgs.push(`apr_fill${j}`, group, status, created);
    }
    await db.run(
      `INSERT INTO approval_requests (id, status, binding_hash, requester, requester_name, target, call, rule, rule_reason, rule_source, reason,
         approver_groups, required, requirements, created_at, expires_at) VALUES ${rows.join(',')}`,
      args,
    );
    // The per-group rows the service writes with each request (schema v4).
    await db.run(`INSERT INTO approval_groups (approval_id, group_name, status, created_at) VALUES ${groupRows.join(',')}`, groupArgs);
  }
}

async function measure(db, n) {
  await fill(db, n);
  // PostgreSQL's autovacuum gathers statistics on its own after a bulk change; a broker never runs ANALYZE on its
  // SQLite file, so SQLite plans without them (as it does in production: where the old indexes went wrong).
  if (db.dialect === 'postgres') await db.exec('ANALYZE');
  let clock = NOW;
  const svc = new ApprovalService(db, { now: () => clock, maxPendingPerRequester: 1_000_000 });
  const auditor = { subject: 'erin', groups: ['auditors'] };
  const open = [];
  for (let i = 0; i < OPENS; i++) {
    clock += 10;
    const t = performance.now();
    await svc.open({ requester: { subject: `user${i % 2000}`, groups: ['developers'] }, invocation: inv(`bench-${n}-${i}`), target: 'prod', decision, reason: '' });
    open.push(performance.now() - t);
  }
  const list = [];
  const pending = [];
  for (let i = 0; i < LISTS; i++) {
    let t = performance.now();
    const page = await svc.listPage({ visibleTo: auditor, limit: 50 });
    list.push(performance.now() - t);
    t = performance.now();
    await svc.listPage({ status: 'pending', limit: 50, ...(i % 2 && page.next ? { cursor: page.next } : {}) });
    pending.push(performance.now() - t);
  }
  const group = [];
  const queue = [];
  for (let i = 0; i < LISTS; i++) {
    let t = performance.now();
    const seen = await svc.listPage({ visibleTo: dbaMember, limit: 50 });
    group.push(performance.now() - t);
    t = performance.now();
    const mine = await svc.listPage({ forApprover: dbaMember, limit: 50 });
    queue.push(performance.now() - t);
    if (seen.approvals.length !== DBA || mine.approvals.length !== DBA / 2) throw new Error(`dba listing: ${seen.approvals.length} visible, ${mine.approvals.length} to decide`);
  }
  const oldGroup = [];
  for (let i = 0; i < OLD_LISTS; i++) {
    const t = performance.now();
    const rows = await db.all(OLD_VISIBLE[db.dialect], [dbaMember.subject, JSON.stringify(dbaMember.groups), 51]);
    oldGroup.push(performance.now() - t);
    if (rows.length !== DBA) throw new Error(`old dba listing: ${rows.length} rows`);
  }
  return {
    open: median(open.slice(10)), list: median(list.slice(5)), pending: median(pending.slice(5)),
    group: median(group.slice(5)), queue: median(queue.slice(5)), oldGroup: median(oldGroup.slice(2)),
  };
}

async function sqlite(n, versions) {
  const dir = mkdtempSync(join(tmpdir(), 'guard-approvals-bench-'));
  const db = openSqliteDb(join(dir, 'broker.db'));
  try {
    await migrate(db, 'approvals', APPROVALS_SCHEMA.slice(0, versions));
    // The baseline keeps the indexes before issue 9 but needs the per-group table (v4) the service writes to.
    if (versions < 4) await db.exec(APPROVALS_SCHEMA[3].sqlite);
    const r = await measure(db, n);
    return r;
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgres(pg, n) {
  const admin = await openPostgresDb({ url: pg.url, poolSize: 1 });
  await admin.exec(`CREATE DATABASE a${n}`);
  await admin.close();
  const db = await openPostgresDb({ url: pg.url.replace(/\/guard$/, `/a${n}`), poolSize: 4 });
  try {
    await migrate(db, 'approvals', APPROVALS_SCHEMA);
    return await measure(db, n);
  } finally {
    await db.close();
  }
}

const pg = await startPostgres();
const rows = [];
try {
  for (const n of SIZES) {
    const now = await sqlite(n, APPROVALS_SCHEMA.length);
    const before = await sqlite(n, 2);
    const onPg = await postgres(pg, n);
    rows.push({ n, now, before, onPg });
    const f = (x) => `${x.toFixed(2)} ms`;
    console.log(`${String(n).padStart(7)} requests | SQLite: open ${f(now.open)}, list ${f(now.list)}, pending ${f(now.pending)}, group ${f(now.group)}, queue ${f(now.queue)}, old group ${f(now.oldGroup)} | before issue 9: open ${f(before.open)}, list ${f(before.list)}, pending ${f(before.pending)} | PostgreSQL: open ${f(onPg.open)}, list ${f(onPg.list)}, pending ${f(onPg.pending)}, group ${f(onPg.group)}, queue ${f(onPg.queue)}, old group ${f(onPg.oldGroup)}`);
  }
} finally {
  await pg.stop();
}
const first = rows[0];
const last = rows[rows.length - 1];
const r = (k, which) => last[which][k] / first[which][k];
const growth = Math.max(r('open', 'now'), r('list', 'now'), r('pending', 'now'), r('group', 'now'), r('queue', 'now'));
console.log(`growth ${last.n.toLocaleString('en')} vs ${first.n} requests: SQLite open ${r('open', 'now').toFixed(2)}×, list ${r('list', 'now').toFixed(2)}×, pending ${r('pending', 'now').toFixed(2)}×, group ${r('group', 'now').toFixed(2)}×, queue ${r('queue', 'now').toFixed(2)}×, old group ${r('oldGroup', 'now').toFixed(2)}× | before: open ${r('open', 'before').toFixed(2)}×, list ${r('list', 'before').toFixed(2)}× | PostgreSQL: open ${r('open', 'onPg').toFixed(2)}×, list ${r('list', 'onPg').toFixed(2)}×, group ${r('group', 'onPg').toFixed(2)}×, queue ${r('queue', 'onPg').toFixed(2)}×, old group ${r('oldGroup', 'onPg').toFixed(2)}×`);
report({
  name: 'approvals',
  measures: `approval open, \`approvals list\` and group-filtered lists where ${DBA} match (limit 50) latency, ${first.n} vs ${last.n.toLocaleString('en')} stored requests`,
  figure: `SQLite open ${last.now.open.toFixed(2)} ms (${r('open', 'now').toFixed(2)}×), list ${last.now.list.toFixed(2)} ms (${r('list', 'now').toFixed(2)}×), group ${last.now.group.toFixed(2)} ms (${r('group', 'now').toFixed(2)}×), queue ${last.now.queue.toFixed(2)} ms (${r('queue', 'now').toFixed(2)}×); PostgreSQL open ${last.onPg.open.toFixed(2)} ms (${r('open', 'onPg').toFixed(2)}×), list ${last.onPg.list.toFixed(2)} ms (${r('list', 'onPg').toFixed(2)}×), group ${last.onPg.group.toFixed(2)} ms (${r('group', 'onPg').toFixed(2)}×)`,
  baseline: `indexes before issue 9 at ${last.n.toLocaleString('en')}: open ${last.before.open.toFixed(2)} ms (${r('open', 'before').toFixed(2)}×), list ${last.before.list.toFixed(2)} ms (${r('list', 'before').toFixed(2)}×); group list before v4 (JSON per row): SQLite ${last.now.oldGroup.toFixed(2)} ms (${r('oldGroup', 'now').toFixed(2)}×), PostgreSQL ${last.onPg.oldGroup.toFixed(2)} ms (${r('oldGroup', 'onPg').toFixed(2)}×)`,
  target: '≤ 2× growth from 100 to 100,000 (flat)',
  met: growth <= 2,
});
process.exitCode = growth <= 2 ? 0 : 1;
