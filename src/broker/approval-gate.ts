import type { ParsedInvocation } from '../invocation/types.js';
import type { Caller, Decision } from '../policy/types.js';
import type { GrantRequest } from '../api/types.js';
import type { TargetConfig } from './config.js';
import { ApiError, refusal } from '../api/http-error.js';
import type { ApprovalService } from '../approvals/service.js';
import { isGuardError } from '../errors.js';

export interface ApprovalContext {
  request: GrantRequest;
  caller: Caller;
  invocation: ParsedInvocation;
  target: TargetConfig;
  /** The policy decision (effect `approve`, with `approval` naming the approver groups and count). */
  decision: Decision;
  requestId: string;
}

/**
 * What the broker does with a decision of `approve`. `createApprovalGate` (below) is the one that opens an
 * approval request, or — when `request.approvalId` is given — checks that approval against this exact call,
 * consumes it once and lets the grant proceed. It must throw an ApiError to refuse (approval_pending,
 * approval_denied…); returning means the grant goes ahead, recorded with `approvalId`.
 */
export interface ApprovalGate {
  check(ctx: ApprovalContext): Promise<{ approvalId: string }>;
  /** Gives a consumed approval back when the grant could not be issued after all (STS failed). */
  release?(approvalId: string, caller: Caller, why: string): Promise<void>;
}

/** Until approvals exist: every `approve` decision is refused as such, saying who could approve. */
export const refuseApprovals: ApprovalGate = {
  async check({ decision }) {
    throw new ApiError('approval_required', `this call needs approval: ${decision.reason}`, {
      rule: decision.rule,
      reason: decision.reason,
      approvers: decision.approval ?? { groups: [], count: 1 },
    });
  },
};

/**
 * The broker's answer to a policy decision of `approve` (plugs into mountGrants as `approvals`):
 * - with `approvalId`: consume that approval for exactly this call (caller, target, parsed call) and let the
 *   grant proceed; any refusal becomes an ApiError with the service's code (approval_pending answers carry the
 *   request again so a client can keep waiting);
 * - without: open (or find the open) request for this call and answer 403 `approval_required` with its summary,
 *   which names the approver groups, the deadline and the id to re-run with.
 */
export function createApprovalGate(service: ApprovalService): ApprovalGate {
  return {
    async release(approvalId, caller, why) {
      await service.release(approvalId, caller, why);
    },
    async check({ request, caller, invocation, target, decision }) {
      const facts = { rule: decision.rule, reason: decision.reason };
      if (request.approvalId !== undefined) {
        try {
          const used = await service.consume(request.approvalId, { requester: caller, invocation, target: target.name });
          return { approvalId: used.id };
        } catch (e) {
          if (isGuardError(e) && (e.code === 'approval_pending' || e.code === 'approval_denied')) {
            const approval = await service.get(request.approvalId);
            throw refusal(e, { ...facts, ...(approval ? { approval } : {}) });
          }
          throw refusal(e, facts);
        }
      }
      let approval;
      try {
        approval = await service.open({ requester: caller, invocation, target: target.name, decision, reason: request.reason ?? '' });
      } catch (e) {
        throw refusal(e, facts);
      }
      const who = `${approval.required} approval${approval.required > 1 ? 's' : ''} from ${approval.approverGroups.join(' or ')}`;
      throw new ApiError('approval_required',
        `this call needs ${who}: ${decision.reason}; request ${approval.id} (${approval.status}, expires ${approval.expiresAt})`,
        { ...facts, approval },
      );
    },
  };
}
