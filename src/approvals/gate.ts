import type { ApprovalGate } from '../broker/approval-gate.js';
import { ApiError } from '../api/http-error.js';
import { isGuardError } from '../errors.js';
import { toApiError } from './http.js';
import type { ApprovalService } from './service.js';

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
      service.release(approvalId, caller, why);
    },
    async check({ request, caller, invocation, target, decision }) {
      const facts = { rule: decision.rule, reason: decision.reason };
      if (request.approvalId !== undefined) {
        try {
          const used = service.consume(request.approvalId, { requester: caller, invocation, target: target.name });
          return { approvalId: used.id };
        } catch (e) {
          if (isGuardError(e) && (e.code === 'approval_pending' || e.code === 'approval_denied')) {
            const approval = service.get(request.approvalId);
            throw toApiError(e, { ...facts, ...(approval ? { approval } : {}) });
          }
          throw toApiError(e, facts);
        }
      }
      let approval;
      try {
        approval = service.open({ requester: caller, invocation, target: target.name, decision, reason: request.reason ?? '' });
      } catch (e) {
        throw toApiError(e, facts);
      }
      const who = `${approval.required} approval${approval.required > 1 ? 's' : ''} from ${approval.approverGroups.join(' or ')}`;
      throw new ApiError(
        403,
        'approval_required',
        `this call needs ${who}: ${decision.reason}; request ${approval.id} (${approval.status}, expires ${approval.expiresAt})`,
        { ...facts, approval },
      );
    },
  };
}
