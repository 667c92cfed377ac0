#!/usr/bin/env node
// The shared store against the embedded one (issue 9): the broker on PostgreSQL against the same broker on SQLite,
// in the same run — grants per second through the whole broker (HTTP, token, parse, decide, STS on moto_server,
// the grant recorded in the store) with 50 concurrent callers, and audit appends per second (the transcript path:
// AuditLog.appendBatched with 50 uploads per event-loop turn, and single appends one after the other). Ratios are
// PostgreSQL / SQLite. PostgreSQL is a local server from Debian's package with durability on (bench/lib/postgres.mjs).
//
// Hook for the multi-broker figure: `grantsPerSecond(urls, token)` spreads callers over several broker URLs, so
// one vs three brokers on one database is `startBenchBroker({ store })` three times and one call with three URLs.
// Usage: npm run build && node bench/store.mjs
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dist } from './lib/core.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { report } from './lib/report.mjs';
import { startBenchBroker } from './lib/stack.mjs';

const N = Number(process.env.STORE_BENCH_N ?? 600);
const CONCURRENCY = 50;
const ROUNDS = 3;
const hardStop = setTimeout(() => {
  console.error('store bench: hard time limit reached');
  process.exit(2);
}, 300_000);
hardStop.unref();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Grants per second with CONCURRENCY callers spread over `urls` (keep-alive, one connection per caller). */
export async function grantsPerSecond(urls, token, n = N) {
  const body = JSON.stringify({ argv: ['sts', 'get-caller-identity'], transcriptKey: Buffer.alloc(32, 1).toString('base64url') });
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const targets = urls.map((u) => new URL(`${u}/v1/grants`));
  const grant = (url) =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`broker answered ${res.statusCode}: ${Buffer.concat(chunks)}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (next < n) {
        next++;
        await grant(targets[w % targets.length]);
      }
    }),
  );
  agent.destroy();
  return n / ((performance.now() - start) / 1000);
}

async function auditRates(db) {
  const { AuditLog } = await dist('audit/store.js');
  const { generateBrokerKey } = await dist('audit/broker-key.js');
  const key = generateBrokerKey('RS256');
  const log = new AuditLog(db, key);
  let g = 0;
  const input = () => ({ kind: 'transcript', grantId: `grt_${g++}`, subject: 'bench@example.com', body: { envelope: { exitCode: 0, chunks: ['x'.repeat(300)] }, uploadedBy: 'bench@example.com', callerVerified: true } });
  const batched = async (n) => {
    const t = performance.now();
    for (let i = 0; i < n; i += CONCURRENCY) await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n - i) }, () => log.appendBatched(input())));
    return n / ((performance.now() - t) / 1000);
  };
  const single = async (n) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await log.append(input());
    return n / ((performance.now() - t) / 1000);
  };
  return { batched, single, log, key };
}

async function main() {
  const { openSqliteDb, openPostgresDb } = await dist('store/db.js');
  const { migrateAll } = await dist('broker/storage.js');
  const { verifyChainAsync } = await dist('audit/chain.js');
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'guard-store-bench-'));
  const sqliteBroker = await startBenchBroker({ name: 'store-sqlite', cachingVerify: true });
  const pgBroker = await startBenchBroker({ name: 'store-pg', cachingVerify: true, store: { postgres: { url: pg.url, poolSize: 10 } } });
  try {
    // Grants: warm both, then alternate rounds.
    await grantsPerSecond([sqliteBroker.broker.url], sqliteBroker.token, 200);
    await grantsPerSecond([pgBroker.broker.url], pgBroker.token, 200);
    const gs = [];
    const gp = [];
    for (let r = 0; r < ROUNDS; r++) {
      gs.push(await grantsPerSecond([sqliteBroker.broker.url], sqliteBroker.token));
      gp.push(await grantsPerSecond([pgBroker.broker.url], pgBroker.token));
    }
    // Audit appends, in-process: a SQLite file as the broker opens it, and a fresh PostgreSQL database.
    const admin = await openPostgresDb({ url: pg.url, poolSize: 1 });
    await admin.exec('CREATE DATABASE audit');
    await admin.close();
    const sdb = openSqliteDb(join(dir, 'audit.db'));
    const pdb = await openPostgresDb({ url: pg.url.replace(/\/guard$/, '/audit'), poolSize: 10 });
    for (const d of [sdb, pdb]) await migrateAll(d);
    const s = await auditRates(sdb);
    const p = await auditRates(pdb);
    await s.batched(500);
    await p.batched(500);
    const sb = [], pb = [], ss = [], ps = [];
    for (let r = 0; r < ROUNDS; r++) {
      sb.push(await s.batched(3000));
      pb.push(await p.batched(3000));
      ss.push(await s.single(300));
      ps.push(await p.single(300));
    }
    for (const [name, x] of [['SQLite', s], ['PostgreSQL', p]]) {
      const head = await x.log.head();
      const v = await verifyChainAsync(x.log.scan({ upToSeq: head.seq }), x.key.publicKey, { head });
      if (!v.ok) throw new Error(`${name}: the audit chain does not verify: ${JSON.stringify(v.firstBroken)}`);
      console.log(`${name}: ${head.seq} audit records appended, chain verified`);
    }
    await sdb.close();
    await pdb.close();
    const [G_S, G_P, B_S, B_P, S_S, S_P] = [gs, gp, sb, pb, ss, ps].map(median);
    const f = (x) => x.toFixed(0);
    console.log(`concurrency ${CONCURRENCY}; ${N} grants per round, ${ROUNDS} rounds, medians`);
    console.log(`grants/s            SQLite ${f(G_S)}   PostgreSQL ${f(G_P)}   ratio ${(G_P / G_S).toFixed(2)}`);
    console.log(`audit appends/s     SQLite ${f(B_S)}   PostgreSQL ${f(B_P)}   ratio ${(B_P / B_S).toFixed(2)}  (batched, ${CONCURRENCY} uploads per turn)`);
    console.log(`single appends/s    SQLite ${f(S_S)}   PostgreSQL ${f(S_P)}   ratio ${(S_P / S_S).toFixed(2)}  (one after the other, each its own transaction)`);
    report({
      name: 'store',
      measures: `grants/s (${CONCURRENCY} callers, whole broker) and audit appends/s (${CONCURRENCY} per turn) on PostgreSQL vs SQLite`,
      figure: `grants ${f(G_P)}/s (${(G_P / G_S).toFixed(2)}×), appends ${f(B_P)}/s (${(B_P / B_S).toFixed(2)}×), single appends ${f(S_P)}/s (${(S_P / S_S).toFixed(2)}×)`,
      baseline: `SQLite: grants ${f(G_S)}/s, appends ${f(B_S)}/s, single ${f(S_S)}/s`,
      target: '—',
      met: null,
    });
  } finally {
    await sqliteBroker.close();
    await pgBroker.close();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
