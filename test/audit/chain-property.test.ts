import BetterSqlite3 from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain } from '../../src/audit/chain.js';
import { logOn } from '../helpers/postgres.js';
import type { AuditRecord } from '../../src/audit/types.js';

// Any single change to any field of any record is caught at exactly that record.
const key = generateBrokerKey('EdDSA');
const db = new BetterSqlite3(':memory:');
const log = (await logOn(db, key));
for (let i = 1; i <= 12; i++) {
  await log.append({ kind: i % 5 ? 'transcript' : 'unreported', grantId: `grt_${i}`, subject: `user${i % 3}`, body: { n: i, text: `output ${i} ✓` } });
}
const chain = (await log.records());
const head = await log.head();
const FIELDS = ['seq', 'id', 'kind', 'at', 'grantId', 'subject', 'body', 'prevHash', 'hash', 'sig'] as const;

function mutate(v: unknown, pos: number, bit: number): unknown {
  if (typeof v === 'number') return v + 1 + (pos % 3);
  if (v === null) return 'x';
  const s = String(v);
  if (s.length === 0) return 'x';
  const i = pos % s.length;
  const c = s.charCodeAt(i) ^ (1 << (bit % 7));
  return s.slice(0, i) + String.fromCharCode(c === s.charCodeAt(i) ? c + 1 : c) + s.slice(i + 1);
}

describe('chain verification (property)', () => {
  it('the untouched chain verifies', async () => {
    expect(verifyChain(chain, key.publicKey, { head })).toMatchObject({ ok: true, count: 12 });
  });

  it('flipping a bit anywhere in one record breaks the chain at that record', async () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.constantFrom(...FIELDS), fc.nat(), fc.nat(), (k, field, pos, bit) => {
        const copy = chain.map((r) => ({ ...r }));
        const target = copy[k]! as unknown as Record<string, unknown>;
        const before = target[field];
        target[field] = mutate(before, pos, bit);
        fc.pre(target[field] !== before);
        const r = verifyChain(copy as AuditRecord[], key.publicKey, { head });
        expect(r.ok).toBe(false);
        expect(r.count).toBe(k);
        expect(r.firstBroken!.seq === chain[k]!.seq || field === 'seq').toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('dropping, duplicating or moving any one record breaks the chain where the order first differs', async () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 0, max: 11 }), fc.constantFrom('drop', 'dup', 'move'), (a, b, op) => {
        const copy = [...chain];
        if (op === 'drop') copy.splice(a, 1);
        else if (op === 'dup') copy.splice(a, 0, chain[a]!);
        else {
          fc.pre(a !== b);
          const [x] = copy.splice(a, 1);
          copy.splice(b, 0, x!);
        }
        const r = verifyChain(copy, key.publicKey, { head });
        expect(r.ok).toBe(false);
        const firstDiff = copy.findIndex((x, i) => x !== chain[i]);
        expect(r.count).toBe(firstDiff === -1 ? copy.length : firstDiff);
      }),
      { numRuns: 300 },
    );
  });
});
