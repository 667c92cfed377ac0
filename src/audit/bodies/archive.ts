import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { GuardError } from '../../errors.js';
import type { AuditRecord } from '../types.js';
import { checkDigest } from './store.js';
import { recordBody, verifyBodies, type BodiesResult } from './verify.js';

/**
 * `audit export --bodies DIR` writes a self-contained archive directory:
 *   DIR/audit.jsonl                 the export (src/audit/export.ts), verifiable with the broker's public key
 *   DIR/bodies/sha256/ab/cdef…      every body a record in it binds, content-addressed like the file store
 * `audit verify --file DIR/audit.jsonl --key K --bodies` checks the chain, then re-hashes every body against its
 * record — offline, nothing but the archive and the key.
 */
export const ARCHIVE_LOG = 'audit.jsonl';
export const ARCHIVE_BODIES = 'bodies';

export function archiveBodyPath(dir: string, sha256: string): string {
  checkDigest(sha256);
  return join(dir, ARCHIVE_BODIES, 'sha256', sha256.slice(0, 2), sha256.slice(2));
}

/** Records of an export file (light parse: the chain check proper is verifyExportFile's). */
export async function* exportRecords(path: string): AsyncGenerator<AuditRecord> {
  const input = createReadStream(path, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (!line.trim()) continue;
      let o: Partial<AuditRecord>;
      try {
        o = JSON.parse(line) as Partial<AuditRecord>;
      } catch {
        continue;
      }
      if (typeof o.seq === 'number' && typeof o.body === 'string' && typeof o.kind === 'string') yield o as AuditRecord;
    }
  } finally {
    input.destroy();
  }
}

/** Fetches every body the export at `dir/audit.jsonl` binds into `dir/bodies/`, checking each digest on the way. */
export async function fetchArchiveBodies(dir: string, fetchBody: (sha256: string) => Promise<AsyncIterable<Uint8Array>>): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const r of exportRecords(join(dir, ARCHIVE_LOG))) {
    const b = recordBody(r);
    if (!b) continue;
    const to = archiveBodyPath(dir, b.sha256);
    if (existsSync(to)) continue;
    mkdirSync(dirname(to), { recursive: true });
    const tmp = `${to}.part`;
    const h = createHash('sha256');
    let n = 0;
    await pipeline(
      Readable.from(await fetchBody(b.sha256)),
      async function* (src: AsyncIterable<Uint8Array>) {
        for await (const c of src) {
          h.update(c);
          n += c.byteLength;
          yield c;
        }
      },
      createWriteStream(tmp),
    );
    if (h.digest('hex') !== b.sha256 || n !== b.size) {
      rmSync(tmp, { force: true });
      throw new GuardError('audit_broken', `audit export: the broker's body ${b.sha256.slice(0, 16)}… (record seq ${r.seq}) is not the one its record binds; run \`guard-aws audit verify --bodies\``);
    }
    renameSync(tmp, to);
    count++;
    bytes += n;
  }
  return { count, bytes };
}

/** Re-hashes the archive's bodies against the records of its export file. */
export async function verifyArchiveBodies(exportFile: string): Promise<BodiesResult> {
  const dir = dirname(exportFile);
  return verifyBodies(exportRecords(exportFile), {
    get: async (sha256) => {
      const p = archiveBodyPath(dir, sha256);
      return existsSync(p) ? createReadStream(p, { highWaterMark: 1024 * 1024 }) : undefined;
    },
  });
}
