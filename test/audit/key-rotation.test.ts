import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey, parsePublicKeys, publicKeysDocument, signExport, signHead, type BrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain } from '../../src/audit/chain.js';
import { exportClaims, exportLines, verifyExportFile, verifyExportLines } from '../../src/audit/export.js';
import { collect, logOn } from '../helpers/postgres.js';
import { verifyChainParallel } from '../../src/audit/verify-parallel.js';
import type { AuditRecord } from '../../src/audit/types.js';

// issue 12 item 4: a key rotation is a record in the chain; the verifier trusts only the keys it is given, and the
// chain only says when the key changed.
const oldKey = generateBrokerKey();
const newKey = generateBrokerKey();
const evilKey = generateBrokerKey();

/** n records with `first`, then a rotation to `to` (signed by `signer`), then n records with `after`. */
async function rotatedLog(o: { to: BrokerKey; signer: BrokerKey; after: BrokerKey; n?: number }): Promise<AuditRecord[]> {
  const db = new BetterSqlite3(':memory:');
  const n = o.n ?? 3;
  const put = async (k: BrokerKey, kind: 'transcript' | 'key_rotation', body: unknown, i: number) =>
    (await logOn(db, k)).append({ kind, grantId: kind === 'transcript' ? `grt_${i}` : null, subject: 'x', body });
  for (let i = 0; i < n; i++) await put(oldKey, 'transcript', { i }, i);
  await put(o.signer, 'key_rotation', { kid: o.to.kid, alg: o.to.alg, publicPem: o.to.publicPem, previousKid: oldKey.kid, reason: 'rotation' }, -1);
  for (let i = n; i < 2 * n; i++) await put(o.after, 'transcript', { i }, i);
  const records = (await (await logOn(db, o.after)).records());
  return records;
}

/**
 * A log in segments: the first signed by its key from genesis, each later one opened by a rotation record
 * (previousKid = the segment before, signed by the segment's key). Returns the database too, for exports.
 */
async function segmentedLog(segments: BrokerKey[], n = 2): Promise<{ db: BetterSqlite3.Database; records: AuditRecord[] }> {
  const db = new BetterSqlite3(':memory:');
  let i = 0;
  for (const [s, k] of segments.entries()) {
    const log = (await logOn(db, k));
    if (s > 0) await log.append({ kind: 'key_rotation', grantId: null, subject: null, body: { kid: k.kid, alg: k.alg, publicPem: k.publicPem, previousKid: segments[s - 1]!.kid, reason: 'rotation' } });
    for (let j = 0; j < n; j++, i++) await log.append({ kind: 'transcript', grantId: `grt_${i}`, subject: 'x', body: { i } });
  }
  return { db, records: (await (await logOn(db, segments.at(-1)!)).records()) };
}

const oldestFirst = [oldKey.publicKey, newKey.publicKey];

describe('audit key rotation', () => {
  it('verifies across a rotation with both keys, oldest first; not with one of them', async () => {
    const recs = await rotatedLog({ to: newKey, signer: newKey, after: newKey });
    expect(verifyChain(recs, [oldKey.publicKey, newKey.publicKey])).toMatchObject({ ok: true, count: 7 });
    expect(await verifyChainParallel(recs, [oldKey.publicKey, newKey.publicKey])).toMatchObject({ ok: true });
    // Given newest first, the log's first record is not signed by the (claimed) oldest key.
    expect(verifyChain(recs, [newKey.publicKey, oldKey.publicKey])).toMatchObject({ ok: false, firstBroken: { seq: 1 } });
    expect(verifyChain(recs, newKey.publicKey)).toMatchObject({ ok: false, firstBroken: { seq: 1 } });
    expect(verifyChain(recs, oldKey.publicKey)).toMatchObject({ ok: false, firstBroken: { seq: 4 } });
  });

  it('a rotation to a key the verifier was not given is a break, even when everything is signed consistently', async () => {
    const recs = await rotatedLog({ to: evilKey, signer: evilKey, after: evilKey });
    const r = verifyChain(recs, [oldKey.publicKey, newKey.publicKey]);
    expect(r).toMatchObject({ ok: false, firstBroken: { seq: 4 } });
    expect(r.firstBroken!.reason).toMatch(/not among the keys given/);
  });

  it('a rotation record not signed by the key it names, and old-key records after the rotation, are breaks', async () => {
    expect(verifyChain(await rotatedLog({ to: newKey, signer: oldKey, after: newKey }), [oldKey.publicKey, newKey.publicKey])).toMatchObject({
      ok: false,
      firstBroken: { seq: 4 },
    });
    expect(verifyChain(await rotatedLog({ to: newKey, signer: newKey, after: oldKey }), [oldKey.publicKey, newKey.publicKey])).toMatchObject({
      ok: false,
      firstBroken: { seq: 5 },
    });
  });

  // Found in review: a rotation was accepted to any trusted key, so after rotating away from a leaked key the old
  // key could "rotate back" and sign on.
  it('a rotation back to an older trusted key (the retired key signing on after the rotation) is a break', async () => {
    const { records } = await segmentedLog([oldKey, newKey, oldKey]);
    // seq 1-2 old, 3 rotation to new, 4-5 new, 6 rotation back to old, 7-8 old.
    const r = verifyChain(records, oldestFirst);
    expect(r).toMatchObject({ ok: false, count: 5, firstBroken: { seq: 6 } });
    expect(r.firstBroken!.reason).toMatch(/not later than the key in force/);
    expect(await verifyChainParallel(records, oldestFirst)).toMatchObject({ ok: false, firstBroken: { seq: 6 } });
    // A rotation whose previousKid is not the key in force is a break too.
    const db = new BetterSqlite3(':memory:');
    const log = (await logOn(db, oldKey));
    await log.append({ kind: 'transcript', grantId: 'grt_0', subject: 'x', body: {} });
    await (await logOn(db, newKey)).append({ kind: 'key_rotation', grantId: null, subject: null, body: { kid: newKey.kid, alg: newKey.alg, publicPem: newKey.publicPem, previousKid: evilKey.kid, reason: 'rotation' } });
    const bad = verifyChain((await (await logOn(db, newKey)).records()), oldestFirst);
    expect(bad).toMatchObject({ ok: false, firstBroken: { seq: 2 } });
    expect(bad.firstBroken!.reason).toMatch(/previousKid is not the key in force/);
    // Three keys, forward only: old -> new -> evil verifies with all three oldest first.
    expect(verifyChain((await segmentedLog([oldKey, newKey, evilKey])).records, [...oldestFirst, evilKey.publicKey])).toMatchObject({ ok: true, count: 8 });
  });

  it('a log signed from genesis by a key other than the oldest given is a break at its first record', async () => {
    const { records } = await segmentedLog([newKey], 4);
    expect(verifyChain(records, oldestFirst)).toMatchObject({ ok: false, count: 0, firstBroken: { seq: 1 } });
    expect(await verifyChainParallel(records, oldestFirst)).toMatchObject({ ok: false, firstBroken: { seq: 1 } });
    // The same log verifies with its own key alone.
    expect(verifyChain(records, newKey.publicKey)).toMatchObject({ ok: true, count: 4 });
  });

  it("an export's header and head must be signed by the key in force at the end, not by a retired key", async () => {
    const { db } = await segmentedLog([oldKey, newKey], 3);
    // seq 1-3 old, 4 rotation to new, 5-7 new.
    const lines = (await collect(exportLines((await logOn(db, newKey)), { kid: newKey.kid, alg: newKey.alg, sign: (t) => signExport(newKey.privateKey, t) }))).join('').split('\n').filter(Boolean);
    expect(await verifyExportLines(lines, oldestFirst)).toMatchObject({ ok: true, count: 7 });
    // As `audit verify --file --key` reads GET /v1/keys (current key first), it verifies too.
    const file = join(mkdtempSync(join(tmpdir(), 'rot-')), 'a.jsonl');
    writeFileSync(file, lines.join('\n'));
    const doc = publicKeysDocument(newKey, [{ kid: oldKey.kid, alg: oldKey.alg, pem: oldKey.publicPem }, { kid: newKey.kid, alg: newKey.alg, pem: newKey.publicPem }]);
    expect(await verifyExportFile(file, parsePublicKeys(JSON.stringify(doc)))).toMatchObject({ ok: true, count: 7 });

    // Cut the records after `keep`, and re-sign the head and header with the retired key.
    const forge = (keep: number): string[] => {
      const meta = JSON.parse(lines[0]!) as Record<string, unknown>;
      const recs = lines.slice(1, 1 + keep).map((l) => JSON.parse(l) as AuditRecord);
      const last = recs.at(-1)!;
      const head = { seq: last.seq, hash: last.hash, sig: signHead(oldKey.privateKey, last.seq, last.hash) };
      const forgedMeta = { ...meta, kid: oldKey.kid };
      const sig = signExport(oldKey.privateKey, exportClaims(forgedMeta, { seq: recs[0]!.seq, prevHash: recs[0]!.prevHash }, head));
      return [JSON.stringify(forgedMeta), ...recs.map((r) => JSON.stringify(r)), JSON.stringify({ head, sig })];
    };
    for (const keep of [4, 5, 6]) {
      const r = await verifyExportLines(forge(keep), oldestFirst);
      expect(r, `cut after seq ${keep}`).toMatchObject({ ok: false });
      expect(r.firstBroken!.reason).toMatch(/not what the broker signed|signed head does not verify/);
    }
  });
});
