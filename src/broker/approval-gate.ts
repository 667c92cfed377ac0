import type { ParsedInvocation } from '../invocation/types.js';
import type { Caller, Decision } from '../policy/types.js';
import type { GrantRequest } from './api-types.js';
import type { TargetConfig } from './config.js';
import { ApiError } from './http-error.js';

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
 * What the broker does with a decision of `approve`. The approvals module (src/approvals/) supplies one that opens an
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
    throw new ApiError(403, 'approval_required', `this call needs approval: ${decision.reason}`, {
      rule: decision.rule,
      reason: decision.reason,
      approvers: decision.approval ?? { groups: [], count: 1 },
    });
  },
};
