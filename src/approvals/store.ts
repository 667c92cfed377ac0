import type { Caller } from '../policy/types.js';
import type { Db, Sql } from '../store/db.js';
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
  /** Continue after this row (newest first): the `created_at` and `id` of the last row of the previous page. */
  after?: { createdAt: number; id: string };
  limit: number;
}

/** Rows are closed for good in these states (plus pending/approved past their expiry). */
const CLOSED = `(status IN ('denied','withdrawn','used') OR expires_at <= ?)`;

/** Index walks per listing statement (below SQLite's 500-term limit of a compound SELECT). */
const GROUP_WALKS = 100;
/** Parameters per listing statement (below SQLite's 32,766 and PostgreSQL's 65,535). */
const MAX_PARAMS = 20_000;

/**
 * The approval tables (approvals/schema.ts) and every SQL statement on them. No rules live here: the service
 * decides with approvals/state.ts and writes the resulting row. Callers wrap read-check-write sequences in
 * `transaction`, which hands them a store bound to that transaction. What makes a check and the write it guards
 * atomic across brokers: SQLite's transactions are IMMEDIATE (one writer at a time); on PostgreSQL the row being
 * decided is read `FOR UPDATE` (`rowForUpdate`) and a new request first takes its requester's advisory lock
 * (`lockRequester`), so two brokers never both pass the duplicate check or the pending cap.
 */
export class ApprovalStore {
  constructor(private readonly q: Sql) {}

  transaction<T>(fn: (s: ApprovalStore) => Promise<T>): Promise<T> {
    return (this.q as Db).transaction((tx) => fn(new ApprovalStore(tx)));
  }

  async row(id: string): Promise<ApprovalRow | undefined> {
    return this.q.get<ApprovalRow>('SELECT * FROM approval_requests WHERE id = ?', [id]);
  }

  /** The row, locked until the transaction ends (PostgreSQL; SQLite's IMMEDIATE transaction already excludes writers). */
  async rowForUpdate(id: string): Promise<ApprovalRow | undefined> {
    return this.q.get<ApprovalRow>(`SELECT * FROM approval_requests WHERE id = ?${this.q.dialect === 'postgres' ? ' FOR UPDATE' : ''}`, [id]);
  }

  /** Serialises opening requests of one requester across brokers (duplicate check + pending cap + insert). */
  async lockRequester(requester: string): Promise<void> {
    await this.q.lock(`approvals requester ${requester}`);
  }

  /** The newest open (pending or approved, unexpired) request of `requester` for the call with this binding hash. */
  async openFor(bindingHash: string, requester: string, now: number): Promise<ApprovalRow | undefined> {
    // Matches the partial index approval_requests_dup exactly: only this requester's open rows are read.
    return this.q.get<ApprovalRow>(
      `SELECT * FROM approval_requests
        WHERE requester = ? AND binding_hash = ? AND status IN ('pending','approved') AND expires_at > ?
        ORDER BY created_at DESC LIMIT 1`,
      [requester, bindingHash, now],
    );
  }

  /** Sets the reason of a request that has none (a reason once given is never replaced). */
  async addReason(id: string, reason: string): Promise<void> {
    await this.q.run(`UPDATE approval_requests SET reason = ? WHERE id = ? AND reason = ''`, [reason, id]);
  }

  async pendingCount(requester: string, now: number): Promise<number> {
    // approval_requests_pending: this requester's pending rows only, whatever the number of others'.
    const r = await this.q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM approval_requests WHERE requester = ? AND status = 'pending' AND expires_at > ?`, [
      requester,
      now,
    ]);
    return Number(r?.n ?? 0);
  }

  async insert(r: NewApprovalRow): Promise<void> {
    await this.q.run(
      `INSERT INTO approval_requests (id, status, binding_hash, requester, requester_name, target, call, rule,
         rule_reason, rule_source, reason, approver_groups, required, requirements, created_at, expires_at)
       VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        r.id, r.binding_hash, r.requester, r.requester_name, r.target, r.call, r.rule, r.rule_reason, r.rule_source,
        r.reason, r.approver_groups, r.required, r.requirements, r.created_at, r.expires_at,
      ],
    );
    // The per-group index rows (schema v4), in the caller's transaction with the request itself: a request is never
    // committed without them, so the group-filtered listings can never miss it.
    const groups = [...new Set(JSON.parse(r.approver_groups) as string[])];
    if (groups.length) {
      await this.q.run(
        `INSERT INTO approval_groups (approval_id, group_name, status, created_at) VALUES ${groups.map(() => "(?, ?, 'pending', ?)").join(', ')}`,
        groups.flatMap((g) => [r.id, g, r.created_at]),
      );
    }
  }

  /**
   * Writes a transition's result, guarded by the status it was computed from: if another writer changed the row
   * meanwhile (impossible inside one locked transaction, but never assumed) nothing is written.
   */
  async update(next: ApprovalRow, from: StoredStatus): Promise<boolean> {
    const changed =
      (await this.q.run(`UPDATE approval_requests SET status = ?, decided_at = ?, expires_at = ?, used_at = ?, grant_id = ? WHERE id = ? AND status = ?`, [
        next.status, next.decided_at, next.expires_at, next.used_at, next.grant_id, next.id, from,
      ])) === 1;
    if (changed && next.status !== from) await this.groupStatus(next.id, next.status);
    return changed;
  }

  /** The per-group rows follow their request's status, in the same transaction (schema v4). */
  private async groupStatus(id: string, status: StoredStatus): Promise<void> {
    await this.q.run('UPDATE approval_groups SET status = ? WHERE approval_id = ?', [status, id]);
  }

  /** Gives back a use that has no grant recorded (approved again, unused); whether anything changed. */
  async release(id: string, requester: string): Promise<boolean> {
    const changed =
      (await this.q.run(`UPDATE approval_requests SET status = 'approved', used_at = NULL WHERE id = ? AND status = 'used' AND grant_id IS NULL AND requester = ?`, [
        id,
        requester,
      ])) > 0;
    if (changed) await this.groupStatus(id, 'approved');
    return changed;
  }

  /** Approvals recorded so far, with the approver's groups at the time. */
  async votes(id: string): Promise<Vote[]> {
    const rows = await this.q.all<{ actor: string; actor_groups: string | null }>(
      `SELECT actor, actor_groups FROM approval_events WHERE approval_id = ? AND kind = 'approved' ORDER BY seq`,
      [id],
    );
    return rows.map((v) => ({ actor: v.actor, groups: v.actor_groups === null ? null : (JSON.parse(v.actor_groups) as string[]) }));
  }

  async denialOf(id: string): Promise<{ by: string; comment?: string } | undefined> {
    const e = await this.q.get<{ actor: string; comment: string | null }>(
      `SELECT actor, comment FROM approval_events WHERE approval_id = ? AND kind = 'denied' ORDER BY seq LIMIT 1`,
      [id],
    );
    return e ? { by: e.actor, ...(e.comment ? { comment: e.comment } : {}) } : undefined;
  }

  /** Appends an event; events are only ever inserted. An approval keeps the approver's groups (quorum per rule). */
  async event(id: string, kind: ApprovalEventKind | 'refused', actor: Caller, at: number, comment: string | null): Promise<void> {
    await this.q.run('INSERT INTO approval_events (approval_id, kind, actor, actor_name, at, comment, actor_groups) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      id, kind, actor.subject, actor.name ?? null, at, comment, kind === 'approved' ? JSON.stringify(actor.groups) : null,
    ]);
  }

  /**
   * Newest first, at most `limit` rows (plus one, to tell whether there is a next page). The ORDER BY matches the
   * (…, created_at, id) indexes, so the database walks an index and stops at the limit instead of sorting every
   * matching request.
   *
   * Group-filtered listings (what a caller may see, an approver's queue) cannot walk one index of approval_requests
   * and stop early: when few of many requests are in the caller's groups, that walk reads nearly all of them. They
   * are a union of walks instead, one per group of the caller over approval_groups (group_name[, status],
   * created_at, approval_id) and, for visibility, one over the caller's own requests (requester, created_at, id),
   * each applying every filter and stopping at limit + 1; the newest limit + 1 of that union are the newest of
   * the whole match. Each walk reads only its group's requests, so the cost follows the page size and the number
   * of the caller's groups, never the number of requests stored. The result is exactly what the single-statement
   * WHERE of the plain listing would return: the walks only choose which index finds the candidates.
   */
  async list(q: ListQuery): Promise<ApprovalRow[]> {
    const limit = Math.min(Math.max(1, Math.trunc(q.limit)), 1000);
    // Only pending, unexpired requests can be decided: a queue filtered by another status is empty, unread.
    if (q.decidableBy && q.status !== undefined && q.status !== 'pending') return [];
    // With a requester the listing walks that requester's index (few rows whatever the groups), group conditions
    // checked per row; without one, the caller's groups drive the walk.
    const drive = q.requester !== undefined ? undefined : q.decidableBy ? 'decidableBy' : q.visibleTo ? 'visibleTo' : undefined;
    if (!drive) {
      const { where, args } = this.filters(q, '');
      if (q.after) {
        // A row-value comparison: both databases walk the (…, created_at, id) index straight from the cursor.
        where.push('(created_at, id) < (?, ?)');
        args.push(q.after.createdAt, q.after.id);
      }
      args.push(limit + 1);
      return this.q.all<ApprovalRow>(
        `SELECT * FROM approval_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`,
        args,
      );
    }
    const groups = [...new Set(q[drive]!.groups)];
    // The driving condition holds by construction of each walk (its group, or the caller's own requests).
    const { where, args } = this.filters(q, 'r.', drive);
    const branches: { sql: string; args: unknown[] }[] = [];
    if (drive === 'visibleTo') {
      const w = ['r.requester = ?', ...where];
      const a: unknown[] = [q.visibleTo!.subject, ...args];
      if (q.after) {
        w.push('(r.created_at, r.id) < (?, ?)');
        a.push(q.after.createdAt, q.after.id);
      }
      branches.push({ sql: `SELECT r.* FROM approval_requests r WHERE ${w.join(' AND ')} ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, args: [...a, limit + 1] });
    }
    // The group rows carry their request's status, so a status filter narrows the walk itself (the queue: pending).
    const status = q.status === 'expired' ? undefined : (q.status ?? (drive === 'decidableBy' ? 'pending' : undefined));
    for (const g of groups) {
      const w = ['g.group_name = ?'];
      const a: unknown[] = [g];
      if (status) {
        w.push('g.status = ?');
        a.push(status);
      }
      if (q.after) {
        w.push('(g.created_at, g.approval_id) < (?, ?)');
        a.push(q.after.createdAt, q.after.id);
      }
      branches.push({
        sql: `SELECT r.* FROM approval_groups g JOIN approval_requests r ON r.id = g.approval_id
               WHERE ${[...w, ...where].join(' AND ')} ORDER BY g.created_at DESC, g.approval_id DESC LIMIT ?`,
        args: [...a, ...args, limit + 1],
      });
    }
    // One statement for up to GROUP_WALKS walks (SQLite caps a compound SELECT at 500 terms, and the parameters of
    // all walks must stay within both databases' limits); callers in more groups than that get several
    // statements, merged here by the same order.
    const perStatement = Math.max(1, Math.min(GROUP_WALKS, Math.floor(MAX_PARAMS / Math.max(...branches.map((b) => b.args.length), 1))));
    const rows: ApprovalRow[] = [];
    for (let i = 0; i < branches.length; i += perStatement) {
      const chunk = branches.slice(i, i + perStatement);
      rows.push(
        ...(await this.q.all<ApprovalRow>(
          `SELECT * FROM (${chunk.map((b, j) => `SELECT * FROM (${b.sql}) AS w${j}`).join(' UNION ')}) AS u ORDER BY created_at DESC, id DESC LIMIT ?`,
          [...chunk.flatMap((b) => b.args), limit + 1],
        )),
      );
    }
    if (branches.length <= perStatement) return rows;
    const seen = new Set<string>();
    return rows
      .filter((r) => !seen.has(r.id) && seen.add(r.id))
      // Ids are `apr_` + [a-z2-7] (service.ts): code-unit order is the databases' order of them, whatever the collation.
      .sort((x, y) => Number(y.created_at) - Number(x.created_at) || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0))
      .slice(0, limit + 1);
  }

  /**
   * The conditions of a listing on one request row (`t` is its alias prefix), except the cursor and the one
   * `skip`ped (a group walk's own condition, true by construction).
   */
  private filters(q: ListQuery, t: '' | 'r.', skip?: 'visibleTo' | 'decidableBy'): { where: string[]; args: unknown[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    const id = t ? 'r.id' : 'approval_requests.id';
    // Whether the request is in one of these groups: a primary-key probe of approval_groups.
    const inGroups = (groups: readonly string[]) => {
      const gs = [...new Set(groups)];
      if (!gs.length) return { sql: '1 = 0', args: [] };
      return { sql: `EXISTS (SELECT 1 FROM approval_groups x WHERE x.approval_id = ${id} AND x.group_name IN (${gs.map(() => '?').join(', ')}))`, args: gs };
    };
    switch (q.status) {
      case undefined:
        break;
      case 'pending':
      case 'approved':
        where.push(`${t}status = ? AND ${t}expires_at > ?`);
        args.push(q.status, q.now);
        break;
      case 'expired':
        where.push(`${t}status IN ('pending','approved') AND ${t}expires_at <= ?`);
        args.push(q.now);
        break;
      default:
        where.push(`${t}status = ?`);
        args.push(q.status);
    }
    if (q.requester !== undefined) {
      where.push(`${t}requester = ?`);
      args.push(q.requester);
    }
    if (q.decidableBy) {
      const g = skip === 'decidableBy' ? undefined : inGroups(q.decidableBy.groups);
      where.push(
        `${t}status = 'pending' AND ${t}expires_at > ? AND ${t}requester <> ?${g ? ` AND ${g.sql}` : ''}
         AND NOT EXISTS (SELECT 1 FROM approval_events e WHERE e.approval_id = ${id} AND e.kind = 'approved' AND e.actor = ?)`,
      );
      args.push(q.now, q.decidableBy.subject, ...(g?.args ?? []), q.decidableBy.subject);
    }
    // What one may decide one may see (its groups meet the request's) when the decider's groups are among the
    // viewer's: the queue then needs no second group check.
    const implied = q.visibleTo && q.decidableBy && q.decidableBy.subject === q.visibleTo.subject && q.decidableBy.groups.every((g) => q.visibleTo!.groups.includes(g));
    if (q.visibleTo && skip !== 'visibleTo' && !implied) {
      const g = inGroups(q.visibleTo.groups);
      where.push(`(${t}requester = ? OR ${g.sql})`);
      args.push(q.visibleTo.subject, ...g.args);
    }
    return { where, args };
  }

  /** The approve/deny events of these requests, grouped by request, in order. */
  async decisionEvents(ids: readonly string[]): Promise<Map<string, SummaryEvent[]>> {
    const byId = new Map<string, SummaryEvent[]>();
    if (ids.length === 0) return byId;
    const events = await this.q.all<SummaryEvent & { approval_id: string }>(
      `SELECT approval_id, kind, actor, at, comment FROM approval_events
        WHERE approval_id IN (${ids.map(() => '?').join(',')}) AND kind IN ('approved','denied') ORDER BY seq`,
      ids,
    );
    for (const e of events) {
      const list = byId.get(e.approval_id) ?? [];
      list.push(e);
      byId.set(e.approval_id, list);
    }
    return byId;
  }

  /**
   * Retention: deletes requests closed (decided, withdrawn, used or expired) before `before`, with their events, at
   * most `max` per call so one sweep never holds the database for long. The audit log keeps what was run with them.
   * Returns how many were deleted.
   */
  async purgeClosed(before: number, now: number, max = 1000): Promise<number> {
    const ids = (
      await this.q.all<{ id: string }>(
        `SELECT id FROM approval_requests WHERE ${CLOSED} AND COALESCE(used_at, decided_at, expires_at) < ? ORDER BY created_at LIMIT ?`,
        [now, before, max],
      )
    ).map((r) => r.id);
    if (!ids.length) return 0;
    const inList = ids.map(() => '?').join(',');
    return (this.q as Db).transaction(async (tx) => {
      await tx.run(`DELETE FROM approval_events WHERE approval_id IN (${inList})`, ids);
      // Only the group rows of requests that are still closed here (the same re-check as below).
      await tx.run(
        `DELETE FROM approval_groups WHERE approval_id IN (SELECT id FROM approval_requests WHERE id IN (${inList}) AND ${CLOSED})`,
        [...ids, now],
      );
      // Re-checked inside the transaction: a row cannot reopen, but never assume.
      return tx.run(`DELETE FROM approval_requests WHERE id IN (${inList}) AND ${CLOSED}`, [...ids, now]);
    });
  }
}
