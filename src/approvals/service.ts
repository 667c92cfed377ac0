import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { ApprovalSummary } from '../broker/api-types.js';
import { GuardError } from '../errors.js';
import type { ParsedInvocation } from '../invocation/types.js';
import type { Caller, Decision } from '../policy/types.js';
import { bindingHash, sortPermissions } from './binding.js';
import { maskArgv } from '../masking/argv.js';
import { migrateApprovals } from './schema.js';

export type ApprovalStatus = ApprovalSummary['status'];
export type ApprovalEventKind = 'opened' | 'approved' | 'denied' | 'withdrawn' | 'used';

/** What the service tells the notifier after a change has been committed. */
export interface ApprovalNotification {
  kind: ApprovalEventKind;
  /** ISO-8601 time of the event. */
  at: string;
  /** Subject of who did it (the requester for opened/withdrawn/used). */
  actor: string;
  comment?: string;
  approval: ApprovalSummary;
}

export interface ApprovalServiceOptions {
  /** Milliseconds since the epoch (injected so tests can freeze and move time). */
  now?: () => number;
  /** New request ids. Default: `apr_` + 20 random base32 characters (100 bits). */
  newId?: () => string;
  /** How long a request waits for its approvals. Default 15 minutes. */
  pendingTtlMs?: number;
  /** How long an approved request may wait to be used, counted from the final approval. Default 15 minutes. */
  approvedTtlMs?: number;
  /** Argv as shown and stored (secret values masked). Default: the transcript module's `maskArgv(canonicalArgv)`. */
  displayArgv?: (invocation: ParsedInvocation) => string[];
  /** Called after each committed change; must not block (see webhook.ts). Errors are swallowed. */
  notify?: (event: ApprovalNotification) => void;
  /** Groups whose members may read every request (never decide). Default `['auditors']`. */
  auditorGroups?: string[];
  /** Open (pending) requests one requester may have at a time, so approvers cannot be flooded. Default 20. */
  maxPendingPerRequester?: number;
}

export interface OpenInput {
  requester: Caller;
  invocation: ParsedInvocation;
  /** Target name (as in the broker config). */
  target: string;
  /** The policy decision (effect `approve`) that asked for this approval. */
  decision: Pick<Decision, 'rule' | 'reason' | 'source' | 'approval'>;
  /** The requester's reason (may be empty when none was given). */
  reason: string;
}

export interface ConsumeInput {
  requester: Caller;
  invocation: ParsedInvocation;
  target: string;
  /** Grant the approval is used for, kept with the request for the audit trail. */
  grantId?: string;
}

export interface ListOptions {
  status?: ApprovalStatus;
  /** Only requests this caller may decide now: in an approver group, not their own, still pending. */
  forApprover?: Caller;
  /** Only requests this caller may see: their own, those they are an eligible approver of, or all for auditors. */
  visibleTo?: Caller;
  /** Only requests of this subject. */
  requester?: string;
  /** Newest first; default 100, at most 1000. */
  limit?: number;
}

export const DEFAULT_PENDING_TTL_MS = 15 * 60_000;
export const DEFAULT_APPROVED_TTL_MS = 15 * 60_000;
/** Bounds on free text so a request cannot be used to fill the store or a chat channel. */
export const MAX_TEXT = 1000;

interface Row {
  id: string;
  status: 'pending' | 'approved' | 'denied' | 'used' | 'withdrawn';
  binding_hash: string;
  requester: string;
  requester_name: string | null;
  target: string;
  call: string;
  rule: string | null;
  rule_reason: string;
  rule_source: string | null;
  reason: string;
  approver_groups: string;
  required: number;
  requirements: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  used_at: number | null;
  grant_id: string | null;
}

/** One approve rule's quorum: `count` distinct approvers from any of `groups`. */
interface Quorum {
  groups: string[];
  count: number;
}

interface EventRow {
  approval_id: string;
  kind: ApprovalEventKind | 'refused';
  actor: string;
  actor_name: string | null;
  at: number;
  comment: string | null;
  actor_groups?: string | null;
}

/** The parsed call as stored (JSON in `call`): exactly the summary fields the approver is shown. */
type StoredCall = Pick<ApprovalSummary, 'argv' | 'region' | 'service' | 'operation' | 'actions' | 'permissions' | 'resources' | 'risks'>;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function defaultId(): string {
  const bytes = randomBytes(20);
  let s = '';
  for (const b of bytes) s += BASE32[b & 31];
  return `apr_${s}`;
}

/**
 * Approval requests for calls whose policy decision is `approve`. Every state change runs in an IMMEDIATE
 * transaction (SQLite takes the write lock before reading), so a check and the write it guards can never be
 * interleaved with another connection's — the basis of "used exactly once" when several broker processes share
 * the file.
 */
export class ApprovalService {
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly pendingTtlMs: number;
  private readonly approvedTtlMs: number;
  private readonly displayArgv: (inv: ParsedInvocation) => string[];
  private readonly notifyFn: ((e: ApprovalNotification) => void) | undefined;
  readonly auditorGroups: readonly string[];
  private readonly maxPending: number;

  constructor(
    private readonly db: Database,
    opts: ApprovalServiceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.newId = opts.newId ?? defaultId;
    this.pendingTtlMs = positive(opts.pendingTtlMs ?? DEFAULT_PENDING_TTL_MS, 'pendingTtlMs');
    this.approvedTtlMs = positive(opts.approvedTtlMs ?? DEFAULT_APPROVED_TTL_MS, 'approvedTtlMs');
    this.displayArgv = opts.displayArgv ?? ((inv) => maskArgv(inv.canonicalArgv));
    this.notifyFn = opts.notify;
    this.auditorGroups = opts.auditorGroups ?? ['auditors'];
    this.maxPending = positive(opts.maxPendingPerRequester ?? 20, 'maxPendingPerRequester');
    // Waiting briefly for another connection's write lock beats failing a decision with SQLITE_BUSY.
    db.pragma('busy_timeout = 5000');
    migrateApprovals(db);
  }

  /**
   * Opens a request for exactly this call. If the same requester already has a pending or approved (unused,
   * unexpired) request for the very same call, that one is returned instead of asking the approvers twice.
   */
  open(input: OpenInput): ApprovalSummary {
    const req = input.decision.approval;
    const rule = input.decision.rule ?? '(default)';
    // Several approve rules may match one call: each keeps its own quorum and all must be met (the policy
    // engine's `requirements`); one rule is the single {groups, count}.
    const quorums = req?.requirements && req.requirements.length > 1 ? req.requirements : req ? [{ groups: req.groups, count: req.count }] : [];
    if (quorums.length === 0 || quorums.some((q) => !Array.isArray(q.groups) || q.groups.length === 0)) {
      throw new GuardError('config_invalid', `rule ${rule} asks for approval but names no approver groups`);
    }
    for (const q of quorums) {
      if (!Number.isInteger(q.count) || q.count < 1) {
        throw new GuardError('config_invalid', `rule ${rule} asks for ${q.count} approvals; must be a whole number ≥ 1`);
      }
    }
    const union = { groups: [...new Set(quorums.flatMap((q) => q.groups))].sort(), count: Math.max(...quorums.map((q) => q.count)) };
    const normalized = quorums.map((q) => ({ groups: [...new Set(q.groups)].sort(), count: q.count }));
    return this.openWith(input, union, normalized.length > 1 ? normalized : null);
  }

  private openWith(input: OpenInput, req: { groups: string[]; count: number }, quorums: Quorum[] | null): ApprovalSummary {
    const reason = text(input.reason, 'reason') ?? '';
    const inv = input.invocation;
    const hash = bindingHash({ requester: input.requester.subject, target: input.target, invocation: inv });
    const call: StoredCall = {
      argv: this.displayArgv(inv),
      region: inv.region,
      service: inv.service,
      operation: inv.operation,
      actions: [...new Set(inv.actions)].sort(),
      permissions: sortPermissions(inv.permissions),
      resources: [...new Set(inv.resources)].sort(),
      risks: [...inv.risks],
    };
    const result = this.db
      .transaction((): { row: Row; opened: boolean } => {
        const now = this.now();
        const existing = this.db
          .prepare(
            `SELECT * FROM approval_requests
              WHERE binding_hash = ? AND requester = ? AND status IN ('pending','approved') AND expires_at > ?
              ORDER BY created_at DESC LIMIT 1`,
          )
          .get(hash, input.requester.subject, now) as Row | undefined;
        if (existing) {
          // Asking again for the same call may add the reason the first ask lacked (the CLI prompts for it after
          // learning that the call needs approval); a reason once given is never replaced.
          if (!existing.reason && reason && existing.status === 'pending') {
            this.db.prepare(`UPDATE approval_requests SET reason = ? WHERE id = ? AND reason = ''`).run(reason, existing.id);
            return { row: { ...existing, reason }, opened: false };
          }
          return { row: existing, opened: false };
        }
        const open = (
          this.db
            .prepare(`SELECT COUNT(*) AS n FROM approval_requests WHERE requester = ? AND status = 'pending' AND expires_at > ?`)
            .get(input.requester.subject, now) as { n: number }
        ).n;
        if (open >= this.maxPending) {
          throw new GuardError(
            'forbidden',
            `you already have ${open} approval requests waiting; withdraw some (guard-aws approvals withdraw ID) or wait for decisions`,
            { details: { pending: open } },
          );
        }
        const id = this.newId();
        this.db
          .prepare(
            `INSERT INTO approval_requests (id, status, binding_hash, requester, requester_name, target, call, rule,
               rule_reason, rule_source, reason, approver_groups, required, requirements, created_at, expires_at)
             VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            hash,
            input.requester.subject,
            input.requester.name ?? null,
            input.target,
            JSON.stringify(call),
            input.decision.rule,
            input.decision.reason,
            input.decision.source ?? null,
            reason,
            JSON.stringify([...new Set(req.groups)].sort()),
            req.count,
            quorums ? JSON.stringify(quorums) : null,
            now,
            now + this.pendingTtlMs,
          );
        this.event(id, 'opened', input.requester, now, reason || null);
        return { row: this.row(id)!, opened: true };
      })
      .immediate();
    const summary = this.summarize(result.row);
    if (result.opened) this.emit('opened', input.requester.subject, result.row.created_at, reason || undefined, summary);
    return summary;
  }

  /** The request, or undefined. Visibility is the caller's business (see `canView`). */
  get(id: string): ApprovalSummary | undefined {
    const row = this.row(id);
    return row ? this.summarize(row) : undefined;
  }

  list(opts: ListOptions = {}): ApprovalSummary[] {
    const now = this.now();
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.status) {
      switch (opts.status) {
        case 'pending':
        case 'approved':
          where.push('status = ? AND expires_at > ?');
          args.push(opts.status, now);
          break;
        case 'expired':
          where.push(`status IN ('pending','approved') AND expires_at <= ?`);
          args.push(now);
          break;
        default:
          where.push('status = ?');
          args.push(opts.status);
      }
    }
    if (opts.requester !== undefined) {
      where.push('requester = ?');
      args.push(opts.requester);
    }
    if (opts.forApprover) {
      const groups = opts.forApprover.groups;
      where.push(
        `status = 'pending' AND expires_at > ? AND requester <> ?
         AND EXISTS (SELECT 1 FROM json_each(approver_groups) g WHERE g.value IN (SELECT value FROM json_each(?)))
         AND NOT EXISTS (SELECT 1 FROM approval_events e WHERE e.approval_id = approval_requests.id AND e.kind = 'approved' AND e.actor = ?)`,
      );
      args.push(now, opts.forApprover.subject, JSON.stringify(groups), opts.forApprover.subject);
    }
    if (opts.visibleTo && !this.isAuditor(opts.visibleTo)) {
      where.push(
        `(requester = ? OR EXISTS (SELECT 1 FROM json_each(approver_groups) g WHERE g.value IN (SELECT value FROM json_each(?))))`,
      );
      args.push(opts.visibleTo.subject, JSON.stringify(opts.visibleTo.groups));
    }
    const limit = Math.min(Math.max(1, Math.trunc(opts.limit ?? 100)), 1000);
    const rows = this.db
      .prepare(
        `SELECT * FROM approval_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY created_at DESC, id LIMIT ${limit}`,
      )
      .all(...args) as Row[];
    return this.summarizeAll(rows);
  }

  /** Requester, eligible approvers and auditors may read a request. */
  canView(s: ApprovalSummary, caller: Caller): boolean {
    return s.requester === caller.subject || inGroups(caller, s.approverGroups) || this.isAuditor(caller);
  }

  /** Whether `caller` may approve or deny `s` now. */
  canDecide(s: ApprovalSummary, caller: Caller): boolean {
    return (
      s.status === 'pending' &&
      s.requester !== caller.subject &&
      inGroups(caller, s.approverGroups) &&
      !s.approvals.some((a) => a.by === caller.subject)
    );
  }

  /**
   * Records one approval. Approvers must belong to one of the rule's groups and may never be the requester,
   * whatever their groups; each approver counts once. The request becomes `approved` when `required` distinct
   * approvers have said yes, and from then on must be used within `approvedTtlMs`.
   */
  approve(id: string, approver: Caller, comment?: string): ApprovalSummary {
    const note = text(comment, 'comment');
    const { row, at } = this.db
      .transaction(() => {
        const now = this.now();
        const r = this.decidable(id, approver, now, 'approve');
        const voted = this.db
          .prepare(`SELECT 1 FROM approval_events WHERE approval_id = ? AND kind = 'approved' AND actor = ?`)
          .get(id, approver.subject);
        if (voted) {
          throw new GuardError('approval_duplicate', `approval ${id}: you have already approved it; it needs ${r.required} distinct approvers`, {
            details: { id },
          });
        }
        this.event(id, 'approved', approver, now, note);
        if (this.quorumMet(r)) {
          this.db
            .prepare(`UPDATE approval_requests SET status = 'approved', decided_at = ?, expires_at = ? WHERE id = ? AND status = 'pending'`)
            .run(now, now + this.approvedTtlMs, id);
        }
        return { row: this.row(id)!, at: now };
      })
      .immediate();
    const summary = this.summarize(row);
    this.emit('approved', approver.subject, at, note ?? undefined, summary);
    return summary;
  }

  /**
   * Gives an approval back after `consume` when the broker could not issue the grant after all (STS refused or
   * failed): no credentials left the broker, so the approver's decision still stands for one run, within its
   * original expiry. Only a use with no grant recorded can be released; the release is itself recorded.
   */
  release(id: string, requester: Caller, why: string): void {
    this.db
      .transaction(() => {
        const changed = this.db
          .prepare(`UPDATE approval_requests SET status = 'approved', used_at = NULL WHERE id = ? AND status = 'used' AND grant_id IS NULL AND requester = ?`)
          .run(id, requester.subject).changes;
        if (changed) this.event(id, 'refused', requester, this.now(), `released: ${why}`.slice(0, MAX_TEXT));
      })
      .immediate();
  }

  /** A denial by any eligible approver is final, even after some approvals; it carries the approver's comment. */
  deny(id: string, approver: Caller, comment?: string): ApprovalSummary {
    const note = text(comment, 'comment');
    const { row, at } = this.db
      .transaction(() => {
        const now = this.now();
        this.decidable(id, approver, now, 'deny');
        this.event(id, 'denied', approver, now, note);
        this.db.prepare(`UPDATE approval_requests SET status = 'denied', decided_at = ? WHERE id = ?`).run(now, id);
        return { row: this.row(id)!, at: now };
      })
      .immediate();
    const summary = this.summarize(row);
    this.emit('denied', approver.subject, at, note ?? undefined, summary);
    return summary;
  }

  /** Only the requester may withdraw, while the request is pending or approved and unused. */
  withdraw(id: string, requester: Caller, comment?: string): ApprovalSummary {
    const note = text(comment, 'comment');
    const { row, at } = this.db
      .transaction(() => {
        const now = this.now();
        const r = this.row(id);
        if (!r) throw notFound(id);
        if (r.requester !== requester.subject) {
          throw new GuardError('forbidden', `approval ${id}: only its requester can withdraw it`, { details: { id } });
        }
        const status = effective(r, now);
        if (status === 'expired') throw expiredError(id);
        if (status !== 'pending' && status !== 'approved') throw closed(id, status);
        this.event(id, 'withdrawn', requester, now, note);
        this.db.prepare(`UPDATE approval_requests SET status = 'withdrawn', decided_at = COALESCE(decided_at, ?) WHERE id = ?`).run(now, id);
        return { row: this.row(id)!, at: now };
      })
      .immediate();
    const summary = this.summarize(row);
    this.emit('withdrawn', requester.subject, at, note ?? undefined, summary);
    return summary;
  }

  /**
   * Uses an approval for exactly the call it was given for, once. In one IMMEDIATE transaction: the request
   * exists, belongs to this requester, is approved, has not expired, has not been used, and the call's binding
   * hash matches — then it is marked used. Any refusal is recorded as a `refused` event and thrown as a
   * GuardError: approval_not_found, approval_mismatch (another person, target or call), approval_pending,
   * approval_denied, approval_closed (withdrawn), approval_used, approval_expired.
   */
  consume(id: string, input: ConsumeInput): ApprovalSummary {
    const outcome = this.db
      .transaction((): { row: Row; error?: GuardError; at: number } => {
        const now = this.now();
        const r = this.row(id);
        if (!r) throw notFound(id);
        const error = this.consumeError(r, input, now);
        if (error) {
          this.event(id, 'refused', input.requester, now, error.code);
          return { row: r, error, at: now };
        }
        this.db
          .prepare(`UPDATE approval_requests SET status = 'used', used_at = ?, grant_id = ? WHERE id = ? AND status = 'approved'`)
          .run(now, input.grantId ?? null, id);
        this.event(id, 'used', input.requester, now, input.grantId ?? null);
        return { row: this.row(id)!, at: now };
      })
      .immediate();
    if (outcome.error) throw outcome.error;
    const summary = this.summarize(outcome.row);
    this.emit('used', input.requester.subject, outcome.at, undefined, summary);
    return summary;
  }

  private consumeError(r: Row, input: ConsumeInput, now: number): GuardError | undefined {
    const id = r.id;
    if (r.requester !== input.requester.subject) {
      return new GuardError('approval_mismatch', `approval ${id} was given to another person; ask for your own approval`, {
        details: { id, field: 'requester' },
      });
    }
    const status = effective(r, now);
    switch (status) {
      case 'pending':
        return new GuardError('approval_pending', `approval ${id} is still waiting for approval`, { details: { id } });
      case 'denied': {
        const d = this.denialOf(id);
        return new GuardError('approval_denied', `approval ${id} was denied by ${d?.by ?? 'an approver'}${d?.comment ? `: ${d.comment}` : ''}`, {
          details: { id, by: d?.by, comment: d?.comment },
        });
      }
      case 'withdrawn':
        return closed(id, status);
      case 'used':
        return new GuardError('approval_used', `approval ${id} has already been used; an approval lets its call run once`, { details: { id } });
      case 'expired':
        return expiredError(id);
      case 'approved':
        break;
    }
    if (r.target !== input.target) {
      return new GuardError('approval_mismatch', `approval ${id} is for target ${r.target}, not ${input.target}`, {
        details: { id, field: 'target' },
      });
    }
    const hash = bindingHash({ requester: input.requester.subject, target: input.target, invocation: input.invocation });
    if (hash !== r.binding_hash) {
      const stored = (JSON.parse(r.call) as StoredCall).argv;
      const shown = this.displayArgv(input.invocation);
      const field = JSON.stringify(stored) === JSON.stringify(shown) ? 'call' : 'argv';
      return new GuardError(
        'approval_mismatch',
        field === 'argv'
          ? `approval ${id} is for another command (${stored.join(' ')}); it lets exactly that call run`
          : `approval ${id} is for the same command with other content (region, files or parameters differ)`,
        { details: { id, field } },
      );
    }
    return undefined;
  }

  /** Common checks before an approve/deny, in order: exists, not self, eligible, still pending. */
  private decidable(id: string, approver: Caller, now: number, verb: 'approve' | 'deny'): Row {
    const r = this.row(id);
    if (!r) throw notFound(id);
    if (r.requester === approver.subject) {
      throw new GuardError(
        'self_approval',
        `approval ${id}: you cannot ${verb} your own request${verb === 'deny' ? ' (withdraw it instead)' : ''}`,
        { details: { id } },
      );
    }
    const groups = JSON.parse(r.approver_groups) as string[];
    if (!inGroups(approver, groups)) {
      throw new GuardError('not_approver', `approval ${id}: only members of ${groups.join(', ')} can ${verb} it`, {
        details: { id, groups },
      });
    }
    const status = effective(r, now);
    if (status === 'expired') throw expiredError(id);
    if (status !== 'pending') throw closed(id, status);
    return r;
  }

  private isAuditor(c: Caller): boolean {
    return inGroups(c, this.auditorGroups);
  }

  private row(id: string): Row | undefined {
    return this.db.prepare('SELECT * FROM approval_requests WHERE id = ?').get(id) as Row | undefined;
  }

  private denialOf(id: string): { by: string; comment?: string } | undefined {
    const e = this.db
      .prepare(`SELECT actor, comment FROM approval_events WHERE approval_id = ? AND kind = 'denied' ORDER BY seq LIMIT 1`)
      .get(id) as { actor: string; comment: string | null } | undefined;
    return e ? { by: e.actor, ...(e.comment ? { comment: e.comment } : {}) } : undefined;
  }

  private event(id: string, kind: EventRow['kind'], actor: Caller, at: number, comment: string | null): void {
    this.db
      .prepare('INSERT INTO approval_events (approval_id, kind, actor, actor_name, at, comment, actor_groups) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, kind, actor.subject, actor.name ?? null, at, comment, kind === 'approved' ? JSON.stringify(actor.groups) : null);
  }

  /**
   * Whether the distinct approvers so far meet the request's quorum: `required` of them, or — when several rules
   * asked — for every rule, its count of approvers who were in one of its groups when they voted.
   */
  private quorumMet(r: Row): boolean {
    const votes = this.db
      .prepare(`SELECT actor, actor_groups FROM approval_events WHERE approval_id = ? AND kind = 'approved'`)
      .all(r.id) as { actor: string; actor_groups: string | null }[];
    if (!r.requirements) return new Set(votes.map((v) => v.actor)).size >= r.required;
    const quorums = JSON.parse(r.requirements) as Quorum[];
    return quorums.every((q) => {
      const eligible = votes.filter((v) => (JSON.parse(v.actor_groups ?? '[]') as string[]).some((g) => q.groups.includes(g)));
      return new Set(eligible.map((v) => v.actor)).size >= q.count;
    });
  }

  private emit(kind: ApprovalEventKind, actor: string, at: number, comment: string | undefined, approval: ApprovalSummary): void {
    if (!this.notifyFn) return;
    try {
      this.notifyFn({ kind, at: new Date(at).toISOString(), actor, ...(comment ? { comment } : {}), approval });
    } catch {
      // A notifier must never undo or block a decision that is already committed.
    }
  }

  private summarizeAll(rows: Row[]): ApprovalSummary[] {
    if (rows.length === 0) return [];
    const events = this.db
      .prepare(
        `SELECT approval_id, kind, actor, actor_name, at, comment FROM approval_events
          WHERE approval_id IN (SELECT value FROM json_each(?)) AND kind IN ('approved','denied') ORDER BY seq`,
      )
      .all(JSON.stringify(rows.map((r) => r.id))) as EventRow[];
    const byId = new Map<string, EventRow[]>();
    for (const e of events) {
      const list = byId.get(e.approval_id) ?? [];
      list.push(e);
      byId.set(e.approval_id, list);
    }
    const now = this.now();
    return rows.map((r) => toSummary(r, byId.get(r.id) ?? [], now));
  }

  private summarize(row: Row): ApprovalSummary {
    return this.summarizeAll([row])[0]!;
  }
}

function toSummary(r: Row, events: EventRow[], now: number): ApprovalSummary {
  const call = JSON.parse(r.call) as StoredCall;
  const iso = (ms: number) => new Date(ms).toISOString();
  const withComment = (e: EventRow) => ({ by: e.actor, at: iso(e.at), ...(e.comment ? { comment: e.comment } : {}) });
  const denial = events.find((e) => e.kind === 'denied');
  const s: ApprovalSummary = {
    id: r.id,
    status: effective(r, now),
    requester: r.requester,
    argv: call.argv,
    target: r.target,
    rule: r.rule,
    reason: r.reason,
    approverGroups: JSON.parse(r.approver_groups) as string[],
    required: r.required,
    ...(r.requirements ? { requirements: JSON.parse(r.requirements) as Quorum[] } : {}),
    approvals: events.filter((e) => e.kind === 'approved').map(withComment),
    createdAt: iso(r.created_at),
    expiresAt: iso(r.expires_at),
    region: call.region,
    service: call.service,
    operation: call.operation,
    actions: call.actions,
    permissions: call.permissions,
    resources: call.resources,
    risks: call.risks,
    ruleReason: r.rule_reason,
    bindingHash: r.binding_hash,
  };
  if (denial) s.denial = withComment(denial);
  if (r.requester_name) s.requesterName = r.requester_name;
  if (r.rule_source) s.ruleSource = r.rule_source;
  if (r.status === 'withdrawn' && r.decided_at !== null) s.withdrawnAt = iso(r.decided_at);
  if (r.used_at !== null) s.usedAt = iso(r.used_at);
  if (r.grant_id) s.grantId = r.grant_id;
  return s;
}

/** Stored status, with pending/approved past their deadline read as expired (the deadline is exclusive). */
function effective(r: Pick<Row, 'status' | 'expires_at'>, now: number): ApprovalStatus {
  if ((r.status === 'pending' || r.status === 'approved') && now >= r.expires_at) return 'expired';
  return r.status;
}

function inGroups(c: Caller, groups: readonly string[]): boolean {
  return c.groups.some((g) => groups.includes(g));
}

function notFound(id: string): GuardError {
  return new GuardError('approval_not_found', `approval ${id} does not exist`, { details: { id } });
}

function expiredError(id: string): GuardError {
  return new GuardError('approval_expired', `approval ${id} has expired; run the command again to ask for a new approval`, {
    details: { id },
  });
}

function closed(id: string, status: ApprovalStatus): GuardError {
  return new GuardError('approval_closed', `approval ${id} is ${status}; nothing more can be decided on it`, {
    details: { id, status },
  });
}

function text(v: string | undefined, field: string): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string') throw new GuardError('usage', `${field} must be text`);
  const t = v.trim();
  if (t.length > MAX_TEXT) throw new GuardError('usage', `${field} is ${t.length} characters long; at most ${MAX_TEXT} are allowed`);
  return t.length ? t : null;
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new GuardError('config_invalid', `approvals: ${name} must be a positive number`);
  return n;
}
