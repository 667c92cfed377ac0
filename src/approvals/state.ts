import type { ApprovalSummary } from '../api/types.js';
import { GuardError } from '../errors.js';
import type { Caller, Decision } from '../policy/types.js';

/**
 * The approval rules as pure functions over a stored row: who may decide, when a quorum is met, when a request
 * expires, when an approval may be used. No SQL and no clock of their own (the time is an argument), so every rule
 * is tested without SQLite (test/approvals/state.test.ts). approvals/store.ts persists rows; approvals/service.ts
 * runs each transition inside one IMMEDIATE transaction and notifies.
 */

export type ApprovalStatus = ApprovalSummary['status'];
export type StoredStatus = 'pending' | 'approved' | 'denied' | 'used' | 'withdrawn';

/** One row of `approval_requests` (approvals/schema.ts). Times are milliseconds since the epoch. */
export interface ApprovalRow {
  id: string;
  status: StoredStatus;
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
export interface Quorum {
  groups: string[];
  count: number;
}

/** An approval already recorded: who, and their groups when they voted (null for votes stored before v2). */
export interface Vote {
  actor: string;
  groups: string[] | null;
}

/** The parsed call as stored (JSON in `call`): exactly the summary fields the approver is shown. */
export type StoredCall = Pick<ApprovalSummary, 'argv' | 'region' | 'service' | 'operation' | 'actions' | 'permissions' | 'resources' | 'risks' | 'parameters'>;

/** Bounds on free text so a request cannot be used to fill the store or a chat channel. */
export const MAX_TEXT = 1000;

/** Stored status, with pending/approved past their deadline read as expired (the deadline is exclusive). */
export function effective(r: Pick<ApprovalRow, 'status' | 'expires_at'>, now: number): ApprovalStatus {
  if ((r.status === 'pending' || r.status === 'approved') && now >= r.expires_at) return 'expired';
  return r.status;
}

export function inGroups(c: Pick<Caller, 'groups'>, groups: readonly string[]): boolean {
  return c.groups.some((g) => groups.includes(g));
}

/**
 * The quorums a decision asks for. Several approve rules may match one call: each keeps its own quorum and all
 * must be met (the policy engine's `requirements`); one rule is the single {groups, count}. `union` is what the
 * request shows as its approver groups and required count; `quorums` is null for a single rule.
 */
export function quorumsOf(decision: Pick<Decision, 'rule' | 'approval'>): { union: Quorum; quorums: Quorum[] | null } | GuardError {
  const req = decision.approval;
  const rule = decision.rule ?? '(default)';
  const asked = req?.requirements && req.requirements.length > 1 ? req.requirements : req ? [{ groups: req.groups, count: req.count }] : [];
  if (asked.length === 0 || asked.some((q) => !Array.isArray(q.groups) || q.groups.length === 0)) {
    return new GuardError('config_invalid', `rule ${rule} asks for approval but names no approver groups`);
  }
  for (const q of asked) {
    if (!Number.isInteger(q.count) || q.count < 1) {
      return new GuardError('config_invalid', `rule ${rule} asks for ${q.count} approvals; must be a whole number ≥ 1`);
    }
  }
  const union = { groups: [...new Set(asked.flatMap((q) => q.groups))].sort(), count: Math.max(...asked.map((q) => q.count)) };
  const normalized = asked.map((q) => ({ groups: [...new Set(q.groups)].sort(), count: q.count }));
  return { union, quorums: normalized.length > 1 ? normalized : null };
}

/**
 * Whether the distinct approvers so far meet the request's quorum: `required` of them, or — when several rules
 * asked — for every rule, its count of approvers who were in one of its groups when they voted.
 */
export function quorumMet(r: Pick<ApprovalRow, 'required' | 'requirements'>, votes: readonly Vote[]): boolean {
  if (!r.requirements) return new Set(votes.map((v) => v.actor)).size >= r.required;
  const quorums = JSON.parse(r.requirements) as Quorum[];
  return quorums.every((q) => {
    const eligible = votes.filter((v) => (v.groups ?? []).some((g) => q.groups.includes(g)));
    return new Set(eligible.map((v) => v.actor)).size >= q.count;
  });
}

/** Common checks before an approve/deny, in order: not self, eligible, still pending. */
export function decidable(r: ApprovalRow, approver: Caller, now: number, verb: 'approve' | 'deny'): GuardError | undefined {
  const id = r.id;
  if (r.requester === approver.subject) {
    return new GuardError('self_approval', `approval ${id}: you cannot ${verb} your own request${verb === 'deny' ? ' (withdraw it instead)' : ''}`, {
      details: { id },
    });
  }
  const groups = JSON.parse(r.approver_groups) as string[];
  if (!inGroups(approver, groups)) {
    return new GuardError('not_approver', `approval ${id}: only members of ${groups.join(', ')} can ${verb} it`, { details: { id, groups } });
  }
  const status = effective(r, now);
  if (status === 'expired') return expiredError(id);
  if (status !== 'pending') return closedError(id, status);
  return undefined;
}

/**
 * One approval by `approver`, given the votes already recorded. Approvers must belong to one of the rule's groups
 * and may never be the requester, whatever their groups; each approver counts once. Returns the row after the
 * vote: `approved` (usable until now + approvedTtlMs) when the quorum is met with it, else still `pending`.
 */
export function approve(r: ApprovalRow, votes: readonly Vote[], approver: Caller, now: number, approvedTtlMs: number): ApprovalRow | GuardError {
  const refused = decidable(r, approver, now, 'approve');
  if (refused) return refused;
  if (votes.some((v) => v.actor === approver.subject)) {
    return new GuardError('approval_duplicate', `approval ${r.id}: you have already approved it; it needs ${r.required} distinct approvers`, {
      details: { id: r.id },
    });
  }
  if (!quorumMet(r, [...votes, { actor: approver.subject, groups: [...approver.groups] }])) return r;
  return { ...r, status: 'approved', decided_at: now, expires_at: now + approvedTtlMs };
}

/** A denial by any eligible approver is final, even after some approvals. */
export function deny(r: ApprovalRow, approver: Caller, now: number): ApprovalRow | GuardError {
  return decidable(r, approver, now, 'deny') ?? { ...r, status: 'denied', decided_at: now };
}

/** Only the requester may withdraw, while the request is pending or approved and unused. */
export function withdraw(r: ApprovalRow, requester: Caller, now: number): ApprovalRow | GuardError {
  if (r.requester !== requester.subject) {
    return new GuardError('forbidden', `approval ${r.id}: only its requester can withdraw it`, { details: { id: r.id } });
  }
  const status = effective(r, now);
  if (status === 'expired') return expiredError(r.id);
  if (status !== 'pending' && status !== 'approved') return closedError(r.id, status);
  return { ...r, status: 'withdrawn', decided_at: r.decided_at ?? now };
}

export interface UseAttempt {
  requester: Caller;
  target: string;
  /** bindingHash of the call being run (approvals/binding.ts). */
  bindingHash: string;
  /** The call's argv as it would be stored (masked), to say whether the command or only its content differs. */
  shownArgv: readonly string[];
}

/**
 * Using an approval for a call: it belongs to this requester, is approved, has not expired, has not been used, and
 * the call's target and binding hash match. Returns the row marked used, or why not: approval_mismatch (another
 * person, target or call), approval_pending, approval_denied, approval_closed (withdrawn), approval_used,
 * approval_expired. `denial` is read only when the message needs it.
 */
export function use(
  r: ApprovalRow,
  attempt: UseAttempt,
  now: number,
  grantId: string | null,
  denial: () => { by: string; comment?: string } | undefined,
): ApprovalRow | GuardError {
  const id = r.id;
  if (r.requester !== attempt.requester.subject) {
    return new GuardError('approval_mismatch', `approval ${id} was given to another person; ask for your own approval`, {
      details: { id, field: 'requester' },
    });
  }
  const status = effective(r, now);
  switch (status) {
    case 'pending':
      return new GuardError('approval_pending', `approval ${id} is still waiting for approval`, { details: { id } });
    case 'denied': {
      const d = denial();
      return new GuardError('approval_denied', `approval ${id} was denied by ${d?.by ?? 'an approver'}${d?.comment ? `: ${d.comment}` : ''}`, {
        details: { id, by: d?.by, comment: d?.comment },
      });
    }
    case 'withdrawn':
      return closedError(id, status);
    case 'used':
      return new GuardError('approval_used', `approval ${id} has already been used; an approval lets its call run once`, { details: { id } });
    case 'expired':
      return expiredError(id);
    case 'approved':
      break;
  }
  if (r.target !== attempt.target) {
    return new GuardError('approval_mismatch', `approval ${id} is for target ${r.target}, not ${attempt.target}`, {
      details: { id, field: 'target' },
    });
  }
  if (attempt.bindingHash !== r.binding_hash) {
    const stored = (JSON.parse(r.call) as StoredCall).argv;
    const field = JSON.stringify(stored) === JSON.stringify(attempt.shownArgv) ? 'call' : 'argv';
    return new GuardError(
      'approval_mismatch',
      field === 'argv'
        ? `approval ${id} is for another command (${stored.join(' ')}); it lets exactly that call run`
        : `approval ${id} is for the same command with other content (region, files or parameters differ)`,
      { details: { id, field } },
    );
  }
  return { ...r, status: 'used', used_at: now, grant_id: grantId };
}

/** Requester, eligible approvers and auditors may read a request. */
export function canView(s: Pick<ApprovalSummary, 'requester' | 'approverGroups'>, caller: Caller, auditorGroups: readonly string[]): boolean {
  return s.requester === caller.subject || inGroups(caller, s.approverGroups) || inGroups(caller, auditorGroups);
}

/** Whether `caller` may approve or deny `s` now. */
export function canDecide(s: Pick<ApprovalSummary, 'status' | 'requester' | 'approverGroups' | 'approvals'>, caller: Caller): boolean {
  return s.status === 'pending' && s.requester !== caller.subject && inGroups(caller, s.approverGroups) && !s.approvals.some((a) => a.by === caller.subject);
}

/** A comment or reason: trimmed, at most MAX_TEXT characters; empty is none. */
export function text(v: string | undefined, field: string): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string') throw new GuardError('usage', `${field} must be text`);
  const t = v.trim();
  if (t.length > MAX_TEXT) throw new GuardError('usage', `${field} is ${t.length} characters long; at most ${MAX_TEXT} are allowed`);
  return t.length ? t : null;
}

export function notFound(id: string): GuardError {
  return new GuardError('approval_not_found', `approval ${id} does not exist`, { details: { id } });
}

function expiredError(id: string): GuardError {
  return new GuardError('approval_expired', `approval ${id} has expired; run the command again to ask for a new approval`, {
    details: { id },
  });
}

function closedError(id: string, status: ApprovalStatus): GuardError {
  return new GuardError('approval_closed', `approval ${id} is ${status}; nothing more can be decided on it`, {
    details: { id, status },
  });
}

/** An event as the summary shows it. */
export interface SummaryEvent {
  kind: string;
  actor: string;
  at: number;
  comment: string | null;
}

/** The API's view of a row and its approve/deny events (in order). */
export function toSummary(r: ApprovalRow, events: readonly SummaryEvent[], now: number): ApprovalSummary {
  const call = JSON.parse(r.call) as StoredCall;
  const iso = (ms: number) => new Date(ms).toISOString();
  const withComment = (e: SummaryEvent) => ({ by: e.actor, at: iso(e.at), ...(e.comment ? { comment: e.comment } : {}) });
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
  if (call.parameters) s.parameters = call.parameters;
  if (denial) s.denial = withComment(denial);
  if (r.requester_name) s.requesterName = r.requester_name;
  if (r.rule_source) s.ruleSource = r.rule_source;
  if (r.status === 'withdrawn' && r.decided_at !== null) s.withdrawnAt = iso(r.decided_at);
  if (r.used_at !== null) s.usedAt = iso(r.used_at);
  if (r.grant_id) s.grantId = r.grant_id;
  return s;
}
