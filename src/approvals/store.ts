import type { Database } from 'better-sqlite3';
import type { Caller } from '../policy/types.js';
import { migrateApprovals } from './schema.js';
import type { ApprovalRow, StoredStatus, SummaryEvent, Vote } from './state.js';

export type ApprovalEventKind = 'opened' | 'approved' | 'denied' | 'withdrawn' | 'used';

/** What a new request row holds (status `pending`, no decision yet). */
export type NewApprovalRow = Omit<ApprovalRow, 'status' | 'decided_at' | 'used_at' | 'grant_id'>;

/** Filters of a listing, already resolved to facts the SQL can check. */
export interface ListQuery {
  now: number;
  status?: ApprovalRow['status'] | 'expired';
  requester?: string;
  /** Pending, unexpired requests this subject may still approve: in one of its groups, not theirs, no vote yet. */
  decidableBy?: { subject: string; groups: readonly string[] };
  /** Requests of this subject or of one of these approver groups. */
  visibleTo?: { subject: string; groups: readonly string[] };
  limit: number;
}

/**
 * The approval tables (approvals/schema.ts) and every SQL statement on them. No rules live here: the service
 * decides with approvals/state.ts and writes the resulting row. Callers wrap read-check-write sequences in
 * `transaction` (IMMEDIATE: SQLite takes the write lock before reading, so a check and the write it guards are never
 * interleaved with another connection's).
 */
export class ApprovalStore {
  constructor(private readonly db: Database) {
    // Waiting briefly for another connection's write lock beats failing a decision with SQLITE_BUSY.
    db.pragma('busy_timeout = 5000');
    migrateApprovals(db);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  row(id: string): ApprovalRow | undefined {
    return this.db.prepare('SELECT * FROM approval_requests WHERE id = ?').get(id) as ApprovalRow | undefined;
  }

  /** The newest open (pending or approved, unexpired) request of `requester` for the call with this binding hash. */
  openFor(bindingHash: string, requester: string, now: number): ApprovalRow | undefined {
    return this.db
      .prepare(
        `SELECT * FROM approval_requests
          WHERE binding_hash = ? AND requester = ? AND status IN ('pending','approved') AND expires_at > ?
          ORDER BY created_at DESC LIMIT 1`,
      )
      .get(bindingHash, requester, now) as ApprovalRow | undefined;
  }

  /** Sets the reason of a request that has none (a reason once given is never replaced). */
  addReason(id: string, reason: string): void {
    this.db.prepare(`UPDATE approval_requests SET reason = ? WHERE id = ? AND reason = ''`).run(reason, id);
  }

  pendingCount(requester: string, now: number): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM approval_requests WHERE requester = ? AND status = 'pending' AND expires_at > ?`).get(requester, now) as {
        n: number;
      }
    ).n;
  }

  insert(r: NewApprovalRow): void {
    this.db
      .prepare(
        `INSERT INTO approval_requests (id, status, binding_hash, requester, requester_name, target, call, rule,
           rule_reason, rule_source, reason, approver_groups, required, requirements, created_at, expires_at)
         VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.id,
        r.binding_hash,
        r.requester,
        r.requester_name,
        r.target,
        r.call,
        r.rule,
        r.rule_reason,
        r.rule_source,
        r.reason,
        r.approver_groups,
        r.required,
        r.requirements,
        r.created_at,
        r.expires_at,
      );
  }

  /**
   * Writes a transition's result, guarded by the status it was computed from: if another writer changed the row
   * meanwhile (impossible inside one IMMEDIATE transaction, but never assumed) nothing is written.
   */
  update(next: ApprovalRow, from: StoredStatus): boolean {
    return (
      this.db
        .prepare(`UPDATE approval_requests SET status = ?, decided_at = ?, expires_at = ?, used_at = ?, grant_id = ? WHERE id = ? AND status = ?`)
        .run(next.status, next.decided_at, next.expires_at, next.used_at, next.grant_id, next.id, from).changes === 1
    );
  }

  /** Gives back a use that has no grant recorded (approved again, unused); whether anything changed. */
  release(id: string, requester: string): boolean {
    return (
      this.db
        .prepare(`UPDATE approval_requests SET status = 'approved', used_at = NULL WHERE id = ? AND status = 'used' AND grant_id IS NULL AND requester = ?`)
        .run(id, requester).changes > 0
    );
  }

  /** Approvals recorded so far, with the approver's groups at the time. */
  votes(id: string): Vote[] {
    const rows = this.db.prepare(`SELECT actor, actor_groups FROM approval_events WHERE approval_id = ? AND kind = 'approved'`).all(id) as {
      actor: string;
      actor_groups: string | null;
    }[];
    return rows.map((v) => ({ actor: v.actor, groups: v.actor_groups === null ? null : (JSON.parse(v.actor_groups) as string[]) }));
  }

  denialOf(id: string): { by: string; comment?: string } | undefined {
    const e = this.db.prepare(`SELECT actor, comment FROM approval_events WHERE approval_id = ? AND kind = 'denied' ORDER BY seq LIMIT 1`).get(id) as
      | { actor: string; comment: string | null }
      | undefined;
    return e ? { by: e.actor, ...(e.comment ? { comment: e.comment } : {}) } : undefined;
  }

  /** Appends an event; events are only ever inserted. An approval keeps the approver's groups (quorum per rule). */
  event(id: string, kind: ApprovalEventKind | 'refused', actor: Caller, at: number, comment: string | null): void {
    this.db
      .prepare('INSERT INTO approval_events (approval_id, kind, actor, actor_name, at, comment, actor_groups) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, kind, actor.subject, actor.name ?? null, at, comment, kind === 'approved' ? JSON.stringify(actor.groups) : null);
  }

  list(q: ListQuery): ApprovalRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    switch (q.status) {
      case undefined:
        break;
      case 'pending':
      case 'approved':
        where.push('status = ? AND expires_at > ?');
        args.push(q.status, q.now);
        break;
      case 'expired':
        where.push(`status IN ('pending','approved') AND expires_at <= ?`);
        args.push(q.now);
        break;
      default:
        where.push('status = ?');
        args.push(q.status);
    }
    if (q.requester !== undefined) {
      where.push('requester = ?');
      args.push(q.requester);
    }
    if (q.decidableBy) {
      where.push(
        `status = 'pending' AND expires_at > ? AND requester <> ?
         AND EXISTS (SELECT 1 FROM json_each(approver_groups) g WHERE g.value IN (SELECT value FROM json_each(?)))
         AND NOT EXISTS (SELECT 1 FROM approval_events e WHERE e.approval_id = approval_requests.id AND e.kind = 'approved' AND e.actor = ?)`,
      );
      args.push(q.now, q.decidableBy.subject, JSON.stringify(q.decidableBy.groups), q.decidableBy.subject);
    }
    if (q.visibleTo) {
      where.push(`(requester = ? OR EXISTS (SELECT 1 FROM json_each(approver_groups) g WHERE g.value IN (SELECT value FROM json_each(?))))`);
      args.push(q.visibleTo.subject, JSON.stringify(q.visibleTo.groups));
    }
    const limit = Math.min(Math.max(1, Math.trunc(q.limit)), 1000);
    return this.db
      .prepare(`SELECT * FROM approval_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ${limit}`)
      .all(...args) as ApprovalRow[];
  }

  /** The approve/deny events of these requests, grouped by request, in order. */
  decisionEvents(ids: readonly string[]): Map<string, SummaryEvent[]> {
    const byId = new Map<string, SummaryEvent[]>();
    if (ids.length === 0) return byId;
    const events = this.db
      .prepare(
        `SELECT approval_id, kind, actor, at, comment FROM approval_events
          WHERE approval_id IN (SELECT value FROM json_each(?)) AND kind IN ('approved','denied') ORDER BY seq`,
      )
      .all(JSON.stringify(ids)) as (SummaryEvent & { approval_id: string })[];
    for (const e of events) {
      const list = byId.get(e.approval_id) ?? [];
      list.push(e);
      byId.set(e.approval_id, list);
    }
    return byId;
  }
}
