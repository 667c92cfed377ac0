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

interface Link {
  seq: number;
  hash: string;
}

/** What appendBatched stored, or the record already there for the same grant and kind. */
export interface Appended {
  record: AuditRecord;
  existed: boolean;
}

/** A transcript waiting in appendBatched's batch: body already canonical, time already taken. */
interface Queued {
  kind: AuditKind;
  grantId: string | null;
  subject: string | null;
  body: string;
  at: string;
  resolve: (r: Appended) => void;
  reject: (e: unknown) => void;
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
  private readonly headRow: Statement;
  private readonly appendOne: (input: AppendInput) => AuditRecord;
  private readonly appendMany: (items: readonly Queued[]) => Appended[];
  /** Transcript appends waiting for the end of this event-loop turn (see appendBatched). */
  private queue: Queued[] = [];
  private flushTimer: NodeJS.Immediate | null = null;

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
    this.headRow = db.prepare('SELECT seq, hash, sig FROM audit_head WHERE one = 1');
    // Built once: better-sqlite3's transaction() wraps a function, and wrapping it again per append costs.
    const one = db.transaction((input: AppendInput): AuditRecord => {
      const rec = this.link(this.last.get() as Link | undefined, input.kind, input.grantId, input.subject, canonicalJson(input.body), (input.at ?? new Date(this.clock())).toISOString());
      rec.sig = signRecordHash(this.key.privateKey, rec.hash);
      this.store(rec);
      this.setHead.run(rec.seq, rec.hash, signHead(this.key.privateKey, rec.seq, rec.hash));
      return rec;
    });
    this.appendOne = (input) => one.immediate(input);
    const many = db.transaction((items: readonly Queued[]) => {
      let prev = this.last.get() as Link | undefined;
      const out: Appended[] = [];
      const recs: AuditRecord[] = [];
      const taken = new Map<string, AuditRecord>();
      for (const q of items) {
        // The one-per-grant rule, judged here rather than by the unique index: a refused INSERT in the middle of
        // the batch would leave the records after it linked to a record that is not there.
        if (q.grantId !== null) {
          const k = `${q.kind}\n${q.grantId}`;
          const row = this.byGrant.get(q.grantId, q.kind) as Row | undefined;
          const earlier = taken.get(k) ?? (row && toRecord(row));
          if (earlier) {
            out.push({ record: earlier, existed: true });
            continue;
          }
        }
        const rec = this.link(prev, q.kind, q.grantId, q.subject, q.body, q.at);
        if (q.grantId !== null) taken.set(`${q.kind}\n${q.grantId}`, rec);
        recs.push(rec);
        out.push({ record: rec, existed: false });
        prev = rec;
      }
      const end = recs[recs.length - 1];
      if (end) {
        // One record signature and one head signature for the whole batch (SECURITY.md, "The audit log"): the
        // batch's last record is signed, the ones before it are covered through their hash links.
        end.sig = signRecordHash(this.key.privateKey, end.hash);
        for (const r of recs) this.store(r);
        this.setHead.run(end.seq, end.hash, signHead(this.key.privateKey, end.seq, end.hash));
      }
      return out;
    });
    this.appendMany = (items) => many.immediate(items);
  }

  /** The next record after `prev`, hashed, not yet signed (sig ''). */
  private link(prev: Link | undefined, kind: AuditKind, grantId: string | null, subject: string | null, body: string, at: string): AuditRecord {
    const base = { seq: (prev?.seq ?? 0) + 1, id: randomUUID(), kind, at, grantId, subject, body, prevHash: prev?.hash ?? GENESIS_PREV_HASH };
    return { ...base, hash: recordHash(base), sig: '' };
  }

  private store(r: AuditRecord): void {
    this.insert.run(r.seq, r.id, r.kind, r.at, r.grantId, r.subject, r.body, r.prevHash, r.hash, r.sig);
  }

  /**
   * Appends one record, signed, and moves the signed head over it, in one IMMEDIATE transaction (so two brokers
   * on the same file can never both append after the same record). Transcripts waiting in the batch are stored
   * first, so records keep the order they were appended in.
   */
  append(input: AppendInput): AuditRecord {
    this.flush();
    return this.appendOne(input);
  }

  /**
   * Appends a record with the others appended in this turn of the event loop: they are stored together right
   * after it (setImmediate), in one IMMEDIATE transaction with one record signature (on the batch's last record)
   * and one head signature, and the promise settles then. Resolves only once the record and a signed head
   * covering it are committed, so an upload is acknowledged only when it is stored under signatures. When the grant
   * already has a record of this kind (stored, or earlier in the same batch) nothing is appended and that record
   * comes back with `existed: true`.
   *
   * Two RSA signatures per record were most of the broker's CPU per transcript (issue 14); per batch of k
   * concurrent uploads this is 2/k. Why that keeps the chain's tamper evidence: SECURITY.md, "The audit log".
   */
  appendBatched(input: AppendInput): Promise<Appended> {
    const body = canonicalJson(input.body);
    const at = (input.at ?? new Date(this.clock())).toISOString();
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: input.kind, grantId: input.grantId, subject: input.subject, body, at, resolve, reject });
      this.flushTimer ??= setImmediate(() => {
        this.flushTimer = null;
        this.flush();
      });
    });
  }

  /** Stores the waiting batch now (append does, so the order of appends is kept). */
  flush(): void {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = null;
    }
    const items = this.queue;
    if (!items.length) return;
    this.queue = [];
    let out: Appended[];
    try {
      // A database closed in the meantime: nothing was stored and nobody is told it was.
      if (!this.db.open) throw new Error('audit log: the database was closed before the batch was stored');
      out = this.appendMany(items);
    } catch (e) {
      for (const q of items) q.reject(e);
      return;
    }
    items.forEach((q, i) => q.resolve(out[i]!));
  }

  /**
   * Run by the broker at start (createAuditService), never by a verifier. Brokers before batched record signatures
   * appended transcripts and signed the head after the transaction; one that stopped in between left records
   * after the signed head, none of them acknowledged. They are covered again only if each links to the head and
   * is covered by this broker's record signatures; anything else is left for `audit verify` to report. Returns
   * whether the head was moved.
   */
  repairHead(): boolean {
    const last = this.last.get() as Link | undefined;
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

  /** The stored signed head. Records and the head over them are committed together, so it covers every stored record. */
  head(): AuditHead | null {
    return (this.headRow.get() as AuditHead | undefined) ?? null;
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
