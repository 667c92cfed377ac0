import type { ApprovalSummary } from '../broker/api-types.js';
import { shellWords, visible } from '../approvals/render.js';

/** What a requester is told when the broker opens (or finds) an approval request for the call. */
export function describeApproval(a: ApprovalSummary): string {
  const who = `${a.required} approval${a.required > 1 ? 's' : ''} from ${a.approverGroups.map(visible).join(' or ')}`;
  return [
    `approval required${a.rule ? ` by rule ${visible(a.rule)}` : ''}: ${visible(a.reason)}`,
    `  request ${a.id} (${a.status}), needs ${who}, expires ${a.expiresAt}`,
    `  an approver runs: guard-aws approvals approve ${a.id}`,
  ].join('\n');
}

/** The exit-75 message: which request is waiting and the exact command that continues once it is approved. */
export function approvalWaitMessage(a: ApprovalSummary, awsArgv: string[]): string {
  return `approval ${a.id} is ${a.status}; once approved, run: guard-aws --approval ${a.id} ${shellWords(awsArgv)}`;
}
