import { hashStream, type BodyStore } from './store.js';
import type { AuditRecord } from '../types.js';

/** The first body that does not match its record: missing from storage, or other bytes than the record binds. */
export interface BadBody {
  seq: number;
  id: string;
  grantId: string | null;
  sha256: string;
  location: string;
  reason: 'missing' | 'differs';
  /** For `differs`: what storage holds now. */
  found?: { sha256: string; size: number };
}

export interface BodiesResult {
  ok: boolean;
  /** Bodies re-hashed and found intact (before the first bad one). */
  checked: number;
  /** Bytes re-hashed. */
  bytes: number;
  firstBad?: BadBody;
}

/** The body a transcript record binds (digest, size, location), if any: v1 records keep their output inline. */
export function recordBody(r: Pick<AuditRecord, 'kind' | 'body'>): { sha256: string; size: number; location: string } | undefined {
  if (r.kind !== 'transcript') return undefined;
  const b = (JSON.parse(r.body) as { body?: { sha256?: unknown; size?: unknown; location?: unknown } }).body;
  if (!b || typeof b.sha256 !== 'string' || typeof b.size !== 'number' || typeof b.location !== 'string') return undefined;
  return { sha256: b.sha256, size: b.size, location: b.location };
}

/**
 * Re-hashes every body the records bind, reading it back from storage (streamed, 1 MiB at a time): a body whose
 * bytes are not those its record's digest and size say — altered, cut, or gone — is named, the first one only.
 * The chain check (chain.ts) covers the records themselves; this covers what they point at.
 */
export async function verifyBodies(records: Iterable<AuditRecord> | AsyncIterable<AuditRecord>, store: Pick<BodyStore, 'get'>): Promise<BodiesResult> {
  let checked = 0;
  let bytes = 0;
  const seen = new Set<string>();
  for await (const r of records) {
    const b = recordBody(r);
    if (!b) continue;
    const bad = (reason: BadBody['reason'], found?: BadBody['found']): BodiesResult => ({
      ok: false,
      checked,
      bytes,
      firstBad: { seq: r.seq, id: r.id, grantId: r.grantId, sha256: b.sha256, location: b.location, reason, ...(found ? { found } : {}) },
    });
    // Content-addressed: two records naming the same body share it; it is read once.
    if (seen.has(b.sha256)) {
      checked++;
      continue;
    }
    let s;
    try {
      s = await store.get(b.sha256);
    } catch {
      return bad('missing');
    }
    if (!s) return bad('missing');
    let got;
    try {
      got = await hashStream(s);
    } catch {
      return bad('missing');
    }
    if (got.sha256 !== b.sha256 || got.size !== b.size) return bad('differs', got);
    seen.add(b.sha256);
    checked++;
    bytes += got.size;
  }
  return { ok: true, checked, bytes };
}
