#!/usr/bin/env node
// Broker CPU per transcript append (the audit chain's append + sign path, in-process, real SQLite file in WAL
// mode as the broker opens it, the broker's RS256 key): CPU-ms per record when every append signs its own record
// and head (the baseline: how the broker appended before issue 14, and how non-transcript records still append)
// against transcript appends batched per event-loop turn (one transaction, one record and one head signature per
// batch: AuditLog.appendBatched), for uploads arriving one at a time and 50 at once (the grants benchmark's
// concurrency). Target (issue 14): at 50 concurrent uploads, at most half the baseline's CPU per append.
// Needs `npm run build`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { dist } from './lib/core.mjs';
import { report } from './lib/report.mjs';

const { AuditLog } = await dist('audit/store.js');
const { generateBrokerKey, signRecordHash, verifyRecordHash } = await dist('audit/broker-key.js');
const { verifyChain } = await dist('audit/chain.js');
const { sqliteDb } = await dist('store/db.js');
const { migrateAll } = await dist('broker/storage.js');
const N = Number(process.env.AUDIT_APPEND_N ?? 600);
const CONCURRENT = 50;

const dir = mkdtempSync(join(tmpdir(), 'guard-audit-append-'));
const db = new BetterSqlite3(join(dir, 'broker.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const key = generateBrokerKey('RS256');
const store = sqliteDb(db);
await migrateAll(store);
const log = new AuditLog(store, key);
// A transcript record's body as ingest stores it: the envelope of a short call.
const envelope = { transcript: { v: 1, grantId: 'grt_x', argv: ['sts', 'get-caller-identity'], exitCode: 0, chunks: [{ s: 'stdout', t: 412, b64: Buffer.alloc(180, 7).toString('base64') }] }, sig: 'A'.repeat(86) };
let g = 0;
const input = () => ({ kind: 'transcript', grantId: `grt_${g++}`, subject: 'bench@example.com', body: { envelope, uploadedBy: 'bench@example.com', callerVerified: true } });

async function cpuPerAppend(mode) {
  const c0 = process.cpuUsage();
  if (mode === 'each') for (let i = 0; i < N; i++) await log.append(input());
  else {
    const batch = mode === 'batch1' ? 1 : CONCURRENT;
    // As the broker sees them: `batch` uploads handled in one turn of the event loop, each awaiting its record.
    for (let i = 0; i < N; i += batch) {
      const waits = [];
      for (let j = 0; j < batch && i + j < N; j++) waits.push(log.appendBatched(input()));
      await Promise.all(waits);
    }
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / N;
}

await cpuPerAppend('each'); // warm-up (JIT, SQLite pages)
const rounds = { each: [], batch1: [], batch50: [] };
for (let r = 0; r < 3; r++) for (const m of Object.keys(rounds)) rounds[m].push(await cpuPerAppend(m));
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const each = med(rounds.each);
const one = med(rounds.batch1);
const many = med(rounds.batch50);
const check = verifyChain(await log.records(), key.publicKey, { head: await log.head() });
db.close();
rmSync(dir, { recursive: true, force: true });
if (!check.ok) {
  console.log(`FAIL: the chain does not verify: ${JSON.stringify(check.firstBroken)}`);
  process.exit(1);
}
console.log(`records appended: ${check.count} (RS256), chain verified`);
console.log(`CPU per append, head signed with every record (baseline): ${each.toFixed(2)} ms`);
console.log(`CPU per transcript append, uploads one at a time:         ${one.toFixed(2)} ms (ratio ${(one / each).toFixed(2)})`);
console.log(`CPU per transcript append, ${CONCURRENT} uploads at once:          ${many.toFixed(2)} ms (ratio ${(many / each).toFixed(2)}; target ≤ 0.5)`);
// The algorithm choice, with figures: what one signature costs the broker and one verification costs an auditor.
for (const alg of ['RS256', 'EdDSA']) {
  const k = generateBrokerKey(alg);
  const h = 'ab'.repeat(32);
  const sig = signRecordHash(k.privateKey, h);
  const time = (fn) => {
    for (let i = 0; i < 100; i++) fn();
    const c0 = process.cpuUsage();
    for (let i = 0; i < 1000; i++) fn();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const signUs = time(() => signRecordHash(k.privateKey, h));
  const verifyUs = time(() => verifyRecordHash(k.publicKey, h, sig));
  console.log(`${alg}: sign ${signUs.toFixed(0)} µs, verify ${verifyUs.toFixed(0)} µs (CPU, per signature)`);
}
console.log('RS256 stays: audit verify (one core) needs the cheap verification; the broker pays two signatures per batch of transcripts.');
report({
  name: 'audit-append',
  measures: `broker CPU per transcript append (hash, RS256 signatures, SQLite), ${CONCURRENT} concurrent uploads`,
  figure: `${many.toFixed(2)} CPU-ms (${(many / each).toFixed(2)}×; one at a time ${one.toFixed(2)} ms)`,
  baseline: `head signed with every record: ${each.toFixed(2)} CPU-ms`,
  target: '≤ 0.5× the baseline',
  met: many / each <= 0.5,
});
process.exitCode = many / each <= 0.5 ? 0 : 1;
