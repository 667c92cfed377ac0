#!/usr/bin/env node
// Approval store latency against the number of requests already stored (issue 9: opening one cost 0.7 ms empty and
// 24 ms at 10,000 pending, and `approvals list` sorted every matching request even with a limit). For 100, 10,000
// and 100,000 stored requests (40% pending, the rest closed, 2,000 requesters), the median of:
//   open  — ApprovalService.open for a new call (duplicate check, pending cap, insert, event, read back);
//   list  — listPage({ limit: 50 }) as an auditor sees it (every request, newest first) and the pending ones.
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

/** n stored requests written directly (multi-row INSERTs), as a broker would have accumulated them. */
async function fill(db, n) {
  const call = JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', 'x'], region: 'us-east-1', service: 's3', operation: 'DeleteBucket', actions: [], permissions: [], resources: [], risks: [], parameters: [] });
  const statuses = ['pending', 'pending', 'pending', 'pending', 'denied', 'used', 'withdrawn', 'used', 'denied', 'used'];
  for (let i = 0; i < n; i += 500) {
    const rows = [];
    const args = [];
    for (let j = i; j < Math.min(n, i + 500); j++) {
      const status = statuses[j % 10];
      const created = NOW - (n - j) * 1000;
      rows.push('(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
      args.push(`apr_fill${j}`, status, `h${j}`, `user${j % 2000}`, null, 'prod', call, 'r', 'destructive', null, '', '["approvers"]', 1, null, created,
        status === 'pending' ? NOW + 3_600_000 : created + 60_000);
    }
    await db.run(
      `INSERT INTO approval_requests (id, status, binding_hash, requester, requester_name, target, call, rule, rule_reason, rule_source, reason,
         approver_groups, required, requirements, created_at, expires_at) VALUES ${rows.join(',')}`,
      args,
    );
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
  return { open: median(open.slice(10)), list: median(list.slice(5)), pending: median(pending.slice(5)) };
}

async function sqlite(n, versions) {
  const dir = mkdtempSync(join(tmpdir(), 'guard-approvals-bench-'));
  const db = openSqliteDb(join(dir, 'broker.db'));
  try {
    await migrate(db, 'approvals', APPROVALS_SCHEMA.slice(0, versions));
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
    console.log(`${String(n).padStart(7)} requests | SQLite: open ${f(now.open)}, list ${f(now.list)}, pending ${f(now.pending)} | before issue 9: open ${f(before.open)}, list ${f(before.list)}, pending ${f(before.pending)} | PostgreSQL: open ${f(onPg.open)}, list ${f(onPg.list)}, pending ${f(onPg.pending)}`);
  }
} finally {
  await pg.stop();
}
const first = rows[0];
const last = rows[rows.length - 1];
const r = (k, which) => last[which][k] / first[which][k];
const growth = Math.max(r('open', 'now'), r('list', 'now'), r('pending', 'now'));
console.log(`growth ${last.n.toLocaleString('en')} vs ${first.n} requests: SQLite open ${r('open', 'now').toFixed(2)}×, list ${r('list', 'now').toFixed(2)}×, pending ${r('pending', 'now').toFixed(2)}× | before: open ${r('open', 'before').toFixed(2)}×, list ${r('list', 'before').toFixed(2)}× | PostgreSQL: open ${r('open', 'onPg').toFixed(2)}×, list ${r('list', 'onPg').toFixed(2)}×`);
report({
  name: 'approvals',
  measures: `approval open and \`approvals list\` (limit 50) latency, ${first.n} vs ${last.n.toLocaleString('en')} stored requests`,
  figure: `SQLite open ${last.now.open.toFixed(2)} ms (${r('open', 'now').toFixed(2)}×), list ${last.now.list.toFixed(2)} ms (${r('list', 'now').toFixed(2)}×); PostgreSQL open ${last.onPg.open.toFixed(2)} ms (${r('open', 'onPg').toFixed(2)}×), list ${last.onPg.list.toFixed(2)} ms (${r('list', 'onPg').toFixed(2)}×)`,
  baseline: `indexes before issue 9 at ${last.n.toLocaleString('en')}: open ${last.before.open.toFixed(2)} ms (${r('open', 'before').toFixed(2)}×), list ${last.before.list.toFixed(2)} ms (${r('list', 'before').toFixed(2)}×)`,
  target: '≤ 2× growth from 100 to 100,000 (flat)',
  met: growth <= 2,
});
process.exitCode = growth <= 2 ? 0 : 1;
