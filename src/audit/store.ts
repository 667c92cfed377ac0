import { randomUUID } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import { migrate } from '../store/migrate.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import { signHead, signRecordHash, type BrokerKey } from './broker-key.js';
import { ChainVerifier, GENESIS_PREV_HASH, recordHash } from './chain.js';
import type { AuditHead, AuditKind, AuditRecord } from './types.js';

/**
 * The append-only audit log, in the broker's SQLite database (component `audit` of src/store/migrate.ts).
 * Triggers refuse UPDATE and DELETE so no code path can edit it by mistake; against someone with write access
 * to the file the chain (hash links + broker signatures + signed head) is what detects the change.
 */
const MIGRATIONS = [
  `CREATE TABLE audit_log (
     seq       INTEGER PRIMARY KEY,
     id        TEXT NOT NULL UNIQUE,
     kind      TEXT NOT NULL,
     at        TEXT NOT NULL,
     grant_id  TEXT,
     subject   TEXT,
     body      TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash      TEXT NOT NULL,
     sig       TEXT NOT NULL
   ) STRICT;
   CREATE UNIQUE INDEX audit_log_one_per_grant ON audit_log(grant_id, kind) WHERE grant_id IS NOT NULL;
   CREATE INDEX audit_log_subject ON audit_log(subject, seq);
   CREATE INDEX audit_log_at ON audit_log(at);
   CREATE TABLE audit_head (
     one  INTEGER PRIMARY KEY CHECK (one = 1),
     seq  INTEGER NOT NULL,
     hash TEXT NOT NULL,
     sig  TEXT NOT NULL
   ) STRICT;
   CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
   CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;`,
];

interface Row {
  seq: number;
  id: string;
  kind: string;
  at: string;
  grant_id: string | null;
  subject: string | null;
  body: string;
  prev_hash: string;
  hash: string;
  sig: string;
}

function toRecord(r: Row): AuditRecord {
  return {
    seq: r.seq,
    id: r.id,
    kind: r.kind as AuditKind,
    at: r.at,
    grantId: r.grant_id,
    subject: r.subject,
    body: r.body,
    prevHash: r.prev_hash,
    hash: r.hash,
    sig: r.sig,
  };
}

export interface AppendInput {
  kind: AuditKind;
  grantId: string | null;
  subject: string | null;
  /** Serialised with canonicalJson before hashing and storing. */
  body: unknown;
  /** Append time (defaults to the log's clock). */
  at?: Date;
  /**
   * Leave signing the head to the batch (see AuditLog.append); the caller must await headSigned() before it
   * tells anyone the record is stored. Without it the head is signed in the append's own transaction.
   */
  deferHead?: boolean;
}

/** Each field narrows the list when it is not undefined (query parameters and flags are passed straight through). */
export interface RecordFilter {
  subject?: string | undefined;
  /** ISO-8601 lower bound (inclusive) on `at`. */
  since?: string | undefined;
  kind?: AuditKind | undefined;
  grantId?: string | undefined;
  /** Records with seq greater than this (paging). */
  afterSeq?: number;
  limit?: number;
}

export class AuditLog {
  private readonly insert: Statement;
  private readonly last: Statement;
  private readonly setHead: Statement;
  private readonly byId: Statement;
  private readonly byGrant: Statement;
  private readonly headSeq: Statement;
  /** The newest appended record the signed head does not cover yet (see append). */
  private unsigned: { seq: number; hash: string } | null = null;
  private headTimer: NodeJS.Immediate | null = null;
  private headWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(
    readonly db: Database,
    private readonly key: BrokerKey,
    private readonly clock: () => number = Date.now,
  ) {
    migrate(db, 'audit', MIGRATIONS);
    this.insert = db.prepare(
      'INSERT INTO audit_log (seq, id, kind, at, grant_id, subject, body, prev_hash, hash, sig) VALUES (?,?,?,?,?,?,?,?,?,?)',
    );
    this.last = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    // The head only moves forward: another broker on the same file may have signed a later one already.
    this.setHead = db.prepare(
      'INSERT INTO audit_head (one, seq, hash, sig) VALUES (1, ?, ?, ?) ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, sig = excluded.sig WHERE excluded.seq > audit_head.seq',
    );
    this.byId = db.prepare('SELECT * FROM audit_log WHERE id = ?');
    this.byGrant = db.prepare('SELECT * FROM audit_log WHERE grant_id = ? AND kind = ?');
    this.headSeq = db.prepare('SELECT seq FROM audit_head WHERE one = 1');
  }

  /**
   * Appends one record: links it to the last one, hashes and signs it, in one IMMEDIATE transaction, so two
   * brokers on the same file can never both append after the same record.
   *
   * With `deferHead` the signed head is moved once per batch, not once per record (SECURITY.md, "Audit log"):
   * the records appended so during one turn of the event loop are covered by one head signature, made right
   * after it (setImmediate), or earlier when someone reads the head. A transcript upload is acknowledged only
   * after headSigned(), so every acknowledged record is under a signed head. Two RSA signatures per record were
   * most of the broker's CPU per call (issue 14).
   */
  append(input: AppendInput): AuditRecord {
    const body = canonicalJson(input.body);
    const at = (input.at ?? new Date(this.clock())).toISOString();
    const run = this.db.transaction((): AuditRecord => {
      const prev = this.last.get() as { seq: number; hash: string } | undefined;
      const base = {
        seq: (prev?.seq ?? 0) + 1,
        id: randomUUID(),
        kind: input.kind,
        at,
        grantId: input.grantId,
        subject: input.subject,
        body,
        prevHash: prev?.hash ?? GENESIS_PREV_HASH,
      };
      const hash = recordHash(base);
      const rec: AuditRecord = { ...base, hash, sig: signRecordHash(this.key.privateKey, hash) };
      this.insert.run(rec.seq, rec.id, rec.kind, rec.at, rec.grantId, rec.subject, rec.body, rec.prevHash, rec.hash, rec.sig);
      if (!input.deferHead) this.setHead.run(rec.seq, rec.hash, signHead(this.key.privateKey, rec.seq, rec.hash));
      return rec;
    });
    const rec = run.immediate();
    this.unsigned = { seq: rec.seq, hash: rec.hash };
    // A head signed in the transaction covers every earlier record too (each hash commits to the one before).
    if (!input.deferHead) {
      this.signPendingHead();
      return rec;
    }
    this.scheduleHead();
    return rec;
  }

  /** Signs the head on the next event-loop turn, once for everything appended until then. */
  private scheduleHead(): void {
    this.headTimer ??= setImmediate(() => {
      this.headTimer = null;
      // A database closed in the meantime keeps its unsigned tail: the next AuditLog on it repairs the head.
      if (!this.db.open) return;
      try {
        this.signPendingHead();
      } catch {
        /* the waiters were rejected; the next head() or headSigned() tries again */
      }
    });
  }

  /** Resolves once the signed head covers every record this log appended so far (rejects if signing failed). */
  headSigned(): Promise<void> {
    if (!this.unsigned) return Promise.resolve();
    // After a failed signature nothing else may be scheduled: this waiter asks for the next attempt itself.
    this.scheduleHead();
    return new Promise((resolve, reject) => this.headWaiters.push({ resolve, reject }));
  }

  /** Signs the head over the newest appended record now, if it is not yet covered. */
  signPendingHead(): void {
    if (this.headTimer) {
      clearImmediate(this.headTimer);
      this.headTimer = null;
    }
    const waiters = this.headWaiters;
    this.headWaiters = [];
    const u = this.unsigned;
    try {
      if (u) {
        // Already covered when another append signed a later head (in its transaction, or another broker).
        if ((this.signedHeadSeq() ?? 0) < u.seq) this.setHead.run(u.seq, u.hash, signHead(this.key.privateKey, u.seq, u.hash));
        this.unsigned = null;
      }
    } catch (e) {
      for (const w of waiters) w.reject(e);
      throw e;
    }
    for (const w of waiters) w.resolve();
  }

  /**
   * Run by the broker at start (createAuditService), never by a verifier. A broker that stopped between appending
   * with `deferHead` and signing the head leaves records after the signed head; none of them was acknowledged.
   * They are covered again only if each links to the head and carries this broker's record signature; anything
   * else is left for `audit verify` to report. Returns whether the head was moved.
   */
  repairHead(): boolean {
    const last = this.last.get() as { seq: number; hash: string } | undefined;
    const head = this.head();
    if (!last || (head && head.seq >= last.seq)) return false;
    const verifier = new ChainVerifier(this.key.publicKey, head !== null);
    for (const r of this.iterate(head ? { afterSeq: head.seq - 1 } : {})) {
      if (head && r.seq === head.seq && r.hash !== head.hash) return false;
      if (!verifier.push(r)) return false;
    }
    const result = verifier.result();
    if (!result.ok || result.headHash !== last.hash) return false;
    this.setHead.run(last.seq, last.hash, signHead(this.key.privateKey, last.seq, last.hash));
    return true;
  }

  get(id: string): AuditRecord | undefined {
    const r = this.byId.get(id) as Row | undefined;
    return r && toRecord(r);
  }

  getByGrant(grantId: string, kind: AuditKind = 'transcript'): AuditRecord | undefined {
    const r = this.byGrant.get(grantId, kind) as Row | undefined;
    return r && toRecord(r);
  }

  private signedHeadSeq(): number | null {
    return (this.headSeq.get() as { seq: number } | undefined)?.seq ?? null;
  }

  head(): AuditHead | null {
    if (this.unsigned) this.signPendingHead();
    const r = this.db.prepare('SELECT seq, hash, sig FROM audit_head WHERE one = 1').get() as AuditHead | undefined;
    return r ?? null;
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  }

  /** Records in chain order, streamed from SQLite (one row in memory at a time). */
  *iterate(filter: RecordFilter = {}): IterableIterator<AuditRecord> {
    const { sql, args } = where(filter);
    const limit = filter.limit ? ` LIMIT ${Math.max(1, Math.min(100_000, Math.floor(filter.limit)))}` : '';
    const stmt = this.db.prepare(`SELECT * FROM audit_log${sql} ORDER BY seq${limit}`);
    for (const r of stmt.iterate(...args) as IterableIterator<Row>) yield toRecord(r);
  }

  /**
   * Records in chain order, read a page at a time. Unlike iterate(), no SQLite statement stays open between
   * pages, so a consumer may await between records (HTTP streaming, worker threads) while the broker keeps
   * using the same connection — better-sqlite3 refuses other queries while an iterator is open.
   */
  *scan(filter: Omit<RecordFilter, 'afterSeq' | 'limit'> & { upToSeq?: number } = {}, pageSize = 2048): Generator<AuditRecord> {
    const { sql, args } = where({ ...filter, afterSeq: 0 });
    const upTo = filter.upToSeq !== undefined ? ' AND seq <= ?' : '';
    const stmt = this.db.prepare(`SELECT * FROM audit_log${sql}${upTo} ORDER BY seq LIMIT ${Math.max(1, Math.floor(pageSize))}`);
    const seqArg = args.length - 1; // where() put afterSeq last
    let after = 0;
    for (;;) {
      args[seqArg] = after;
      const rows = stmt.all(...args, ...(filter.upToSeq !== undefined ? [filter.upToSeq] : [])) as Row[];
      for (const r of rows) yield toRecord(r);
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /** Newest first, for listings. */
  list(filter: RecordFilter = {}): AuditRecord[] {
    const { sql, args } = where(filter);
    const limit = Math.max(1, Math.min(10_000, Math.floor(filter.limit ?? 100)));
    return (this.db.prepare(`SELECT * FROM audit_log${sql} ORDER BY seq DESC LIMIT ${limit}`).all(...args) as Row[]).map(toRecord);
  }

  /** Grant ids among `ids` that have a transcript in the log. */
  reportedGrants(ids: readonly string[]): Set<string> {
    const out = new Set<string>();
    const stmt = this.db.prepare("SELECT 1 FROM audit_log WHERE grant_id = ? AND kind = 'transcript'");
    for (const id of ids) if (stmt.get(id)) out.add(id);
    return out;
  }
}

function where(f: RecordFilter): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (f.subject !== undefined) (parts.push('subject = ?'), args.push(f.subject));
  if (f.since !== undefined) (parts.push('at >= ?'), args.push(f.since));
  if (f.kind !== undefined) (parts.push('kind = ?'), args.push(f.kind));
  if (f.grantId !== undefined) (parts.push('grant_id = ?'), args.push(f.grantId));
  if (f.afterSeq !== undefined) (parts.push('seq > ?'), args.push(f.afterSeq));
  return { sql: parts.length ? ` WHERE ${parts.join(' AND ')}` : '', args };
}
