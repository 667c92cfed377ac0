/**
 * Transcript appends are batched per event-loop turn (issue 14): one transaction, one record signature (on the
 * batch's last record) and one head signature for all of them. The batch must never acknowledge a record that is not
 * committed under signatures, the unsigned records must stay exactly as tamper-evident as signed ones, and a
 * broker of the previous version that stopped before signing its head must neither hide nor invent records.
 * Real SQLite files; tampering as in chain.test.ts (SQL with the append-only triggers dropped).
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey, signExport, signRecordHash } from '../../src/audit/broker-key.js';
import { exportLines, verifyExportLines } from '../../src/audit/export.js';
import { verifyChain } from '../../src/audit/chain.js';
import { verifyChainParallel } from '../../src/audit/verify-parallel.js';
import { collect, logOn } from '../helpers/postgres.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { tempDir } from '../transcript/helpers.js';

const key = generateBrokerKey();
const newKey = generateBrokerKey();
const body = (i: number) => ({ envelope: { marker: `m-${i}` }, uploadedBy: 'x', callerVerified: true });
const t = (grantId: string, i: number) => ({ kind: 'transcript' as const, grantId, subject: 's', body: body(i), at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) });

async function open(path: string) {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  return { db, log: (await logOn(db, key)) };
}
/** What another process reading the file sees: the stored head and records, without any flushing by this log. */
function stored(path: string): { head: number | null; count: number } {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    const head = (db.prepare('SELECT seq FROM audit_head WHERE one = 1').get() as { seq: number } | undefined)?.seq ?? null;
    return { head, count: (db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n };
  } finally {
    db.close();
  }
}
async function records(path: string): Promise<AuditRecord[]> {
  const db = new BetterSqlite3(path);
  try {
    return (await (await logOn(db, key)).records());
  } finally {
    db.close();
  }
}
/** The single-thread and the worker-thread verifier, which must agree on every verdict. */
async function verifyFile(path: string, keys: Parameters<typeof verifyChain>[1] = key.publicKey) {
  const db = new BetterSqlite3(path);
  try {
    const log = (await logOn(db, key));
    const one = verifyChain(await log.records(), keys, { head: await log.head() });
    const parallel = await verifyChainParallel(log.scan(), keys, { head: await log.head(), workers: 1 });
    expect(parallel).toEqual(one);
    return one;
  } finally {
    db.close();
  }
}
function tamper(path: string, sql: string) {
  const db = new BetterSqlite3(path);
  db.exec('DROP TRIGGER IF EXISTS audit_log_no_update');
  db.exec(sql);
  db.close();
}
/** A log with record 1 appended alone and records 2..6 as one batch. */
async function batchOfFive() {
  const path = join(tempDir('guard-audit-'), 'broker.db');
  const { db, log } = await open(path);
  await log.append(t('g0', 0));
  const pending = [1, 2, 3, 4, 5].map((i) => log.appendBatched(t(`g${i}`, i)));
  expect(stored(path)).toEqual({ head: 1, count: 1 }); // nothing of the batch is stored before the turn ends
  const out = await Promise.all(pending);
  db.close();
  return { path, out };
}

describe('batched transcript appends', () => {
  it('a batch is committed at the end of the turn with its head, one record signature on its last record', async () => {
    const { path, out } = await batchOfFive();
    expect(out.map((o) => [o.record.seq, o.existed])).toEqual([[2, false], [3, false], [4, false], [5, false], [6, false]]);
    expect(stored(path)).toEqual({ head: 6, count: 6 });
    expect((await records(path)).map((r) => r.sig !== '')).toEqual([true, false, false, false, false, true]);
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 6 });
  });

  it('a full and a --since export starting inside a batch verify offline; cutting the covering record does not', async () => {
    const { path } = await batchOfFive();
    const db = new BetterSqlite3(path);
    const log = (await logOn(db, key));
    const opts = { kid: key.kid, alg: key.alg, sign: (t: string) => signExport(key.privateKey, t) };
    const full = (await collect(exportLines(log, opts)));
    const since = (await collect(exportLines(log, { ...opts, since: '2026-01-01T00:00:03.000Z' }))); // records 4..6: two unsigned, then the signed one
    db.close();
    expect(await verifyExportLines(full, key.publicKey)).toMatchObject({ ok: true, count: 6 });
    expect(await verifyExportLines(since, key.publicKey)).toMatchObject({ ok: true, count: 3, fromGenesis: false });
    // Without the batch's last (signed) record the export ends at record 5: nothing covers records 2..5.
    const cut = full.filter((l) => !l.startsWith('{"seq":6,'));
    expect((await verifyExportLines(cut, key.publicKey)).firstBroken).toMatchObject({ seq: 2, reason: expect.stringMatching(/none covers it/) });
  });

  it('a changed unsigned record is caught by its own hash, and a rehash by the next link up to the signed record', async () => {
    const { path } = await batchOfFive();
    tamper(path, `UPDATE audit_log SET body = replace(body, 'm-3', 'm-X') WHERE seq = 4`);
    expect((await verifyFile(path)).firstBroken).toMatchObject({ seq: 4, reason: expect.stringMatching(/does not match its hash/) });
    // The attacker recomputes record 4's hash: record 5 no longer links to it.
    const r = (await records(path))[3]!;
    const { recordHash } = await import('../../src/audit/chain.js');
    tamper(path, `UPDATE audit_log SET hash = '${recordHash(r)}' WHERE seq = 4`);
    expect((await verifyFile(path)).firstBroken).toMatchObject({ seq: 5, reason: expect.stringMatching(/prevHash does not match/) });
  });

  it('the covering signature removed, bad, or moved from another record: the first record it covered is reported', async () => {
    const { path } = await batchOfFive();
    const recs = await records(path);
    tamper(path, `UPDATE audit_log SET sig = '' WHERE seq = 6`);
    expect((await verifyFile(path)).firstBroken).toMatchObject({ seq: 2, reason: expect.stringMatching(/no signature and none covers it/) });
    tamper(path, `UPDATE audit_log SET sig = '${recs[0]!.sig}' WHERE seq = 6`); // record 1's valid signature
    expect(await verifyFile(path)).toMatchObject({ ok: false, count: 1, firstBroken: { seq: 2, reason: expect.stringMatching(/record 6 that covers it/) } });
    // Stripping a signature in the middle of a signed run is harmless: the next signed record covers it.
    tamper(path, `UPDATE audit_log SET sig = '${recs[5]!.sig}' WHERE seq = 6; UPDATE audit_log SET sig = '' WHERE seq = 1`);
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 6 });
  });

  it('unsigned records added at the end are refused, with or without the signed head', async () => {
    const { path } = await batchOfFive();
    const last = (await records(path))[5]!;
    const { recordHash } = await import('../../src/audit/chain.js');
    const forged = { seq: 7, id: 'forged', kind: 'transcript' as const, at: last.at, grantId: 'g7', subject: 's', body: '{}', prevHash: last.hash };
    tamper(path, `INSERT INTO audit_log (seq, id, kind, at, grant_id, subject, body, prev_hash, hash, sig) VALUES (7, 'forged', 'transcript', '${last.at}', 'g7', 's', '{}', '${last.hash}', '${recordHash(forged)}', '')`);
    expect((await verifyFile(path)).firstBroken).toMatchObject({ seq: 7, reason: expect.stringMatching(/no signature and none covers it/) });
    const db = new BetterSqlite3(path);
    expect(verifyChain(await (await logOn(db, key)).records(), key.publicKey).firstBroken).toMatchObject({ seq: 7 });
    db.close();
  });

  it('a key rotation never covers the records before it, and is always signed itself', async () => {
    const { path } = await batchOfFive();
    const recs = await records(path);
    const { recordHash } = await import('../../src/audit/chain.js');
    // Records 2..6 unsigned, then a rotation signed by the new key: the old key never vouched for 2..6.
    const rot = { seq: 7, id: 'rot', kind: 'key_rotation' as const, at: recs[5]!.at, grantId: null, subject: null, body: JSON.stringify({ kid: newKey.kid, previousKid: key.kid }), prevHash: recs[5]!.hash };
    const rotHash = recordHash(rot);
    tamper(path, `UPDATE audit_log SET sig = '' WHERE seq = 6`);
    tamper(path, `INSERT INTO audit_log (seq, id, kind, at, grant_id, subject, body, prev_hash, hash, sig) VALUES (7, 'rot', 'key_rotation', '${rot.at}', NULL, NULL, '${rot.body}', '${rot.prevHash}', '${rotHash}', '${signRecordHash(newKey.privateKey, rotHash)}')`);
    const db = new BetterSqlite3(path);
    const log = (await logOn(db, key));
    expect(verifyChain(await log.records(), [key.publicKey, newKey.publicKey]).firstBroken).toMatchObject({ seq: 2, reason: expect.stringMatching(/before the key rotation/) });
    db.close();
    tamper(path, `UPDATE audit_log SET sig = '${recs[5]!.sig}' WHERE seq = 6; UPDATE audit_log SET sig = '' WHERE seq = 7`);
    const db2 = new BetterSqlite3(path);
    expect(verifyChain(await (await logOn(db2, key)).records(), [key.publicKey, newKey.publicKey]).firstBroken).toMatchObject({ seq: 7, reason: 'key rotation record without a signature' });
    db2.close();
  });

  it('an ordinary append stores the waiting batch first, so records keep their order', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const { db, log } = await open(path);
    const a = log.appendBatched(t('a', 1));
    const b = log.appendBatched(t('b', 2));
    const c = await log.append({ kind: 'unreported', grantId: 'c', subject: 's', body: body(3) });
    expect(c.seq).toBe(3);
    expect(stored(path)).toEqual({ head: 3, count: 3 });
    expect([(await a).record.seq, (await b).record.seq]).toEqual([1, 2]);
    db.close();
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 3 });
  });

  it('one record per grant: a second one in the same batch or after it comes back as the existing record', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const { db, log } = await open(path);
    const [x, y, z] = await Promise.all([log.appendBatched(t('a', 1)), log.appendBatched(t('a', 2)), log.appendBatched(t('b', 3))]);
    expect(x).toMatchObject({ existed: false, record: { seq: 1 } });
    expect(y).toMatchObject({ existed: true, record: { seq: 1, body: x!.record.body } });
    expect(z).toMatchObject({ existed: false, record: { seq: 2, prevHash: x!.record.hash } });
    expect(await log.appendBatched(t('b', 4))).toMatchObject({ existed: true, record: { seq: 2 } });
    expect(await log.count()).toBe(2);
    db.close();
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 2 });
  });

  it('a database closed before the turn ends: the uploads are refused, nothing is stored', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const { db, log } = await open(path);
    const p = log.appendBatched(t('a', 1));
    db.close();
    await expect(p).rejects.toThrow(/closed/);
    expect(stored(path)).toEqual({ head: null, count: 0 });
  });

  it('two brokers on one file: a batch links after the other broker\'s record, and the head never moves back', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const a = await open(path);
    const b = await open(path);
    const p = a.log.appendBatched(t('a', 1));
    await b.log.append(t('b', 2));
    await b.log.append(t('c', 3));
    expect((await p).record).toMatchObject({ seq: 3, prevHash: expect.any(String) });
    expect(stored(path)).toEqual({ head: 3, count: 3 });
    a.db.close();
    b.db.close();
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 3 });
  });
});

describe('repairing the head left by an earlier broker version', () => {
  /** Records appended signed but the head left behind, as a broker that signed heads after the transaction did. */
  async function legacyTail() {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const first = await open(path);
    await first.log.append(t('a', 1));
    const head1 = (await first.log.head())!;
    await first.log.append(t('b', 2));
    await first.log.append(t('c', 3));
    first.db.close();
    const db = new BetterSqlite3(path);
    db.prepare('UPDATE audit_head SET seq = ?, hash = ?, sig = ?').run(head1.seq, head1.hash, head1.sig);
    db.close();
    return path;
  }

  it('verify reports the tail until the broker repairs it', async () => {
    const path = await legacyTail();
    expect((await verifyFile(path)).firstBroken?.reason).toMatch(/after the signed head/);
    const again = await open(path);
    expect(await again.log.repairHead()).toBe(true);
    again.db.close();
    expect(await verifyFile(path)).toMatchObject({ ok: true, count: 3 });
  });

  it('never repairs over a tail that is not the broker\'s: a changed record stays reported', async () => {
    const path = await legacyTail();
    tamper(path, `UPDATE audit_log SET body = replace(body, 'm-2', 'm-X') WHERE seq = 2`);
    const again = await open(path);
    expect(await again.log.repairHead()).toBe(false);
    again.db.close();
    expect((await verifyFile(path)).ok).toBe(false);
    expect(stored(path).head).toBe(1);
  });
});
