import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { MAX_TEXT, type ApprovalNotification, type ApprovalService } from '../../approvals/service.js';
import type { Caller } from '../../policy/types.js';
import type { ApprovalListResponse, ApprovalSummary } from '../../api/types.js';
import type { BrokerRouteModule } from '../deps.js';
import type { BrokerEnv } from '../env.js';
import { ApiError, refusal } from '../../api/http-error.js';
import { fieldName, validateJson } from '../middleware/validate.js';

/**
 * /v1/approvals — the approver's and requester's side of approval requests. Every path needs a verified bearer
 * token (the broker's bearer-auth middleware sets `caller`); who may do what is decided by the ApprovalService:
 *   GET  /v1/approvals[?status=&scope=visible|decide|mine&limit=]  list
 *   GET  /v1/approvals/:id                                         requester, eligible approvers, auditors
 *   POST /v1/approvals/:id/approve  {comment?}                     an approver in the rule's groups, never the requester
 *   POST /v1/approvals/:id/deny     {comment?}                     same; a denial is final
 *   POST /v1/approvals/:id/withdraw {comment?}                     the requester only
 * Answers carry ApprovalSummary with `canDecide` for the caller; refusals are ErrorResponse bodies whose code is
 * the service's (approval_not_found 404, self_approval/not_approver/forbidden 403, approval_closed/… 409).
 */
export interface ApprovalRoutesOptions {
  /**
   * Committed approval changes, to answer long polls (`GET /v1/approvals/:id?wait=S&seen=STATUS/N`) the moment a
   * request changes. Without it `wait` is ignored and every GET answers at once. `onResync` is called when
   * changes may have been missed (the broker's change feed reconnected): held polls then answer with the current
   * state, and the client asks again.
   */
  subscribe?: (fn: (n: ApprovalNotification) => void, onResync?: () => void) => () => void;
}

export function approvalRoutes(service: ApprovalService, o: ApprovalRoutesOptions = {}): BrokerRouteModule {
  const waiting = new Set<() => void>();
  return {
    mount: (app) => mountApprovals(app, service, { ...o, waiting }),
    // Shutting down: every held long poll answers now (with the current state; the client asks again).
    drain: () => {
      for (const done of [...waiting]) done();
    },
  };
}

const watchQuery = z.object({
  wait: z.coerce.number().int().min(1).max(25).optional(),
  seen: z.string().regex(/^[a-z]+\/[0-9]{1,4}$/).optional(),
});

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'withdrawn'] as const;

const listQuery = z.strictObject({
  status: z.enum(STATUSES).optional(),
  scope: z.enum(['visible', 'decide', 'mine']).default('visible'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** The `next` of the previous page. */
  cursor: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/).optional(),
});

const decisionBody = z.strictObject({ comment: z.string().max(MAX_TEXT).optional() });

export function mountApprovals(app: Hono<BrokerEnv>, service: ApprovalService, o: ApprovalRoutesOptions & { waiting?: Set<() => void> } = {}): void {
  const caller = (c: Context<BrokerEnv>): Caller => {
    const who = c.get('caller');
    // Fail closed if this module is ever mounted without the bearer-auth middleware in front of it.
    if (!who) throw new ApiError('unauthorized', 'a bearer token is required; run `guard-aws login`');
    return who;
  };
  const id = (c: Context<BrokerEnv>): string => {
    const v = c.req.param('id') ?? '';
    if (!ID.test(v)) throw new ApiError('bad_request', 'invalid approval id in the path');
    return v;
  };
  const view = (s: ApprovalSummary, who: Caller): ApprovalSummary => ({ ...s, canDecide: service.canDecide(s, who) });
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw refusal(e);
    }
  };

  app.get('/v1/approvals', async (c) => {
    const who = caller(c);
    const q = listQuery.safeParse(c.req.query());
    if (!q.success) {
      const issue = q.error.issues[0]!;
      const field = issue.code === 'unrecognized_keys' ? fieldName([...issue.path, issue.keys[0]!]) : fieldName(issue.path);
      throw new ApiError('bad_request', `invalid query parameter ${field}: ${issue.message}`);
    }
    const { status, scope, limit, cursor } = q.data;
    const page = await run(() => service.listPage({
      ...(status ? { status } : {}),
      limit,
      ...(cursor ? { cursor } : {}),
      ...(scope === 'decide' ? { forApprover: who } : scope === 'mine' ? { requester: who.subject } : { visibleTo: who }),
    }));
    const body: ApprovalListResponse = { approvals: page.approvals.map((s) => view(s, who)), ...(page.next ? { next: page.next } : {}) };
    c.header('Cache-Control', 'no-store');
    return c.json(body);
  });

  app.get('/v1/approvals/:id', async (c) => {
    const who = caller(c);
    let s = await service.get(id(c));
    if (!s) throw new ApiError('approval_not_found', `approval ${c.req.param('id')} does not exist`);
    if (!service.canView(s, who)) {
      throw new ApiError('forbidden', `approval ${s.id}: only its requester, its approvers and auditors can see it`);
    }
    const w = watchQuery.safeParse(c.req.query());
    if (o.subscribe && w.success && w.data.wait && w.data.seen === `${s.status}/${s.approvals.length}`) {
      // Long poll: answer when this request changes, at its expiry, after `wait` seconds, or when the client goes.
      const approvalId = s.id;
      const ms = Math.min(w.data.wait * 1000, Math.max(0, Date.parse(s.expiresAt) - Date.now()) + 50);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        const unsubscribe = o.subscribe!((n) => n.approval.id === approvalId && done(), done);
        const signal = c.req.raw.signal;
        signal?.addEventListener('abort', done, { once: true });
        o.waiting?.add(done);
        function done() {
          clearTimeout(timer);
          unsubscribe();
          signal?.removeEventListener('abort', done);
          o.waiting?.delete(done);
          resolve();
        }
      });
      s = (await service.get(approvalId)) ?? s;
    }
    c.header('Cache-Control', 'no-store');
    return c.json(view(s, who));
  });

  const decide = (verb: 'approve' | 'deny' | 'withdraw') =>
    app.post(`/v1/approvals/:id/${verb}`, validateJson(decisionBody), async (c) => {
      const who = caller(c);
      const { comment } = c.get('body') as z.infer<typeof decisionBody>;
      const approvalId = id(c);
      const s = await run(() =>
        verb === 'approve'
          ? service.approve(approvalId, who, comment)
          : verb === 'deny'
            ? service.deny(approvalId, who, comment)
            : service.withdraw(approvalId, who, comment),
      );
      return c.json(view(s, who));
    });
  decide('approve');
  decide('deny');
  decide('withdraw');
}
