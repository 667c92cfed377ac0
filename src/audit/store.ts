import { randomUUID } from 'node:crypto';
import type { Db, Sql } from '../store/db.js';
import type { Migration } from '../store/migrate.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import { signHead, signRecordHash, type BrokerKey } from './broker-key.js';
import { ChainVerifier, GENESIS_PREV_HASH, recordHash } from './chain.js';
import type { KeyGuard } from './key-guard.js';
import type { AuditHead, AuditKind, AuditRecord } from './types.js';

/**
 * The append-only audit log, in the broker's database (component `audit` of src/store/migrate.ts).
 * Triggers refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) so no code path can edit it by mistake; against
 * someone with write access to the database the chain (hash links + broker signatures + signed head) is what
 * detects the change.
 */
const SQLITE = [
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

const POSTGRES = [
  `CREATE TABLE audit_log (
     seq       BIGINT PRIMARY KEY,
     id        TEXT NOT NULL UNIQUE,
     kind      TEXT NOT NULL,
     at        TEXT NOT NULL,
     grant_id  TEXT,
     subject   TEXT,
     body      TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash      TEXT NOT NULL,
     sig       TEXT NOT NULL
   );
   CREATE UNIQUE INDEX audit_log_one_per_grant ON audit_log(grant_id, kind) WHERE grant_id IS NOT NULL;
   CREATE INDEX audit_log_subject ON audit_log(subject, seq);
   CREATE INDEX audit_log_at ON audit_log(at);
   CREATE TABLE audit_head (
     one  INTEGER PRIMARY KEY CHECK (one = 1),
     seq  BIGINT NOT NULL,
     hash TEXT NOT NULL,
     sig  TEXT NOT NULL
   );
   CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
   CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
   CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();`,
];

/** Both dialects' steps (src/store/migrate.ts). */
export const AUDIT_SCHEMA: readonly Migration[] = SQLITE.map((sqlite, i) => ({ sqlite, postgres: POSTGRES[i]! }));

/** The advisory lock every append takes on PostgreSQL (SQLite: the IMMEDIATE transaction is the lock). */
const CHAIN_LOCK = 'guard-aws audit chain';

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
  /** Transcript appends waiting for the end of this event-loop turn (see appendBatched). */
  private queue: Queued[] = [];
  private flushTimer: NodeJS.Immediate | null = null;
  /** This process's appends, one after the other, so records keep the order they were appended in. */
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * Checks, inside each append transaction and after the chain lock, that the chain's signed head is this broker's
   * key's (several brokers, one key: src/audit/key-guard.ts); unset, nothing is checked (one broker, tests).
   */
  keyGuard: KeyGuard | undefined;

  /** `db` must be migrated (src/broker/storage.ts migrateAll). */
  constructor(
    readonly db: Db,
    private readonly key: BrokerKey,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * The chain's end as the database has it, read inside the append transaction after taking the chain lock: never
   * from a cache in this process, so brokers sharing the database extend one chain (no fork, no gap, no seq twice).
   */
  private async last(q: Sql): Promise<Link | undefined> {
    return q.get<Link>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  }

  /** Refuses (audit_key_retired) before anything is signed when another key signs the chain now. */
  private async checkKey(q: Sql, previousKid?: string | null): Promise<void> {
    if (!this.keyGuard) return;
    const head = await q.get<AuditHead>('SELECT seq, hash, sig FROM audit_head WHERE one = 1');
    this.keyGuard.check(head ? { seq: Number(head.seq), hash: head.hash, sig: head.sig } : null, { previousKid });
  }

  /** The head only moves forward: another broker on the same database may have signed a later one already. */
  private async setHead(q: Sql, seq: number, hash: string, sig: string): Promise<void> {
    await q.run(
      'INSERT INTO audit_head (one, seq, hash, sig) VALUES (1, ?, ?, ?) ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, sig = excluded.sig WHERE excluded.seq > audit_head.seq',
      [seq, hash, sig],
    );
  }

  /** The next record after `prev`, hashed, not yet signed (sig ''). */
  private link(prev: Link | undefined, kind: AuditKind, grantId: string | null, subject: string | null, body: string, at: string): AuditRecord {
    const base = { seq: (prev?.seq ?? 0) + 1, id: randomUUID(), kind, at, grantId, subject, body, prevHash: prev?.hash ?? GENESIS_PREV_HASH };
    return { ...base, hash: recordHash(base), sig: '' };
  }

  private async store(q: Sql, recs: readonly AuditRecord[]): Promise<void> {
    if (!recs.length) return;
    // One multi-row INSERT per batch: one round trip to PostgreSQL however many transcripts the batch holds.
    for (let i = 0; i < recs.length; i += 50) {
      const part = recs.slice(i, i + 50);
      await q.run(
        `INSERT INTO audit_log (seq, id, kind, at, grant_id, subject, body, prev_hash, hash, sig) VALUES ${part.map(() => '(?,?,?,?,?,?,?,?,?,?)').join(',')}`,
        part.flatMap((r) => [r.seq, r.id, r.kind, r.at, r.grantId, r.subject, r.body, r.prevHash, r.hash, r.sig]),
      );
    }
  }

  /** Runs `fn` after this process's earlier appends (a failed one does not stop the ones after it). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }

  private appendOne(input: AppendInput): Promise<AuditRecord> {
    const body = canonicalJson(input.body);
    const at = (input.at ?? new Date(this.clock())).toISOString();
    return this.db.transaction(async (tx) => {
      await tx.lock(CHAIN_LOCK);
      await this.checkKey(tx, input.kind === 'key_rotation' ? (input.body as { previousKid?: string | null }).previousKid : undefined);
      const rec = this.link(await this.last(tx), input.kind, input.grantId, input.subject, body, at);
      rec.sig = signRecordHash(this.key.privateKey, rec.hash);
      await this.store(tx, [rec]);
      await this.setHead(tx, rec.seq, rec.hash, signHead(this.key.privateKey, rec.seq, rec.hash));
      return rec;
    });
  }

  private appendMany(items: readonly Queued[]): Promise<Appended[]> {
    return this.db.transaction(async (tx) => {
      await tx.lock(CHAIN_LOCK);
      await this.checkKey(tx);
      let prev = await this.last(tx);
      const out: Appended[] = [];
      const recs: AuditRecord[] = [];
      const taken = new Map<string, AuditRecord>();
      const grantIds = [...new Set(items.flatMap((q) => (q.grantId !== null ? [q.grantId] : [])))];
      // The one-per-grant rule, judged here (under the chain lock, so on every broker) rather than by the unique
      // index alone: a refused INSERT in the middle of the batch would leave the records after it linked to a
      // record that is not there. The index stays as the last line of defence.
      const stored = new Map<string, AuditRecord>();
      for (let i = 0; i < grantIds.length; i += 200) {
        const part = grantIds.slice(i, i + 200);
        const rows = await tx.all<Row>(`SELECT * FROM audit_log WHERE grant_id IN (${part.map(() => '?').join(',')})`, part);
        for (const r of rows) stored.set(`${r.kind}\n${r.grant_id}`, toRecord(r));
      }
      for (const q of items) {
        if (q.grantId !== null) {
          const k = `${q.kind}\n${q.grantId}`;
          const earlier = taken.get(k) ?? stored.get(k);
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
        await this.store(tx, recs);
        await this.setHead(tx, end.seq, end.hash, signHead(this.key.privateKey, end.seq, end.hash));
      }
      return out;
    });
  }

  /**
   * Appends one record, signed, and moves the signed head over it, in one transaction holding the chain lock (so
   * two brokers on the same database can never both append after the same record). Transcripts waiting in the
   * batch are stored first, so records keep the order they were appended in.
   */
  append(input: AppendInput): Promise<AuditRecord> {
    this.takeBatch();
    return this.serial(() => this.appendOne(input));
  }

  /**
   * Appends a record with the others appended in this turn of the event loop: they are stored together right
   * after it (setImmediate), in one transaction with one record signature (on the batch's last record) and one
   * head signature, and the promise settles then. Resolves only once the record and a signed head covering it are
   * committed, so an upload is acknowledged only when it is stored under signatures. When the grant already has a
   * record of this kind (stored, or earlier in the same batch) nothing is appended and that record comes back
   * with `existed: true`.
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
        this.takeBatch();
      });
    });
  }

  /** Stores the waiting batch now; resolves when it is committed (or refused). */
  flush(): Promise<void> {
    return this.takeBatch();
  }

  /** Hands the waiting batch to the append sequence (append does, so the order of appends is kept). */
  private takeBatch(): Promise<void> {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = null;
    }
    const items = this.queue;
    if (!items.length) return this.tail.then(() => {});
    this.queue = [];
    return this.serial(async () => {
      let out: Appended[];
      try {
        // A database closed in the meantime: nothing was stored and nobody is told it was.
        if (this.db.closed) throw new Error('audit log: the database was closed before the batch was stored');
        out = await this.appendMany(items);
      } catch (e) {
        for (const q of items) q.reject(e);
        return;
      }
      items.forEach((q, i) => q.resolve(out[i]!));
    });
  }

  /**
   * Run by the broker at start (createAuditService), never by a verifier. Brokers before batched record signatures
   * appended transcripts and signed the head after the transaction; one that stopped in between left records
   * after the signed head, none of them acknowledged. They are covered again only if each links to the head and
   * is covered by this broker's record signatures; anything else is left for `audit verify` to report. Returns
   * whether the head was moved.
   */
  async repairHead(): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.lock(CHAIN_LOCK);
      const last = await this.last(tx);
      const head = ((await tx.get<AuditHead>('SELECT seq, hash, sig FROM audit_head WHERE one = 1')) ?? null);
      if (!last || (head && head.seq >= last.seq)) return false;
      const verifier = new ChainVerifier(this.key.publicKey, head !== null);
      const rows = await tx.all<Row>('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq', [head ? head.seq : 0]);
      for (const row of rows) {
        const r = toRecord(row);
        if (head && r.seq === head.seq && r.hash !== head.hash) return false;
        if (!verifier.push(r)) return false;
      }
      const result = verifier.result();
      if (!result.ok || result.headHash !== last.hash) return false;
      await this.setHead(tx, last.seq, last.hash, signHead(this.key.privateKey, last.seq, last.hash));
      return true;
    });
  }

  async get(id: string): Promise<AuditRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM audit_log WHERE id = ?', [id]);
    return r && toRecord(r);
  }

  async getByGrant(grantId: string, kind: AuditKind = 'transcript'): Promise<AuditRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM audit_log WHERE grant_id = ? AND kind = ?', [grantId, kind]);
    return r && toRecord(r);
  }

  /** The stored signed head. Records and the head over them are committed together, so it covers every stored record. */
  async head(): Promise<AuditHead | null> {
    return (await this.db.get<AuditHead>('SELECT seq, hash, sig FROM audit_head WHERE one = 1')) ?? null;
  }

  async count(): Promise<number> {
    return Number((await this.db.get<{ n: number }>('SELECT count(*) AS n FROM audit_log'))?.n ?? 0);
  }

  /** Records in chain order, read a page at a time (at most one page in memory). */
  async *iterate(filter: RecordFilter = {}): AsyncGenerator<AuditRecord> {
    let left = filter.limit ? Math.max(1, Math.min(100_000, Math.floor(filter.limit))) : Infinity;
    const { limit: _l, afterSeq, ...rest } = filter;
    for await (const r of this.scan({ ...rest, ...(afterSeq !== undefined ? { afterSeq } : {}) })) {
      if (left-- <= 0) return;
      yield r;
    }
  }

  /** Every record of the filter, in chain order (tests and small logs; iterate() streams). */
  async records(filter: RecordFilter = {}): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for await (const r of this.iterate(filter)) out.push(r);
    return out;
  }

  /**
   * Records in chain order, read a page at a time: no statement stays open between pages, so a consumer may await
   * between records (HTTP streaming, worker threads) while the broker keeps using the database.
   */
  async *scan(filter: Omit<RecordFilter, 'limit'> & { upToSeq?: number } = {}, pageSize = 2048): AsyncGenerator<AuditRecord> {
    const { sql, args } = where({ ...filter, afterSeq: filter.afterSeq ?? 0 });
    const upTo = filter.upToSeq !== undefined ? ' AND seq <= ?' : '';
    const size = Math.max(1, Math.floor(pageSize));
    const seqArg = args.length - 1; // where() put afterSeq last
    for (;;) {
      const rows = await this.db.all<Row>(`SELECT * FROM audit_log${sql}${upTo} ORDER BY seq LIMIT ${size}`, [
        ...args,
        ...(filter.upToSeq !== undefined ? [filter.upToSeq] : []),
      ]);
      for (const r of rows) yield toRecord(r);
      if (rows.length < size) return;
      args[seqArg] = rows[rows.length - 1]!.seq;
    }
  }

  /** Newest first, for listings. */
  async list(filter: RecordFilter = {}): Promise<AuditRecord[]> {
    const { sql, args } = where(filter);
    const limit = Math.max(1, Math.min(10_000, Math.floor(filter.limit ?? 100)));
    return (await this.db.all<Row>(`SELECT * FROM audit_log${sql} ORDER BY seq DESC LIMIT ${limit}`, args)).map(toRecord);
  }

  /** Grant ids among `ids` that have a transcript in the log. */
  async reportedGrants(ids: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const rows = await this.db.all<{ grant_id: string }>(
        `SELECT grant_id FROM audit_log WHERE kind = 'transcript' AND grant_id IN (${part.map(() => '?').join(',')})`,
        part,
      );
      for (const r of rows) out.add(r.grant_id);
    }
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
