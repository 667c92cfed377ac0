import type { ApprovalSummary } from '../api/types.js';
import { GuardError, isGuardError } from '../errors.js';
import type { IoHost } from '../io/host.js';
import { waitForApproval, waitOutcomeError, withdrawApproval, type ApprovalClientOptions, type WaitOptions } from './client.js';
import { shellWords, visible } from '../terminal-text.js';
import { relative } from './render.js';
import { MAX_TEXT } from './service.js';

/**
 * The requester's side of an approval, for the run command: ask for a reason, say who can approve and how,
 * wait with a live status, and turn the end of the wait into either "go ahead" or the documented error.
 */

/** `--wait SECONDS` or GUARD_AWS_APPROVAL_WAIT, in milliseconds; undefined when neither is set. */
export function approvalWaitMs(flag: string | undefined, env: NodeJS.ProcessEnv): number | undefined {
  const raw = flag ?? env.GUARD_AWS_APPROVAL_WAIT;
  if (raw === undefined || raw === '') return undefined;
  const where = flag !== undefined ? '--wait' : 'GUARD_AWS_APPROVAL_WAIT';
  if (!/^\d{1,6}$/.test(raw.trim())) throw new GuardError('usage', `${where} must be a whole number of seconds, not ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw.trim()) * 1000;
}

/**
 * Asks for the reason on a terminal (one line, 1 to 1,000 characters); undefined without a terminal. An empty
 * answer is asked again: approvers decide on the reason, and a request without one would only be denied or
 * queried. Ctrl-C at the prompt withdraws the request already opened (`withdraw`) and throws `interrupted` (130).
 */
export async function promptReason(
  host: IoHost,
  rule: string | null,
  why: string,
  request?: { id: string; withdraw: () => Promise<unknown> },
): Promise<string | undefined> {
  if (!host.interactive || !host.prompt) return undefined;
  host.info(`This call needs approval (${rule ? `rule ${rule}: ` : ''}${why}).`);
  try {
    for (;;) {
      const r = (await host.prompt('Reason for the approvers: ')).trim();
      if (r.length === 0) host.warn('A reason is needed: approvers decide on it (Ctrl-C withdraws the request).');
      else if (r.length > MAX_TEXT) host.warn(`That is ${r.length} characters; at most ${MAX_TEXT}, please.`);
      else return r;
    }
  } catch (e) {
    if (!(isGuardError(e) && e.code === 'interrupted') || !request) throw e;
    // Best effort: the request expires on its own if the broker cannot be reached right now.
    const withdrawn = await request.withdraw().then(
      () => true,
      () => false,
    );
    throw new GuardError('interrupted', `interrupted (Ctrl-C); approval request ${request.id} ${withdrawn ? 'withdrawn' : 'could not be withdrawn; it expires unanswered'}`, {
      details: { id: request.id, withdrawn },
    });
  }
}

/** Withdraws a request the requester stopped waiting for (Ctrl-C), with the comment approvers will see. */
export function withdrawInterrupted(client: ApprovalClientOptions, id: string): Promise<ApprovalSummary> {
  return withdrawApproval({ ...client, timeoutMs: 5000 }, id, 'withdrawn by the requester (interrupted)');
}

/** What the requester is told when the request is opened. */
export function describeRequest(a: ApprovalSummary, now: number): string[] {
  const need = a.requirements
    ? a.requirements.map((q) => `${q.count} from ${q.groups.map(visible).join(' or ')}`).join(' and ')
    : `${a.required} approval${a.required > 1 ? 's' : ''} from ${a.approverGroups.map(visible).join(' or ')}`;
  return [
    `Approval request ${a.id}: needs ${need} (rule ${a.rule ?? '(default)'}: ${visible(a.ruleReason)}).`,
    ...(a.url ? [`  console:  ${visible(a.url)}`] : []),
    `  call:     aws ${shellWords(a.argv)}  [target ${visible(a.target)}]`,
    `  approver: guard-aws approvals show ${a.id} && guard-aws approvals approve ${a.id}`,
    `  expires:  ${a.expiresAt} (${relative(a.expiresAt, now)})`,
  ];
}

export interface AwaitApprovalOptions extends Omit<WaitOptions, 'id' | 'onStatus'> {
  host: IoHost;
  approval: ApprovalSummary;
}

/**
 * Waits for the decision on `approval` (already opened by the broker's answer to the grant request) and returns
 * the approved summary — then the caller re-sends the grant with `approvalId`. Without `waitMs` the wait lasts
 * until the request is decided or expires (a terminal); with `waitMs: 0` it checks once (CI). Anything but an
 * approval throws: approval_denied (77, with the approver's comment), approval_expired (75), approval_timeout
 * (75, naming `--approval ID`), approval_closed (77, withdrawn — also after Ctrl-C, which withdraws).
 */
export async function awaitApproval(o: AwaitApprovalOptions): Promise<ApprovalSummary> {
  const now = o.now ?? Date.now;
  if (o.approval.status === 'approved') return o.approval;
  for (const line of describeRequest(o.approval, now())) o.host.info(line);
  let shown = o.approval.approvals.length;
  const client: ApprovalClientOptions = {
    brokerUrl: o.brokerUrl,
    token: o.token,
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
  const result = await waitForApproval({
    ...client,
    ...(o.waitMs !== undefined ? { waitMs: o.waitMs } : {}),
    ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.sleep ? { sleep: o.sleep } : {}),
    now,
    id: o.approval.id,
    onStatus: (s) => {
      if (s.status === 'pending') {
        o.host.status(`waiting for approval ${s.id}: ${s.approvals.length} of ${s.required}, expires ${relative(s.expiresAt, now())}`);
      }
      for (const a of s.approvals.slice(shown)) o.host.info(`approved by ${visible(a.by)}${a.comment ? `: ${visible(a.comment)}` : ''}`);
      shown = Math.max(shown, s.approvals.length);
    },
  });
  const err = waitOutcomeError(result);
  if (err) throw err;
  return result.approval;
}
