import { randomBytes } from 'node:crypto';
import type { Db, Sql } from '../store/db.js';
import type { ApprovalSummary } from '../api/types.js';
import { GuardError } from '../errors.js';
import type { ParsedInvocation } from '../invocation/types.js';
import type { Caller, Decision, MaskingRules } from '../policy/types.js';
import { bindingHash, sortPermissions } from './binding.js';
import { shownParameters } from './parameters.js';
import { maskArgv } from '../masking/argv.js';
import * as state from './state.js';
import { ApprovalStore, type ApprovalEventKind } from './store.js';
import type { ApprovalRow, ApprovalStatus, StoredCall } from './state.js';

export type { ApprovalStatus } from './state.js';
export type { ApprovalEventKind } from './store.js';
export { MAX_TEXT } from './state.js';

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
  /**
   * Writes the event of each change into the webhook outbox inside the change's own transaction (src/approvals/
   * outbox.ts): a committed change always has its event, a rolled-back one never.
   */
  outbox?: (tx: Sql, event: ApprovalNotification) => Promise<unknown>;
  /** Groups whose members may read every request (never decide). Default `['auditors']`. */
  auditorGroups?: string[];
  /** Open (pending) requests one requester may have at a time, so approvers cannot be flooded. Default 20. */
  maxPendingPerRequester?: number;
  /** The policy files' masking fields and patterns, applied to the decoded parameters approvers are shown. */
  masking?: Partial<MaskingRules> | undefined;
  /** The web console's origin: summaries then carry `url`, the request's console page (CLI, webhook). */
  consoleUrl?: string;
  /**
   * How long closed requests (denied, withdrawn, used, expired) stay in the approval tables after they closed;
   * older ones are deleted by `purgeClosed` (the audit log keeps what was run with them). Default 30 days.
   */
  retainClosedMs?: number;
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
  /** Where the previous page ended (its `next`); opaque to callers. */
  cursor?: string;
}

/** One page of a listing: `next` continues after its last request, absent on the last page. */
export interface ApprovalPage {
  approvals: ApprovalSummary[];
  next?: string;
}

export const DEFAULT_PENDING_TTL_MS = 15 * 60_000;
export const DEFAULT_APPROVED_TTL_MS = 15 * 60_000;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function defaultId(): string {
  const bytes = randomBytes(20);
  let s = '';
  for (const b of bytes) s += BASE32[b & 31];
  return `apr_${s}`;
}

/** A transition's result: the new row, or the refusal to throw. */
function orThrow<T>(r: T | GuardError): T {
  if (r instanceof GuardError) throw r;
  return r;
}

/**
 * Approval requests for calls whose policy decision is `approve`: the orchestration. Each state change reads the
 * row, applies the pure transition of approvals/state.ts and writes the result in one IMMEDIATE transaction
 * (approvals/store.ts) — the basis of "used exactly once" when several broker processes share the file — and only
 * after the commit tells the notifier.
 */
export class ApprovalService {
  private readonly store: ApprovalStore;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly pendingTtlMs: number;
  private readonly approvedTtlMs: number;
  private readonly displayArgv: (inv: ParsedInvocation) => string[];
  private readonly notifyFn: ((e: ApprovalNotification) => void) | undefined;
  private readonly outboxFn: ApprovalServiceOptions['outbox'];
  private readonly db: Db;
  readonly auditorGroups: readonly string[];
  private readonly maxPending: number;
  private readonly masking: Partial<MaskingRules> | undefined;
  private readonly consoleUrl: string | undefined;
  readonly retainClosedMs: number;

  /** `db` must be migrated (src/broker/storage.ts migrateAll). */
  constructor(db: Db, opts: ApprovalServiceOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.newId = opts.newId ?? defaultId;
    this.pendingTtlMs = positive(opts.pendingTtlMs ?? DEFAULT_PENDING_TTL_MS, 'pendingTtlMs');
    this.approvedTtlMs = positive(opts.approvedTtlMs ?? DEFAULT_APPROVED_TTL_MS, 'approvedTtlMs');
    this.displayArgv = opts.displayArgv ?? ((inv) => maskArgv(inv.canonicalArgv));
    this.notifyFn = opts.notify;
    this.outboxFn = opts.outbox;
    this.db = db;
    this.auditorGroups = opts.auditorGroups ?? ['auditors'];
    this.maxPending = positive(opts.maxPendingPerRequester ?? 20, 'maxPendingPerRequester');
    this.masking = opts.masking;
    this.consoleUrl = opts.consoleUrl?.replace(/\/+$/, '');
    this.retainClosedMs = positive(opts.retainClosedMs ?? 30 * 86_400_000, 'retainClosedMs');
    this.store = new ApprovalStore(db);
  }

  /**
   * Opens a request for exactly this call. If the same requester already has a pending or approved (unused,
   * unexpired) request for the very same call, that one is returned instead of asking the approvers twice.
   */
  async open(input: OpenInput): Promise<ApprovalSummary> {
    const { union, quorums } = orThrow(state.quorumsOf(input.decision));
    const reason = state.text(input.reason, 'reason') ?? '';
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
      // Made from the same invocation whose params the binding hash covers: what is shown is what is bound.
      parameters: shownParameters(inv, this.masking),
    };
    const result = await this.transaction(async (store, tx): Promise<{ row: ApprovalRow; opened: boolean }> => {
      // Across brokers: one requester's duplicate check, pending count and insert happen one at a time.
      await store.lockRequester(input.requester.subject);
      const now = this.now();
      const existing = await store.openFor(hash, input.requester.subject, now);
      if (existing) {
        // Asking again for the same call may add the reason the first ask lacked (the CLI prompts for it after
        // learning that the call needs approval); a reason once given is never replaced.
        if (!existing.reason && reason && existing.status === 'pending') {
          await store.addReason(existing.id, reason);
          return { row: { ...existing, reason }, opened: false };
        }
        return { row: existing, opened: false };
      }
      const open = await store.pendingCount(input.requester.subject, now);
      if (open >= this.maxPending) {
        throw new GuardError(
          'forbidden',
          `you already have ${open} approval requests waiting; withdraw some (guard-aws approvals withdraw ID) or wait for decisions`,
          { details: { pending: open } },
        );
      }
      const id = this.newId();
      await store.insert({
        id,
        binding_hash: hash,
        requester: input.requester.subject,
        requester_name: input.requester.name ?? null,
        target: input.target,
        call: JSON.stringify(call),
        rule: input.decision.rule,
        rule_reason: input.decision.reason,
        rule_source: input.decision.source ?? null,
        reason,
        approver_groups: JSON.stringify(union.groups),
        required: union.count,
        requirements: quorums ? JSON.stringify(quorums) : null,
        created_at: now,
        expires_at: now + this.pendingTtlMs,
      });
      await store.event(id, 'opened', input.requester, now, reason || null);
      const row = (await store.row(id))!;
      await this.enqueue(tx, store, 'opened', input.requester.subject, now, reason || undefined, row);
      return { row, opened: true };
    });
    const summary = await this.summarize(result.row);
    if (result.opened) this.emit('opened', input.requester.subject, result.row.created_at, reason || undefined, summary);
    return summary;
  }

  /** The request, or undefined. Visibility is the caller's business (see `canView`). */
  async get(id: string): Promise<ApprovalSummary | undefined> {
    const row = await this.store.row(id);
    return row ? this.summarize(row) : undefined;
  }

  async list(opts: ListOptions = {}): Promise<ApprovalSummary[]> {
    return (await this.listPage(opts)).approvals;
  }

  /** A page of requests, newest first; pass `next` back as `cursor` for the following page. */
  async listPage(opts: ListOptions = {}): Promise<ApprovalPage> {
    const limit = Math.min(Math.max(1, Math.trunc(opts.limit ?? 100)), 1000);
    const after = opts.cursor !== undefined ? decodeCursor(opts.cursor) : undefined;
    const rows = await this.store.list({
      now: this.now(),
      ...(opts.status ? { status: opts.status } : {}),
      ...(opts.requester !== undefined ? { requester: opts.requester } : {}),
      ...(opts.forApprover ? { decidableBy: opts.forApprover } : {}),
      // Auditors see every request; anyone else their own and those of their approver groups.
      ...(opts.visibleTo && !state.inGroups(opts.visibleTo, this.auditorGroups) ? { visibleTo: opts.visibleTo } : {}),
      ...(after ? { after } : {}),
      limit,
    });
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return { approvals: await this.summarizeAll(page), ...(more && last ? { next: encodeCursor(last) } : {}) };
  }

  /** Deletes requests closed longer ago than the retention (see `retainClosedMs`); how many went. */
  async purgeClosed(): Promise<number> {
    const now = this.now();
    return this.store.purgeClosed(now - this.retainClosedMs, now);
  }

  /** Requester, eligible approvers and auditors may read a request. */
  canView(s: ApprovalSummary, caller: Caller): boolean {
    return state.canView(s, caller, this.auditorGroups);
  }

  /** Whether `caller` may approve or deny `s` now. */
  canDecide(s: ApprovalSummary, caller: Caller): boolean {
    return state.canDecide(s, caller);
  }

  /**
   * Records one approval (rules: state.approve). The request becomes `approved` when its quorum is met, and from
   * then on must be used within `approvedTtlMs`.
   */
  async approve(id: string, approver: Caller, comment?: string): Promise<ApprovalSummary> {
    const note = state.text(comment, 'comment');
    const { row, at } = await this.transaction(async (store, tx) => {
      const now = this.now();
      const r = await mustRow(store, id);
      const next = orThrow(state.approve(r, await store.votes(id), approver, now, this.approvedTtlMs));
      await store.event(id, 'approved', approver, now, note);
      if (next !== r) await store.update(next, r.status);
      const row = (await store.row(id))!;
      await this.enqueue(tx, store, 'approved', approver.subject, now, note ?? undefined, row);
      return { row, at: now };
    });
    const summary = await this.summarize(row);
    this.emit('approved', approver.subject, at, note ?? undefined, summary);
    return summary;
  }

  /**
   * Gives an approval back after `consume` when the broker could not issue the grant after all (STS refused or
   * failed): no credentials left the broker, so the approver's decision still stands for one run, within its
   * original expiry. Only a use with no grant recorded can be released; the release is itself recorded.
   */
  async release(id: string, requester: Caller, why: string): Promise<void> {
    await this.transaction(async (store) => {
      if (await store.release(id, requester.subject)) await store.event(id, 'refused', requester, this.now(), `released: ${why}`.slice(0, state.MAX_TEXT));
    });
  }

  /** A denial by any eligible approver is final, even after some approvals; it carries the approver's comment. */
  deny(id: string, approver: Caller, comment?: string): Promise<ApprovalSummary> {
    return this.close(id, approver, comment, 'denied', state.deny);
  }

  /** Only the requester may withdraw, while the request is pending or approved and unused. */
  withdraw(id: string, requester: Caller, comment?: string): Promise<ApprovalSummary> {
    return this.close(id, requester, comment, 'withdrawn', state.withdraw);
  }

  /** A final decision on a request (deny, withdraw): the transition, its event and its notification, in one place. */
  private async close(
    id: string,
    who: Caller,
    comment: string | undefined,
    event: 'denied' | 'withdrawn',
    transition: (row: ApprovalRow, who: Caller, now: number) => ApprovalRow | GuardError,
  ): Promise<ApprovalSummary> {
    const note = state.text(comment, 'comment');
    const { row, at } = await this.transaction(async (store, tx) => {
      const now = this.now();
      const r = await mustRow(store, id);
      const next = orThrow(transition(r, who, now));
      await store.event(id, event, who, now, note);
      await store.update(next, r.status);
      const row = (await store.row(id))!;
      await this.enqueue(tx, store, event, who.subject, now, note ?? undefined, row);
      return { row, at: now };
    });
    const summary = await this.summarize(row);
    this.emit(event, who.subject, at, note ?? undefined, summary);
    return summary;
  }

  /**
   * Uses an approval for exactly the call it was given for, once (rules: state.use), in one IMMEDIATE
   * transaction. Any refusal is recorded as a `refused` event and thrown as a GuardError: approval_not_found,
   * approval_mismatch, approval_pending, approval_denied, approval_closed, approval_used, approval_expired.
   */
  async consume(id: string, input: ConsumeInput): Promise<ApprovalSummary> {
    const outcome = await this.transaction(async (store, tx): Promise<{ row: ApprovalRow; error?: GuardError; at: number }> => {
      const now = this.now();
      // Locked FOR UPDATE (PostgreSQL): a second broker redeeming the same approval waits here, then sees `used`.
      const r = await mustRow(store, id);
      const attempt = {
        requester: input.requester,
        target: input.target,
        bindingHash: bindingHash({ requester: input.requester.subject, target: input.target, invocation: input.invocation }),
        shownArgv: this.displayArgv(input.invocation),
      };
      const denial = r.status === 'denied' ? await store.denialOf(id) : undefined;
      const next = state.use(r, attempt, now, input.grantId ?? null, () => denial);
      if (next instanceof GuardError) {
        await store.event(id, 'refused', input.requester, now, next.code);
        return { row: r, error: next, at: now };
      }
      // Guarded by the status read above (UPDATE … WHERE status = 'approved'): never two uses of one approval.
      if (!(await store.update(next, r.status))) throw new GuardError('approval_used', `approval ${id} was used concurrently`);
      await store.event(id, 'used', input.requester, now, input.grantId ?? null);
      const row = (await store.row(id))!;
      await this.enqueue(tx, store, 'used', input.requester.subject, now, undefined, row);
      return { row, at: now };
    });
    if (outcome.error) throw outcome.error;
    const summary = await this.summarize(outcome.row);
    this.emit('used', input.requester.subject, outcome.at, undefined, summary);
    return summary;
  }

  /** One transaction: the approval store bound to it, and the raw transaction for the outbox. */
  private transaction<T>(fn: (store: ApprovalStore, tx: Sql) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new ApprovalStore(tx), tx));
  }

  /** The change's webhook event, into the outbox in the same transaction (nothing without an outbox). */
  private async enqueue(tx: Sql, store: ApprovalStore, kind: ApprovalEventKind, actor: string, at: number, comment: string | undefined, row: ApprovalRow): Promise<void> {
    if (!this.outboxFn) return;
    const approval = (await this.summarizeAll([row], store))[0]!;
    await this.outboxFn(tx, { kind, at: new Date(at).toISOString(), actor, ...(comment ? { comment } : {}), approval });
  }

  private emit(kind: ApprovalEventKind, actor: string, at: number, comment: string | undefined, approval: ApprovalSummary): void {
    if (!this.notifyFn) return;
    try {
      this.notifyFn({ kind, at: new Date(at).toISOString(), actor, ...(comment ? { comment } : {}), approval });
    } catch {
      // A notifier must never undo or block a decision that is already committed.
    }
  }

  private async summarizeAll(rows: ApprovalRow[], store: ApprovalStore = this.store): Promise<ApprovalSummary[]> {
    if (rows.length === 0) return [];
    const events = await store.decisionEvents(rows.map((r) => r.id));
    const now = this.now();
    return rows.map((r) => {
      const s = state.toSummary(r, events.get(r.id) ?? [], now);
      if (this.consoleUrl) s.url = `${this.consoleUrl}/ui/approvals/${encodeURIComponent(r.id)}`;
      return s;
    });
  }

  private async summarize(row: ApprovalRow): Promise<ApprovalSummary> {
    return (await this.summarizeAll([row]))[0]!;
  }
}

/** The row a decision is about, locked for the rest of the transaction. */
async function mustRow(store: ApprovalStore, id: string): Promise<ApprovalRow> {
  const r = await store.rowForUpdate(id);
  if (!r) throw state.notFound(id);
  return r;
}

/** Cursors are the last row's (created_at, id), base64url JSON: opaque to clients, checked when read back. */
function encodeCursor(r: ApprovalRow): string {
  return Buffer.from(JSON.stringify([r.created_at, r.id])).toString('base64url');
}

function decodeCursor(c: string): { createdAt: number; id: string } {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string' && v[1].length <= 64) {
      return { createdAt: v[0] as number, id: v[1] };
    }
  } catch {
    // reported below
  }
  throw new GuardError('usage', 'approvals: invalid cursor (pass back the `next` value of the previous page unchanged)');
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new GuardError('config_invalid', `approvals: ${name} must be a positive number`);
  return n;
}
