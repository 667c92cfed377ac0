import type { ApprovalListResponse, ApprovalSummary, ErrorResponse } from '../api/types.js';
import { BrokerClient, brokerDeadlineMs, brokerError, type FetchLike } from '../api/broker-client.js';
import { GuardError, isGuardError } from '../errors.js';

/**
 * Client side of /v1/approvals, for `guard-aws approvals …` and for the run command while it waits. Network
 * failures and 5xx are GuardError('broker_unreachable') (69), a rejected token is auth_rejected (67), and a
 * refusal keeps the broker's approval code (self_approval, not_approver, approval_closed…) so its exit code is
 * the documented one.
 */

/** A fixed token, or a function giving a fresh one (a long wait can outlive an access token). */
export type TokenSource = string | (() => Promise<string>);

export interface ApprovalClientOptions {
  brokerUrl: string;
  token: TokenSource;
  fetch?: FetchLike;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
}

export type ListScope = 'visible' | 'decide' | 'mine';

const tokenOf = (t: TokenSource): Promise<string> => (typeof t === 'string' ? Promise.resolve(t) : t());

async function call<T>(o: ApprovalClientOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const client = new BrokerClient(o.brokerUrl, o.fetch, o.timeoutMs);
  const r = await client.request<T | ErrorResponse>(method, path, await tokenOf(o.token), body);
  if (r.status === 200) return r.body as T;
  // Approval codes are GuardError codes on the wire too (self_approval, approval_closed…): brokerError keeps them.
  throw brokerError(r.status, (r.body as ErrorResponse)?.error);
}

function checkSummary(s: unknown): ApprovalSummary {
  const v = s as ApprovalSummary;
  if (!v || typeof v.id !== 'string' || typeof v.status !== 'string' || !Array.isArray(v.argv)) {
    throw new GuardError('broker_unreachable', 'the broker answered an approval request in a shape this guard-aws does not understand');
  }
  return v;
}

const seg = (id: string) => encodeURIComponent(id);

/**
 * One request. With `watch`, a broker that supports it holds the answer until the request's status or approval
 * count differs from `seen`, or `waitSec` passed (a long poll: the waiting CLI hears of a decision made in the
 * web console or by another approver at once, without polling faster). Older brokers ignore the parameters.
 */
export async function getApproval(o: ApprovalClientOptions, id: string, watch?: { waitSec: number; seen: string }): Promise<ApprovalSummary> {
  const qs = watch ? `?wait=${Math.max(1, Math.floor(watch.waitSec))}&seen=${encodeURIComponent(watch.seen)}` : '';
  return checkSummary(await call(o, 'GET', `v1/approvals/${seg(id)}${qs}`));
}

/** What a long poll compares: the status and how many approvals were given. */
export const watchKey = (s: Pick<ApprovalSummary, 'status' | 'approvals'>): string => `${s.status}/${s.approvals.length}`;
/** Longest single long poll (below the client's 30 s request timeout and common proxy idle timeouts). */
const LONG_POLL_SEC = 20;

export async function listApprovals(
  o: ApprovalClientOptions,
  q: { status?: ApprovalSummary['status']; scope?: ListScope; limit?: number; cursor?: string } = {},
): Promise<ApprovalSummary[]> {
  return (await listApprovalPage(o, q)).approvals;
}

/** One page of the listing, newest first; `next` (when more follow) is the `cursor` of the following page. */
export async function listApprovalPage(
  o: ApprovalClientOptions,
  q: { status?: ApprovalSummary['status']; scope?: ListScope; limit?: number; cursor?: string } = {},
): Promise<{ approvals: ApprovalSummary[]; next?: string }> {
  const params = new URLSearchParams();
  if (q.status) params.set('status', q.status);
  if (q.scope) params.set('scope', q.scope);
  if (q.limit !== undefined) params.set('limit', String(q.limit));
  if (q.cursor !== undefined) params.set('cursor', q.cursor);
  const qs = params.toString();
  const r = await call<ApprovalListResponse>(o, 'GET', `v1/approvals${qs ? `?${qs}` : ''}`);
  if (!Array.isArray(r?.approvals)) throw new GuardError('broker_unreachable', 'the broker answered a list without approvals');
  if (r.next !== undefined && (typeof r.next !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(r.next))) {
    throw new GuardError('broker_unreachable', 'the broker answered a list with an invalid next cursor');
  }
  return { approvals: r.approvals.map(checkSummary), ...(r.next ? { next: r.next } : {}) };
}

export async function approveApproval(o: ApprovalClientOptions, id: string, comment?: string): Promise<ApprovalSummary> {
  return checkSummary(await call(o, 'POST', `v1/approvals/${seg(id)}/approve`, comment ? { comment } : {}));
}

export async function denyApproval(o: ApprovalClientOptions, id: string, comment?: string): Promise<ApprovalSummary> {
  return checkSummary(await call(o, 'POST', `v1/approvals/${seg(id)}/deny`, comment ? { comment } : {}));
}

export async function withdrawApproval(o: ApprovalClientOptions, id: string, comment?: string): Promise<ApprovalSummary> {
  return checkSummary(await call(o, 'POST', `v1/approvals/${seg(id)}/withdraw`, comment ? { comment } : {}));
}

export type WaitOutcome = 'approved' | 'denied' | 'expired' | 'withdrawn' | 'used' | 'timeout' | 'aborted';

export interface WaitResult {
  outcome: WaitOutcome;
  /** The last state seen (after the withdrawal, when aborted and the withdrawal went through). */
  approval: ApprovalSummary;
}

export interface WaitOptions extends ApprovalClientOptions {
  id: string;
  /** Delay between polls. Default 2 s. */
  pollMs?: number;
  /** Give up waiting after this long (then outcome `timeout`). Default: until the request is decided or expires. */
  waitMs?: number;
  /** Abort (Ctrl-C): the request is withdrawn, best effort, and the outcome is `aborted`. */
  signal?: AbortSignal;
  /** Called with the first state and whenever status or approvals change (a live status line). */
  onStatus?: (s: ApprovalSummary) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Polls an approval request until it is decided, expires, the time is up or the signal fires. A broker that is
 * briefly unreachable does not end the wait (the request keeps waiting at the broker); if it is still
 * unreachable when the time is up, that error is thrown. A rejected token ends it at once.
 */
export async function waitForApproval(o: WaitOptions): Promise<WaitResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? abortableSleep;
  const pollMs = Math.max(10, o.pollMs ?? 2000);
  const deadline = o.waitMs === undefined ? Infinity : now() + o.waitMs;
  let last: ApprovalSummary | undefined;
  let lastKey = '';
  let lastError: unknown;
  for (;;) {
    if (o.signal?.aborted) return aborted(o, last);
    let askAgainNow = false;
    try {
      const before = Date.now();
      const leftSec = Math.floor((deadline - now()) / 1000);
      // A long poll must end well inside the request deadline (GUARD_AWS_BROKER_TIMEOUT may be short).
      const holdSec = Math.min(LONG_POLL_SEC, leftSec - 1, Math.floor((o.timeoutMs ?? brokerDeadlineMs()) / 1000) - 2);
      const watch = lastKey && holdSec >= 1 ? { waitSec: holdSec, seen: lastKey } : undefined;
      const asked = getApproval(o, o.id, watch);
      // Ctrl-C (or an MCP cancellation) must not wait for a held answer: stop listening, withdraw at once.
      const s = await (watch && o.signal ? untilAborted(asked, o.signal) : asked);
      lastError = undefined;
      last = s;
      const key = watchKey(s);
      // Ask again at once when the next ask can be a long poll (after the first answer), or when the broker held
      // this one (it waited for us) or it changed. A broker that answers a long poll at once, unchanged, does not
      // support it: then poll every pollMs as before.
      askAgainNow = watch ? Date.now() - before >= 1000 || key !== lastKey : holdSec >= 1;
      if (key !== lastKey) {
        lastKey = key;
        o.onStatus?.(s);
      }
      if (s.status !== 'pending') return { outcome: s.status, approval: s };
    } catch (e) {
      if (o.signal?.aborted) return aborted(o, last);
      if (!(isGuardError(e) && e.code === 'broker_unreachable')) throw e;
      lastError = e;
    }
    const left = deadline - now();
    if (left <= 0) {
      if (lastError !== undefined || !last) throw lastError;
      return { outcome: 'timeout', approval: last };
    }
    if (!askAgainNow) await sleep(Math.min(pollMs, left), o.signal).catch(() => undefined);
  }
}

/** The promise's value, or a rejection as soon as `signal` fires (the promise itself is left to settle unobserved). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new GuardError('interrupted', 'interrupted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => undefined);
      reject(new GuardError('interrupted', 'interrupted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

async function aborted(o: WaitOptions, last: ApprovalSummary | undefined): Promise<WaitResult> {
  try {
    const w = await withdrawApproval({ ...o, timeoutMs: 5000 }, o.id, 'withdrawn by the requester (interrupted)');
    return { outcome: 'aborted', approval: w };
  } catch (e) {
    // Already decided or expired in the meantime: report what it is now, if we can tell.
    if (last) return { outcome: 'aborted', approval: last };
    throw e;
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The GuardError for a wait that did not end in approval (the run command's exit): denied → approval_denied (77)
 * with the approver's comment; expired → approval_expired (75); timeout → approval_timeout (75) naming the id to
 * re-run with; withdrawn → approval_closed (77); aborted (Ctrl-C) → interrupted (130); used → approval_used (77). Undefined when approved.
 */
export function waitOutcomeError(r: WaitResult): GuardError | undefined {
  const a = r.approval;
  switch (r.outcome) {
    case 'approved':
      return undefined;
    case 'denied':
      return new GuardError(
        'approval_denied',
        `approval ${a.id} was denied by ${a.denial?.by ?? 'an approver'}${a.denial?.comment ? `: ${a.denial.comment}` : ''}`,
        { details: { id: a.id, by: a.denial?.by, comment: a.denial?.comment } },
      );
    case 'expired':
      return new GuardError('approval_expired', `approval ${a.id} expired before it was decided; run the command again to ask again`, {
        details: { id: a.id },
      });
    case 'timeout':
      return new GuardError(
        'approval_timeout',
        `approval ${a.id} is still pending; once approved, run the same command again with --approval ${a.id}`,
        { details: { id: a.id } },
      );
    case 'used':
      return new GuardError('approval_used', `approval ${a.id} has already been used`, { details: { id: a.id } });
    case 'withdrawn':
      return new GuardError('approval_closed', `approval ${a.id} was withdrawn`, { details: { id: a.id } });
    case 'aborted':
      // Ctrl-C during the wait: the requester stopped; that is not a denial (77) but an interruption (130).
      return new GuardError('interrupted', `interrupted (Ctrl-C); approval request ${a.id} ${a.status === 'withdrawn' ? 'withdrawn' : `is ${a.status}`}`, {
        details: { id: a.id, status: a.status },
      });
  }
}
