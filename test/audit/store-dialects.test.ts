import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain, verifyChainAsync } from '../../src/audit/chain.js';
import { AuditLog } from '../../src/audit/store.js';
import { recordUnreported } from '../../src/audit/summary.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

const key = generateBrokerKey('EdDSA');
const t = (grantId: string | null, i: number) => ({ kind: 'transcript' as const, grantId, subject: `user${i % 3}`, body: { i } });

// The audit log's guarantees on both stores: one chain, one record per grant, append-only, verifiable.
describe.each(DIALECTS)('audit log on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('appends, batches and reads back one verifiable chain with a signed head over it', async () => {
    const log = new AuditLog(await dbs.open(), key);
    await log.append(t('g0', 0));
    const batch = await Promise.all([1, 2, 3].map((i) => log.appendBatched(t(`g${i}`, i))));
    expect(batch.map((b) => b.record.seq)).toEqual([2, 3, 4]);
    // Only the batch's last record carries a signature; the head covers it.
    expect(batch.map((b) => b.record.sig === '')).toEqual([true, true, false]);
    expect(await log.head()).toMatchObject({ seq: 4, hash: batch[2]!.record.hash });
    expect(verifyChain(await log.records(), key.publicKey, { head: await log.head() })).toMatchObject({ ok: true, count: 4 });
    expect((await log.list({ subject: 'user1' })).map((r) => r.seq)).toEqual([2]);
    expect((await log.getByGrant('g2'))?.seq).toBe(3);
    expect(await log.reportedGrants(['g1', 'nope', 'g3'])).toEqual(new Set(['g1', 'g3']));
    expect((await log.records({ afterSeq: 2, limit: 1 })).map((r) => r.seq)).toEqual([3]);
  });

  it('one transcript per grant: a second one comes back as the stored record', async () => {
    const log = new AuditLog(await dbs.open(), key);
    const [a, b] = await Promise.all([log.appendBatched(t('g1', 1)), log.appendBatched(t('g1', 2))]);
    expect(a!.existed).toBe(false);
    expect(b).toMatchObject({ existed: true, record: { seq: 1 } });
    expect(await log.appendBatched(t('g1', 3))).toMatchObject({ existed: true, record: { seq: 1 } });
    // The unique index is the last line of defence: a direct append of a second one is refused.
    await expect(log.append(t('g1', 4))).rejects.toThrow(/UNIQUE|duplicate key/);
    expect(await log.count()).toBe(1);
  });

  it('refuses UPDATE and DELETE of a record', async () => {
    const db = await dbs.open();
    const log = new AuditLog(db, key);
    await log.append(t('g1', 1));
    await expect(db.run("UPDATE audit_log SET subject = 'mallory'")).rejects.toThrow(/append-only/);
    await expect(db.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
  });
});

// Several brokers appending to one PostgreSQL database: each "broker" is its own pool and its own AuditLog (no
// shared memory); the chain must stay one chain whatever the interleaving.
describe('audit chain across brokers on PostgreSQL', () => {
  const dbs = testDatabases('postgres');
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('1,000 interleaved appends from two brokers: no fork, no gap, no duplicate seq, and verify passes', async () => {
    const a = new AuditLog(await dbs.open('chain', { poolSize: 4 }), key);
    const b = new AuditLog(await dbs.open('chain', { poolSize: 4 }), key);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      const log = i % 2 ? a : b;
      // Mixed: single appends and batched transcripts, some grants uploaded to both brokers at once.
      if (i % 5 === 0) work.push(log.append({ kind: 'unreported', grantId: null, subject: 's', body: { i } }));
      else work.push(log.appendBatched(t(`g${i % 7 === 0 ? i - 1 : i}`, i)));
    }
    await Promise.all(work);
    const records = await a.records();
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: records.length }, (_, i) => i + 1));
    expect(new Set(records.map((r) => r.prevHash)).size).toBe(records.length);
    const perGrant = new Map<string, number>();
    for (const r of records) if (r.grantId) perGrant.set(r.grantId, (perGrant.get(r.grantId) ?? 0) + 1);
    expect([...perGrant.values()].every((n) => n === 1)).toBe(true);
    const head = await b.head();
    expect(head?.seq).toBe(records.length);
    expect(await verifyChainAsync(b.scan({ upToSeq: head!.seq }), key.publicKey, { head })).toMatchObject({ ok: true, count: records.length });
  }, 60_000);

  it('two brokers sweeping for unreported grants at the same time note each grant once', async () => {
    const a = new AuditLog(await dbs.open('sweep'), key);
    const b = new AuditLog(await dbs.open('sweep'), key);
    const grants = Array.from({ length: 30 }, (_, i) => ({
      id: `grt_${i}`, subject: 'alice', argv: ['s3', 'ls'], target: 'dev', decision: 'allow' as const, rule: 'r', approvalId: null,
      transcriptKey: 'k', createdAt: '2026-11-30T10:00:00.000Z', expiresAt: '2026-11-30T10:15:00.000Z', groups: [], name: null,
    }));
    const now = Date.parse('2026-11-30T12:00:00Z');
    const [na, nb] = await Promise.all([recordUnreported(grants, a, now), recordUnreported(grants, b, now)]);
    expect(na + nb).toBe(30);
    const records = await a.records({ kind: 'unreported' });
    expect(new Set(records.map((r) => r.grantId)).size).toBe(30);
    expect(records.length).toBe(30);
  });
});
