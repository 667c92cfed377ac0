import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { canonicalBase64url, generateBrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain } from '../../src/audit/chain.js';
import { verifyChainParallel } from '../../src/audit/verify-parallel.js';
import { logOn } from '../helpers/postgres.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { createTranscriptKey, signTranscript, verifyTranscript } from '../../src/transcript/sign.js';

// Found by the chain property test: flipping an unused low bit of a signature's last base64url character gives a
// different stored string that Node decodes to the same bytes. A byte flip anywhere must break verification.
function flipLastUnusedBit(sig: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(sig.at(-1)!);
  return sig.slice(0, -1) + alphabet[last ^ 1]!;
}

describe('signatures must be canonical base64url', () => {
  it('the decoder alone would accept the flipped string (the hole this closes)', async () => {
    const sig = Buffer.alloc(64, 7).toString('base64url'); // 86 characters: the last carries 4 unused bits
    const flipped = flipLastUnusedBit(sig);
    expect(flipped).not.toBe(sig);
    expect(Buffer.from(flipped, 'base64url')).toEqual(Buffer.from(sig, 'base64url'));
    expect(canonicalBase64url(sig)).not.toBeNull();
    expect(canonicalBase64url(flipped)).toBeNull();
  });

  for (const alg of ['EdDSA', 'RS256'] as const) {
    it(`a record whose signature differs only in unused bits breaks the chain (${alg}, one thread and workers)`, async () => {
      const key = generateBrokerKey(alg);
      const log = (await logOn(new BetterSqlite3(':memory:'), key));
      for (let i = 1; i <= 3; i++) await log.append({ kind: 'transcript', grantId: `g${i}`, subject: 'u', body: { i } });
      const chain = (await log.records()).map((r) => ({ ...r }));
      const flipped = flipLastUnusedBit(chain[1]!.sig);
      if (Buffer.from(flipped, 'base64url').equals(Buffer.from(chain[1]!.sig, 'base64url'))) {
        chain[1]!.sig = flipped;
        const r = verifyChain(chain as AuditRecord[], key.publicKey, { head: await log.head() });
        expect(r.ok).toBe(false);
        expect(r.firstBroken!.seq).toBe(2);
        const p = await verifyChainParallel(chain as AuditRecord[], key.publicKey, { head: await log.head() });
        expect(p.ok).toBe(false);
      } else {
        // RSA-2048 signatures are 256 bytes = 342 characters + 2 unused bits: same property; assert it holds.
        expect(canonicalBase64url(flipped)).toBeNull();
      }
    });
  }

  it('a transcript signature differing only in unused bits does not verify', async () => {
    const k = createTranscriptKey();
    const env = signTranscript({ v: 1 } as never, k.privateKey);
    expect(verifyTranscript(env, k.publicKey)).toBe(true);
    expect(verifyTranscript({ ...env, sig: flipLastUnusedBit(env.sig) }, k.publicKey)).toBe(false);
  });
});
