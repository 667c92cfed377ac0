import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { GuardError } from '../errors.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import { verifyExport, verifyHead } from './broker-key.js';
import { ChainVerifier } from './chain.js';
import { verifyChainParallel } from './verify-parallel.js';
import type { AuditLog } from './store.js';
import { AUDIT_KINDS, type AuditHead, type AuditRecord, type ChainResult } from './types.js';

/**
 * JSONL export: everything needed to verify offline, one JSON object per line.
 *   line 1:        {"format":"guard-aws-audit","version":1,"exportedAt":…,"since":…|null,"kid":…,"alg":…}
 *   then:          one AuditRecord per line, in chain order (body kept as the exact hashed text)
 *   last line:     {"head":{"seq":…,"hash":…,"sig":…},"sig":…} — the broker's signed head at export time, and the
 *                  broker's signature over the header, the first record's seq/prevHash and the head (exportClaims)
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

// The shapes of an export's lines. The file is input from anywhere (it is verified because it may have been
// edited), so each line is checked before it is used; a line of the wrong shape is a break naming the line and
// the field. Fields a line does not need are left alone (not stripped from what the signatures cover).
const exportMetaSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(1),
  exportedAt: z.string(),
  since: z.string().nullable(),
  kid: z.string(),
  alg: z.string(),
});
const auditRecordSchema = z.object({
  seq: z.number().int().positive(),
  id: z.string(),
  kind: z.enum(AUDIT_KINDS),
  at: z.string(),
  grantId: z.string().nullable(),
  subject: z.string().nullable(),
  body: z.string(),
  prevHash: z.string(),
  hash: z.string(),
  sig: z.string(),
});
const headLineSchema = z.object({
  head: z.object({ seq: z.number().int().nonnegative(), hash: z.string(), sig: z.string() }).nullable(),
  sig: z.unknown(),
});

/** `field: message` of a schema's first complaint, for a one-line reason. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join('.') || '(line)'}: ${issue?.message ?? 'invalid'}`;
}

/** What the trailer's signature covers: the header as written, where the records start, and the head. */
export function exportClaims(meta: unknown, first: { seq: number; prevHash: string } | null, head: AuditHead | null): string {
  return canonicalJson({ meta, first, head });
}

export async function* exportLines(
  log: AuditLog,
  o: { since?: string | undefined; kid: string; alg: string; now?: number; sign: (text: string) => string },
): AsyncGenerator<string> {
  // Read the head first: records appended while exporting come after it and are simply not included.
  const head = await log.head();
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
    yield `${JSON.stringify({ head: null, sig: o.sign(exportClaims(meta, null, null)) })}\n`;
    return;
  }
  // Paged: the HTTP stream pulls lines across event-loop turns while the broker keeps using the database.
  let first: { seq: number; prevHash: string } | null = null;
  for await (const r of log.scan({ since: o.since, upToSeq: head.seq })) {
    first ??= { seq: r.seq, prevHash: r.prevHash };
    yield `${JSON.stringify(r)}\n`;
  }
  yield `${JSON.stringify({ head, sig: o.sign(exportClaims(meta, first, head)) })}\n`;
}

/**
 * Verifies an exported JSONL stream (lines in any async/sync iterable) with the broker's public key: the
 * chain from its first record (the genesis sentinel unless the export was made with --since), then the signed
 * head on the last line. Lines after the head, or a missing head line, are breaks too. Several keys (a rotated
 * log) are given oldest first; the header and head must verify under the key in force at the end of the chain.
 */
export async function verifyExportLines(
  lines: AsyncIterable<string> | Iterable<string>,
  key: KeyObject | readonly KeyObject[],
  o: { workers?: number | undefined } = {},
): Promise<ChainResult & { exportedAt?: string | undefined; since?: string | null }> {
  const it = (Symbol.asyncIterator in lines ? (lines as AsyncIterable<string>)[Symbol.asyncIterator]() : toAsync(lines as Iterable<string>));
  let lineNo = 0;
  const nextLine = async (): Promise<string | undefined> => {
    for (;;) {
      const n = await it.next();
      if (n.done) return undefined;
      lineNo++;
      const line = n.value.trim();
      if (line) return line;
    }
  };
  const parse = (line: string): Record<string, unknown> => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new GuardError('usage', `audit export: line ${lineNo} is not JSON`);
    }
  };
  let first = await nextLine();
  // The header as written (what the broker signed) and as checked.
  let metaWritten: Record<string, unknown> | undefined;
  let meta: ExportMeta | undefined;
  let badHeader: string | undefined;
  if (first !== undefined) {
    const obj = parse(first);
    if (obj.format === EXPORT_FORMAT) {
      const checked = exportMetaSchema.safeParse(obj);
      if (checked.success) (metaWritten = obj), (meta = checked.data);
      else badHeader = `line ${lineNo} is not a valid export header: ${firstIssue(checked.error)}`;
      first = undefined;
    }
  }
  let head: AuditHead | null | undefined;
  let trailerSig: unknown;
  const seen: { first: { seq: number; prevHash: string } | null } = { first: null };
  let extra: { seq: number | null; id: string | null; line: number } | undefined;
  // A record or head line of the wrong shape ends the walk: what follows it cannot be placed in the chain.
  let malformed: { seq: number | null; id: string | null; reason: string } | undefined;
  let last: { seq: number; hash: string } | undefined;
  const records = async function* (): AsyncGenerator<AuditRecord> {
    for (let line = first ?? (await nextLine()); line !== undefined; line = await nextLine()) {
      const obj = parse(line);
      if (head !== undefined) {
        // Anything after the head line is not part of what the broker signed.
        extra = { seq: typeof obj.seq === 'number' ? obj.seq : null, id: typeof obj.id === 'string' ? obj.id : null, line: lineNo };
        return;
      }
      if ('head' in obj && !('seq' in obj)) {
        const checked = headLineSchema.safeParse(obj);
        if (!checked.success) {
          malformed = { seq: null, id: null, reason: `line ${lineNo} is not a valid signed head line: ${firstIssue(checked.error)}` };
          return;
        }
        head = checked.data.head;
        trailerSig = checked.data.sig;
        continue;
      }
      const checked = auditRecordSchema.safeParse(obj);
      if (!checked.success) {
        const seq = Number(obj.seq);
        malformed = {
          seq: Number.isSafeInteger(seq) && seq > 0 ? seq : null,
          id: typeof obj.id === 'string' ? obj.id : null,
          reason: `line ${lineNo} is not an audit record: ${firstIssue(checked.error)}`,
        };
        return;
      }
      const r: AuditRecord = checked.data;
      seen.first ??= { seq: r.seq, prevHash: r.prevHash };
      last = { seq: r.seq, hash: r.hash };
      yield r;
    }
  };
  const keys: readonly KeyObject[] = Array.isArray(key) ? key : [key as KeyObject];
  // One key: the parallel verifier, and that key is the one in force. Several: walked here in order, so the key in
  // force at the end of the chain is known (verifyChainParallel does the same walk for several keys).
  let endKey: KeyObject | undefined = keys.length === 1 ? keys[0] : undefined;
  let result: ChainResult;
  if (keys.length === 1) {
    result = await verifyChainParallel(records(), keys[0]!, { allowPartial: !!meta?.since, workers: o.workers });
  } else {
    const v = new ChainVerifier(keys, !!meta?.since);
    for await (const r of records()) if (!v.push(r)) break;
    result = v.result();
    endKey = v.keyInForce;
  }
  const out = { exportedAt: meta?.exportedAt, since: meta?.since ?? null };
  if (!result.ok) return { ...result, ...out };
  const fail = (seq: number, id: string | null, reason: string) => ({
    ok: false,
    count: result.count,
    firstBroken: { seq, id, reason },
    fromGenesis: result.fromGenesis,
    ...out,
  });
  const nextSeq = (last?.seq ?? 0) + 1;
  if (badHeader) return fail(seen.first?.seq ?? nextSeq, null, badHeader);
  if (malformed) return fail(malformed.seq ?? nextSeq, malformed.id, malformed.reason);
  if (extra) return fail(extra.seq ?? nextSeq, extra.id, `line ${extra.line} comes after the signed head`);
  if (head === undefined) return fail(nextSeq, null, 'no signed head line at the end: the export was cut short');
  // The header (since, exportedAt) and where the records start are the broker's word, not the file's.
  // The header and head are signed by the key in force at the end of the chain (after its last rotation), and
  // only by it: a retired key cannot re-sign a shortened export. With no records and several keys, any of them.
  const endKeys: readonly KeyObject[] = endKey ? [endKey] : keys;
  const claims = meta && metaWritten ? exportClaims(metaWritten, seen.first, head) : '';
  if (!meta || !endKeys.some((k) => verifyExport(k, claims, trailerSig))) {
    return fail(seen.first?.seq ?? nextSeq, null, 'the export header or its first records are not what the broker signed (records cut from the start, or a forged header)');
  }
  if (head !== null) {
    const h: AuditHead = head;
    if (!endKeys.some((k) => verifyHead(k, h.seq, h.hash, h.sig))) return fail(head.seq, null, 'signed head does not verify');
    if (head.seq > nextSeq - 1) return fail(nextSeq, null, `records ${nextSeq}..${head.seq} are missing at the end (signed head is at ${head.seq})`);
    if (head.seq < nextSeq - 1 || head.hash !== last?.hash) return fail(head.seq, null, 'last record does not match the signed head');
  } else if (last) {
    return fail(last.seq, null, 'records present but the export says the log was empty');
  }
  return { ...result, ...out };
}

async function* toAsync<T>(xs: Iterable<T>): AsyncGenerator<T> {
  yield* xs;
}

/**
 * verifyExportFile for `audit verify --file --key`: several keys come as parsePublicKeys reads them, newest first —
 * the order of `GET /v1/keys` (the current key, then earlier ones newest first); several PEM blocks are read in
 * that order too. They are put oldest first for the chain.
 */
export async function verifyExportFile(path: string, key: KeyObject | readonly KeyObject[]): Promise<ChainResult> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const oldestFirst = Array.isArray(key) ? [...(key as readonly KeyObject[])].reverse() : key;
  try {
    return await verifyExportLines(createInterface({ input: stream, crlfDelay: Infinity }), oldestFirst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new GuardError('usage', `audit verify: no such file ${path}`);
    throw e;
  } finally {
    stream.destroy();
  }
}
