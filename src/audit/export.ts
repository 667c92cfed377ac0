import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { KeyObject } from 'node:crypto';
import { GuardError } from '../errors.js';
import { ChainVerifier } from './chain.js';
import type { AuditLog } from './store.js';
import type { AuditHead, AuditRecord, ChainResult } from './types.js';

/**
 * JSONL export: everything needed to verify offline, one JSON object per line.
 *   line 1:        {"format":"guard-aws-audit","version":1,"exportedAt":…,"since":…|null,"kid":…,"alg":…}
 *   then:          one AuditRecord per line, in chain order (body kept as the exact hashed text)
 *   last line:     {"head":{"seq":…,"hash":…,"sig":…}} — the broker's signed head at export time
 * A full export (no --since) verifies from the genesis sentinel to the signed head, so records removed from
 * the middle, the start or the end, reordered or changed are all caught.
 */
export const EXPORT_FORMAT = 'guard-aws-audit';

export interface ExportMeta {
  format: typeof EXPORT_FORMAT;
  version: 1;
  exportedAt: string;
  since: string | null;
  kid: string;
  alg: string;
}

export function* exportLines(log: AuditLog, o: { since?: string; kid: string; alg: string; now?: number }): Generator<string> {
  // Read the head first: records appended while exporting come after it and are simply not included.
  const head = log.head();
  const meta: ExportMeta = {
    format: EXPORT_FORMAT,
    version: 1,
    exportedAt: new Date(o.now ?? Date.now()).toISOString(),
    since: o.since ?? null,
    kid: o.kid,
    alg: o.alg,
  };
  yield `${JSON.stringify(meta)}\n`;
  if (!head) {
    yield `${JSON.stringify({ head: null })}\n`;
    return;
  }
  for (const r of log.iterate({ since: o.since })) {
    if (r.seq > head.seq) break;
    yield `${JSON.stringify(r)}\n`;
  }
  yield `${JSON.stringify({ head })}\n`;
}

/** Verifies an exported JSONL stream (lines in any async/sync iterable) with the broker's public key. */
export async function verifyExportLines(lines: AsyncIterable<string> | Iterable<string>, key: KeyObject): Promise<ChainResult & { exportedAt?: string; since?: string | null }> {
  let meta: ExportMeta | undefined;
  let head: AuditHead | null | undefined;
  let v: ChainVerifier | undefined;
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = raw.trim();
    if (!line) continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new GuardError('usage', `audit export: line ${lineNo} is not JSON`);
    }
    if (lineNo === 1 && obj.format === EXPORT_FORMAT) {
      meta = obj as unknown as ExportMeta;
      continue;
    }
    v ??= new ChainVerifier(key, !!meta?.since);
    if ('head' in obj && !('seq' in obj)) {
      head = obj.head as AuditHead | null;
      continue;
    }
    if (head !== undefined) {
      // Anything after the head line is not part of what the broker signed.
      const seq = typeof obj.seq === 'number' ? obj.seq : v.nextSeq;
      v.reject(seq, typeof obj.id === 'string' ? obj.id : null, `line ${lineNo} comes after the signed head`);
      break;
    }
    if (!v.push(obj as unknown as AuditRecord)) break;
  }
  v ??= new ChainVerifier(key, !!meta?.since);
  if (!v.done) {
    if (head === undefined) {
      v.reject(v.nextSeq, null, 'no signed head line at the end: the export was cut short');
    } else if (head !== null) {
      v.checkHead(head);
    }
  }
  return { ...v.result(), exportedAt: meta?.exportedAt, since: meta?.since ?? null };
}

export async function verifyExportFile(path: string, key: KeyObject): Promise<ChainResult> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  try {
    return await verifyExportLines(createInterface({ input: stream, crlfDelay: Infinity }), key);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new GuardError('usage', `audit verify: no such file ${path}`);
    throw e;
  } finally {
    stream.destroy();
  }
}
