import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey, type BrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain } from '../../src/audit/chain.js';
import { AuditLog } from '../../src/audit/store.js';
import { verifyChainParallel } from '../../src/audit/verify-parallel.js';
import type { AuditRecord } from '../../src/audit/types.js';

// issue 12 item 4: a key rotation is a record in the chain; the verifier trusts only the keys it is given, and the
// chain only says when the key changed.
const oldKey = generateBrokerKey();
const newKey = generateBrokerKey();
const evilKey = generateBrokerKey();

/** n records with `first`, then a rotation to `to` (signed by `signer`), then n records with `after`. */
function rotatedLog(o: { to: BrokerKey; signer: BrokerKey; after: BrokerKey; n?: number }): AuditRecord[] {
  const db = new BetterSqlite3(':memory:');
  const n = o.n ?? 3;
  const put = (k: BrokerKey, kind: 'transcript' | 'key_rotation', body: unknown, i: number) =>
    new AuditLog(db, k).append({ kind, grantId: kind === 'transcript' ? `grt_${i}` : null, subject: 'x', body });
  for (let i = 0; i < n; i++) put(oldKey, 'transcript', { i }, i);
  put(o.signer, 'key_rotation', { kid: o.to.kid, alg: o.to.alg, publicPem: o.to.publicPem, previousKid: oldKey.kid, reason: 'rotation' }, -1);
  for (let i = n; i < 2 * n; i++) put(o.after, 'transcript', { i }, i);
  const records = [...new AuditLog(db, o.after).iterate()];
  return records;
}

describe('audit key rotation', () => {
  it('verifies across a rotation with both keys, in any order; not with one of them', async () => {
    const recs = rotatedLog({ to: newKey, signer: newKey, after: newKey });
    expect(verifyChain(recs, [oldKey.publicKey, newKey.publicKey])).toMatchObject({ ok: true, count: 7 });
    expect(verifyChain(recs, [newKey.publicKey, oldKey.publicKey])).toMatchObject({ ok: true });
    expect(await verifyChainParallel(recs, [newKey.publicKey, oldKey.publicKey])).toMatchObject({ ok: true });
    expect(verifyChain(recs, newKey.publicKey)).toMatchObject({ ok: false, firstBroken: { seq: 1 } });
    expect(verifyChain(recs, oldKey.publicKey)).toMatchObject({ ok: false, firstBroken: { seq: 4 } });
  });

  it('a rotation to a key the verifier was not given is a break, even when everything is signed consistently', () => {
    const recs = rotatedLog({ to: evilKey, signer: evilKey, after: evilKey });
    const r = verifyChain(recs, [oldKey.publicKey, newKey.publicKey]);
    expect(r).toMatchObject({ ok: false, firstBroken: { seq: 4 } });
    expect(r.firstBroken!.reason).toMatch(/not among the keys given/);
  });

  it('a rotation record not signed by the key it names, and old-key records after the rotation, are breaks', () => {
    expect(verifyChain(rotatedLog({ to: newKey, signer: oldKey, after: newKey }), [oldKey.publicKey, newKey.publicKey])).toMatchObject({
      ok: false,
      firstBroken: { seq: 4 },
    });
    expect(verifyChain(rotatedLog({ to: newKey, signer: newKey, after: oldKey }), [oldKey.publicKey, newKey.publicKey])).toMatchObject({
      ok: false,
      firstBroken: { seq: 5 },
    });
  });
});
