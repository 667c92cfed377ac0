import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { RECORD_LABEL } from './broker-key.js';
import { ChainVerifier, verifyChainAsync, verifyChainYielding, type VerifyOptions } from './chain.js';
import type { AuditRecord, ChainResult } from './types.js';

/**
 * Chain verification with the signature checks spread over worker threads. The links and hashes (cheap) are
 * checked in order on this thread; the broker signatures (the expensive part: one public-key operation per
 * record) are checked in batches by a small pool. The verdict is the same as verifyChain's: the first broken
 * record in chain order, whichever check found it.
 */
const BATCH = 1024;

// Plain JS, evaluated as the worker's script (no file to resolve, works from src/ and dist/ alike).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const key = createPublicKey(workerData.pem);
const alg = key.asymmetricKeyType === 'rsa' ? 'sha256' : null;
parentPort.on('message', (m) => {
  let bad = -1;
  for (let i = 0; i < m.hashes.length; i++) {
    let ok = false;
    // Canonical base64url only (see canonicalBase64url in broker-key.ts): unused trailing bits must not hide a flip.
    try {
      const s = m.sigs[i];
      const b = typeof s === 'string' && /^[A-Za-z0-9_-]*$/.test(s) ? Buffer.from(s, 'base64url') : null;
      ok = !!b && b.toString('base64url') === s && verify(alg, Buffer.from(workerData.label + m.hashes[i], 'utf8'), key, b);
    } catch {}
    if (!ok) { bad = i; break; }
  }
  parentPort.postMessage({ id: m.id, bad });
});
`;

/** The signed records of a run of records; a record with no signature (sig '') is covered by the next signed one. */
interface Batch {
  seqs: number[];
  ids: string[];
  hashes: string[];
  sigs: string[];
  /** Per signed record: where its failure is reported (itself, or the first unsigned record it covers). */
  failAt: SigFailure[];
}

type SigFailure = { index: number; seq: number; id: string | null; reason?: string };
const emptyBatch = (): Batch => ({ seqs: [], ids: [], hashes: [], sigs: [], failAt: [] });

export async function verifyChainParallel(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  publicKeys: KeyObject | readonly KeyObject[],
  o: VerifyOptions & { workers?: number | undefined } = {},
): Promise<ChainResult> {
  // Several keys (a log that went through a key rotation): which key checks a record depends on the rotation
  // records before it, so the signatures are checked in order on this thread.
  // A synchronous source (the broker's own store) is walked with regular event-loop turns, so grants keep flowing.
  if (Array.isArray(publicKeys) && publicKeys.length !== 1) {
    return Symbol.asyncIterator in records
      ? verifyChainAsync(records as AsyncIterable<AuditRecord>, publicKeys, o)
      : verifyChainYielding(records as Iterable<AuditRecord>, publicKeys, o);
  }
  const publicKey: KeyObject = Array.isArray(publicKeys) ? publicKeys[0]! : (publicKeys as KeyObject);
  const n = Math.max(1, o.workers ?? Math.min(4, availableParallelism()));
  const pem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const workers = Array.from({ length: n }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { pem, label: RECORD_LABEL } }));
  const waiting = new Map<number, { resolve: (bad: number) => void; reject: (e: unknown) => void }>();
  for (const w of workers) {
    w.on('message', (m: { id: number; bad: number }) => {
      waiting.get(m.id)?.resolve(m.bad);
      waiting.delete(m.id);
    });
    w.on('error', (e) => {
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    });
  }
  const links = new ChainVerifier(publicKey, o.allowPartial, false);
  const inflight: Promise<SigFailure | undefined>[] = [];
  let nextId = 0;
  let index = 0;
  let sigFailure: SigFailure | undefined;
  const dispatch = (b: Batch) => {
    const id = nextId++;
    const w = workers[id % n]!;
    inflight.push(
      new Promise<number>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        w.postMessage({ id, hashes: b.hashes, sigs: b.sigs });
      }).then((bad) => (bad < 0 ? undefined : b.failAt[bad])),
    );
  };
  const settleOldest = async () => {
    const f = await inflight.shift();
    if (f && (!sigFailure || f.index < sigFailure.index)) sigFailure = f;
  };
  try {
    let batch = emptyBatch();
    /** Takes one record; true when the caller should await backpressure before the next. */
    const take = (r: AuditRecord): 'stop' | 'wait' | 'go' => {
      const from = links.uncoveredFrom;
      if (!links.push(r)) return 'stop';
      index++;
      if (r.sig === '') return 'go'; // checked by the links: covered by the next signed record
      batch.seqs.push(r.seq);
      batch.ids.push(r.id);
      batch.hashes.push(r.hash);
      batch.sigs.push(typeof r.sig === 'string' ? r.sig : '');
      batch.failAt.push(
        from
          ? { index: from.count, seq: from.seq, id: from.id, reason: `record has no signature and none covers it (the signature of record ${r.seq} that covers it: broker signature does not verify)` }
          : { index: index - 1, seq: r.seq, id: r.id },
      );
      if (batch.seqs.length < BATCH) return 'go';
      dispatch(batch);
      batch = emptyBatch();
      return 'wait';
    };
    // Bounded memory: at most a few batches per worker in flight.
    const backpressure = async () => {
      while (inflight.length >= n * 4) await settleOldest();
    };
    if (Symbol.asyncIterator in records) {
      for await (const r of records as AsyncIterable<AuditRecord>) {
        const next = take(r);
        if (next === 'stop') break;
        if (next === 'wait') await backpressure();
        if (sigFailure) break;
      }
    } else {
      // A plain loop for synchronous sources (SQLite scans): no promise per record.
      for (const r of records as Iterable<AuditRecord>) {
        const next = take(r);
        if (next === 'stop') break;
        if (next === 'wait') await backpressure();
        if (sigFailure) break;
      }
    }
    if (batch.seqs.length && !sigFailure) dispatch(batch);
    while (inflight.length) await settleOldest();
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (!sigFailure && 'head' in o) links.checkHead(o.head);
  return links.resultWith(sigFailure);
}
