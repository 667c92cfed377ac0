import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorResponse } from '../../src/api/types.js';
import type { ApprovalGate } from '../../src/broker/approval-gate.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { startBrokerEnv, TRANSCRIPT_KEY, type BrokerEnvironment } from './helpers/broker-env.js';
import { withFaults } from './helpers/fake-core.js';

// An approval is a person's decision: the broker must not spend it on a grant it cannot issue. The session policy
// is built before the gate is asked (a call whose policy cannot fit never reaches the approvers), and an approval
// consumed for a grant that STS then refused is released for the next attempt. Real broker over HTTP; the gate
// here only records what the broker asks of it (the real one is tested in test/approvals).
const calls: string[] = [];
const gate: ApprovalGate = {
  async check() {
    calls.push('check');
    return { approvalId: 'apr_test' };
  },
  async release(id, caller, why) {
    calls.push(`release ${id} ${caller.subject} ${why}`);
  },
};
let env: BrokerEnvironment;
beforeAll(async () => {
  env = await startBrokerEnv({
    approvals: gate,
    parse: withFaults(parseInvocation),
    decide: () => ({ decision: 'approve', rule: 'needs-a-person', reason: 'test', approval: { groups: ['approvers'], count: 1 } }),
  });
});
afterAll(() => env?.stop());

describe('approvals are not spent on grants the broker cannot issue', () => {
  it('a call whose session policy cannot fit is refused before the approval gate is asked', async () => {
    calls.length = 0;
    const res = await env.post('/v1/grants', { argv: ['huge', 'x'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorResponse).error.code).toBe('policy_too_large');
    expect(calls).toEqual([]);
  });

  it('an approval consumed for a grant STS then refused is released', async () => {
    calls.length = 0;
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], target: 'broken', transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(502);
    expect(calls).toEqual(['check', 'release apr_test alice@example.com STS did not issue the session']);
  });

  it('a granted call keeps its approval used', async () => {
    calls.length = 0;
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(200);
    expect(calls).toEqual(['check']);
  });
});
