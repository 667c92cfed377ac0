import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey, loadOrCreateBrokerKey, parsePublicKey, publicKeysDocument, type BrokerKey, signExport } from '../../src/audit/broker-key.js';
import { GENESIS_PREV_HASH, recordHash, verifyChain, verifyChainAsync } from '../../src/audit/chain.js';
import { exportLines, verifyExportFile } from '../../src/audit/export.js';
import { collect, logOn } from '../helpers/postgres.js';
import { verifyChainParallel } from '../../src/audit/verify-parallel.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { tempDir } from '../transcript/helpers.js';

// Real SQLite files on disk; tampering is done the way an attacker with file access would: raw bytes in the
// database file, or SQL with the append-only triggers dropped.
const key: BrokerKey = generateBrokerKey();

async function build(n: number, k = key): Promise<{ path: string; dir: string; ids: string[] }> {
  const dir = tempDir('guard-audit-');
  const path = join(dir, 'broker.db');
  const db = new BetterSqlite3(path);
  // As the broker's store opens it (src/store/sqlite.ts): WAL, synchronous=NORMAL. Closing checkpoints the WAL
  // into the main file, where the byte-flip test looks for the record.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const log = (await logOn(db, k));
  const ids: string[] = [];
  for (let i = 1; i <= n; i++) {
    const r = await log.append({
      kind: 'transcript',
      grantId: `grt_${i}`,
      subject: i % 2 ? 'alice@example.com' : 'bob@example.com',
      body: { envelope: { marker: `marker-record-${String(i).padStart(3, '0')}`, exitCode: 0 }, uploadedBy: 'x', callerVerified: true },
    });
    ids.push(r.id);
  }
  db.close();
  return { path, dir, ids };
}

async function verifyFile(path: string, k = key) {
  const db = new BetterSqlite3(path);
  try {
    const log = (await logOn(db, k));
    return verifyChain(await log.records(), k.publicKey, { head: await log.head() });
  } finally {
    db.close();
  }
}

/** The worker-thread verifier must reach exactly the same verdict as the sequential one. */
async function verifyBoth(path: string, k = key) {
  const seq = await verifyFile(path, k);
  const db = new BetterSqlite3(path);
  try {
    const log = (await logOn(db, k));
    const par = await verifyChainParallel(log.iterate(), k.publicKey, { head: await log.head(), workers: 2 });
    expect(par).toEqual(seq);
    expect(await verifyChainAsync(log.scan({}, 7), k.publicKey, { head: await log.head() })).toEqual(seq);
  } finally {
    db.close();
  }
  return seq;
}

function sql(path: string, statements: string): void {
  const db = new BetterSqlite3(path);
  db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
  db.exec(statements);
  db.close();
}

describe('audit chain in SQLite', () => {
  it('links every record to the previous one from the genesis sentinel, and verifies', async () => {
    const { path } = await build(6);
    const db = new BetterSqlite3(path);
    const recs = (await (await logOn(db, key)).records());
    db.close();
    expect(recs[0]!.prevHash).toBe(GENESIS_PREV_HASH);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.prevHash).toBe(recs[i - 1]!.hash);
    expect(await verifyBoth(path)).toMatchObject({ ok: true, count: 6, fromGenesis: true });
  });

  it('refuses UPDATE and DELETE through SQL (append-only triggers)', async () => {
    const { path } = await build(2);
    const db = new BetterSqlite3(path);
    expect(() => db.exec("UPDATE audit_log SET subject = 'x' WHERE seq = 1")).toThrow(/append-only/);
    expect(() => db.exec('DELETE FROM audit_log WHERE seq = 1')).toThrow(/append-only/);
    db.close();
  });

  it('detects one flipped byte in the database file and names the record', async () => {
    const { path, ids } = await build(5);
    const bytes = readFileSync(path);
    const at = bytes.indexOf('marker-record-003');
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf('marker-record-003', at + 1)).toBe(-1);
    const digit = at + 'marker-record-00'.length;
    bytes.writeUInt8(bytes.readUInt8(digit) ^ 0x01, digit); // '3' → '2'
    writeFileSync(path, bytes);
    const r = await verifyBoth(path);
    expect(r.ok).toBe(false);
    expect(r.count).toBe(2);
    expect(r.firstBroken).toEqual({ seq: 3, id: ids[2], reason: 'content does not match its hash (record changed)' });
  });

  it('detects a deleted record and names where the chain breaks', async () => {
    const { path, ids } = await build(5);
    sql(path, 'DELETE FROM audit_log WHERE seq = 3');
    const r = await verifyBoth(path);
    expect(r.firstBroken).toEqual({ seq: 4, id: ids[3], reason: 'records 3..3 are missing before it' });
  });

  it('detects two swapped records', async () => {
    const { path, ids } = await build(5);
    // Exchange everything but the position of records 2 and 4.
    sql(
      path,
      `CREATE TEMP TABLE t AS SELECT * FROM audit_log WHERE seq IN (2, 4);
       UPDATE audit_log SET id = 'tmp-' || id, grant_id = 'tmp-' || grant_id WHERE seq IN (2, 4);
       UPDATE audit_log SET (id, kind, at, grant_id, subject, body, prev_hash, hash, sig) =
         (SELECT id, kind, at, grant_id, subject, body, prev_hash, hash, sig FROM t WHERE t.seq = 6 - audit_log.seq)
       WHERE seq IN (2, 4);`,
    );
    const r = await verifyBoth(path);
    expect(r.ok).toBe(false);
    expect(r.firstBroken?.seq).toBe(2);
    expect(r.firstBroken?.id).toBe(ids[3]);
    expect(r.firstBroken?.reason).toMatch(/prevHash does not match/);
  });

  it('detects an edited indexed column (subject) even though the body is intact', async () => {
    const { path, ids } = await build(3);
    sql(path, "UPDATE audit_log SET subject = 'mallory' WHERE seq = 2");
    expect((await verifyBoth(path)).firstBroken).toMatchObject({ seq: 2, id: ids[1] });
  });

  it('detects a rewritten chain (hashes recomputed) by the broker signature', async () => {
    const { path, ids } = await build(4);
    const db = new BetterSqlite3(path);
    db.exec('DROP TRIGGER audit_log_no_update');
    // The columns of audit_log (src/audit/store.ts) this rewrite reads.
    type Row = Pick<AuditRecord, 'seq' | 'id' | 'kind' | 'at' | 'subject' | 'body'> & { grant_id: string | null };
    const rows = db.prepare('SELECT * FROM audit_log ORDER BY seq').all() as Row[];
    let prev = GENESIS_PREV_HASH;
    for (const row of rows) {
      const rec = { seq: row.seq, id: row.id, kind: row.kind, at: row.at, grantId: row.grant_id, subject: row.subject, body: row.body.replace('"exitCode":0', '"exitCode":1'), prevHash: prev };
      const hash = recordHash(rec);
      db.prepare('UPDATE audit_log SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(rec.body, prev, hash, row.seq);
      prev = hash;
    }
    db.close();
    expect((await verifyBoth(path)).firstBroken).toEqual({ seq: 1, id: ids[0], reason: 'broker signature does not verify' });
  });

  it('detects records cut off the end through the signed head', async () => {
    const { path } = await build(5);
    sql(path, 'DELETE FROM audit_log WHERE seq >= 4');
    expect((await verifyBoth(path)).firstBroken).toEqual({ seq: 4, id: null, reason: 'records 4..5 are missing at the end (signed head is at 5)' });
  });

  it('fails against another broker key', async () => {
    const { path } = await build(2);
    const db = new BetterSqlite3(path);
    const recs = (await (await logOn(db, key)).records());
    db.close();
    expect(verifyChain(recs, generateBrokerKey().publicKey).firstBroken?.reason).toBe('broker signature does not verify');
  });

  it('accepts an Ed25519 broker key as well', async () => {
    const ed = generateBrokerKey('EdDSA');
    const { path } = await build(3, ed);
    expect(await verifyBoth(path, ed)).toMatchObject({ ok: true, count: 3 });
  });
});

describe('broker key file', () => {
  it('is created once with mode 0600 and loaded again unchanged; a world-readable key is refused', async () => {
    const { statSync, chmodSync } = await import('node:fs');
    const p = join(tempDir(), 'broker.db.audit-key.pem');
    const a = loadOrCreateBrokerKey(p);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(loadOrCreateBrokerKey(p).kid).toBe(a.kid);
    chmodSync(p, 0o644);
    expect(() => loadOrCreateBrokerKey(p)).toThrow(/readable by others/);
  });
});

describe('JSONL export and offline verification', () => {
  async function exportTo(path: string, since?: string): Promise<string> {
    const db = new BetterSqlite3(path);
    const text = (await collect(exportLines((await logOn(db, key)), { kid: key.kid, alg: key.alg, since, sign: (t) => signExport(key.privateKey, t) }))).join('');
    db.close();
    const out = `${path}.jsonl`;
    writeFileSync(out, text);
    return out;
  }

  it('verifies a full export with the PEM key, the JWK, or the GET /v1/keys document', async () => {
    const { path } = await build(10);
    const file = await exportTo(path);
    for (const text of [key.publicPem, JSON.stringify(key.publicKey.export({ format: 'jwk' })), JSON.stringify(publicKeysDocument(key))]) {
      expect(await verifyExportFile(file, parsePublicKey(text))).toMatchObject({ ok: true, count: 10, fromGenesis: true });
    }
  });

  // Found in review: the header's `since` (which lets a chain start after genesis) and `exportedAt` were not signed,
  // so cutting the first records and adding `since` turned a full export into a "valid" partial one.
  it('an export cannot be made partial or re-dated: the header and start are signed by the broker', async () => {
    const { path } = await build(6);
    const file = await exportTo(path);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const pk = parsePublicKey(key.publicPem);
    const meta = JSON.parse(lines[0]!) as Record<string, unknown>;
    // Drop records 1..2 and claim the export started later.
    writeFileSync(file, [JSON.stringify({ ...meta, since: '2026-01-01T00:00:00.000Z' }), ...lines.slice(3)].join('\n'));
    const cut = await verifyExportFile(file, pk);
    expect(cut.ok).toBe(false);
    expect(cut.firstBroken!.reason).toMatch(/not what the broker signed/);
    // Re-date an old export.
    writeFileSync(file, [JSON.stringify({ ...meta, exportedAt: '2030-01-01T00:00:00.000Z' }), ...lines.slice(1)].join('\n'));
    expect((await verifyExportFile(file, pk)).ok).toBe(false);
    // An unsigned trailer.
    const trailer = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    writeFileSync(file, [...lines.slice(0, -1), JSON.stringify({ head: trailer.head })].join('\n'));
    expect((await verifyExportFile(file, pk)).ok).toBe(false);
    // The untouched export still verifies; a real --since export does too.
    writeFileSync(file, lines.join('\n'));
    expect((await verifyExportFile(file, pk)).ok).toBe(true);
  });

  it('names the changed, missing or extra record in an edited export', async () => {
    const { path, ids } = await build(6);
    const file = await exportTo(path);
    const lines = readFileSync(file, 'utf8').split('\n');
    const pk = parsePublicKey(key.publicPem);

    writeFileSync(file, lines.map((l) => l.replace('marker-record-005', 'marker-record-00X')).join('\n'));
    expect((await verifyExportFile(file, pk)).firstBroken).toMatchObject({ seq: 5, id: ids[4] });

    writeFileSync(file, lines.filter((_l, i) => i !== 2).join('\n')); // line 0 is the header: drops seq 2
    expect((await verifyExportFile(file, pk)).firstBroken).toMatchObject({ seq: 3, id: ids[2], reason: 'records 2..2 are missing before it' });

    writeFileSync(file, lines.slice(0, 5).join('\n')); // header + 4 records, no head line
    expect((await verifyExportFile(file, pk)).firstBroken).toMatchObject({ seq: 5, reason: /cut short/ });

    writeFileSync(file, [...lines.slice(0, 5), lines[7]].join('\n')); // head line says 6, records stop at 4
    expect((await verifyExportFile(file, pk)).firstBroken).toMatchObject({ seq: 5, reason: /missing at the end/ });
  });

  // An export file is input from anywhere: a line of the wrong shape is a break that names the line and the
  // field, not a crash or a record read as if it were whole.
  it('names the line and field of a record, header or head line of the wrong shape', async () => {
    const { path, ids } = await build(4);
    const file = await exportTo(path);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const pk = parsePublicKey(key.publicPem);
    const edit = (i: number, change: (o: Record<string, unknown>) => void) => {
      const copy = [...lines];
      const o = JSON.parse(copy[i]!) as Record<string, unknown>;
      change(o);
      copy[i] = JSON.stringify(o);
      writeFileSync(file, copy.join('\n'));
    };

    edit(3, (o) => (o.seq = String(o.seq))); // record 3's seq as a string
    expect((await verifyExportFile(file, pk)).firstBroken).toEqual({ seq: 3, id: ids[2], reason: expect.stringMatching(/^line 4 is not an audit record: seq: .*expected number/) });

    edit(2, (o) => delete o.hash);
    expect((await verifyExportFile(file, pk)).firstBroken).toEqual({ seq: 2, id: ids[1], reason: expect.stringMatching(/^line 3 is not an audit record: hash: /) });

    edit(0, (o) => (o.kid = 7));
    const header = await verifyExportFile(file, pk);
    expect(header.ok).toBe(false);
    expect(header.firstBroken?.reason).toMatch(/^line 1 is not a valid export header: kid: /);

    edit(lines.length - 1, (o) => (o.head = { seq: 'four' }));
    expect((await verifyExportFile(file, pk)).firstBroken?.reason).toMatch(new RegExp(`^line ${lines.length} is not a valid signed head line: head\\.seq: `));

    writeFileSync(file, lines.join('\n'));
    expect((await verifyExportFile(file, pk)).ok).toBe(true);
  });

  it('checks a --since export from wherever it starts', async () => {
    const { path } = await build(4);
    const db = new BetterSqlite3(path);
    const third = (await (await logOn(db, key)).records())[2]!;
    db.close();
    const file = await exportTo(path, third.at);
    const r = await verifyExportFile(file, parsePublicKey(key.publicPem));
    expect(r.ok).toBe(true);
    expect(r.count).toBeLessThanOrEqual(4);
  });
});

describe('parallel verification over many batches', () => {
  it('names the same first broken record when a signature deep in the chain is bad', async () => {
    // Ed25519 signs ~10x faster than RSA: keeps building 2,600 records quick. The batching logic is the same.
    const ed = generateBrokerKey('EdDSA');
    const { path, ids } = await build(2600, ed);
    sql(path, "UPDATE audit_log SET sig = (SELECT sig FROM audit_log WHERE seq = 1) WHERE seq = 2500");
    const r = await verifyBoth(path, ed);
    expect(r).toMatchObject({ ok: false, count: 2499, firstBroken: { seq: 2500, id: ids[2499], reason: 'broker signature does not verify' } });
  }, 60_000);
});

describe('AuditLog.scan', () => {
  it('lets the connection serve other statements, writes included, between records (no statement stays open across pages)', async () => {
    const { path } = await build(5);
    const db = new BetterSqlite3(path);
    const log = (await logOn(db, key));
    const seen: number[] = [];
    const add = () => log.append({ kind: 'unreported', grantId: null, subject: null, body: { n: seen.length } });
    for await (const r of log.scan({ upToSeq: 5 }, 2)) {
      seen.push(r.seq);
      await add();
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(await log.count()).toBe(10);
    expect((await collect(log.scan({ upToSeq: 3 }, 2))).map((r) => r.seq)).toEqual([1, 2, 3]);
    db.close();
  });
});

describe('recordHeader fast path', () => {
  it('is byte-for-byte canonicalJson of the header fields', async () => {
    const { canonicalJson } = await import('../../src/canonical-json/canonical-json.js');
    const { recordHeader } = await import('../../src/audit/chain.js');
    const cases = [
      { at: '2026-11-25T10:00:00.000Z', grantId: 'grt_1', id: 'a', kind: 'transcript' as const, seq: 1, subject: 'alice@example.com' },
      { at: 'x', grantId: null, id: 'é"\\\n\u2028😀', kind: 'unreported' as const, seq: 123456789, subject: null },
    ];
    for (const h of cases) expect(recordHeader(h)).toBe(canonicalJson(h));
  });
});
