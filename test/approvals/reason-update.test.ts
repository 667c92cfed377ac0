import { describe, expect, it } from 'vitest';
import { alice, approveDecision, deleteBucket, dave, newService } from './fixtures.js';

// The CLI learns that a call needs approval from the broker's first answer, then prompts for a reason and asks
// again: the same request must be found (not a second one) and gain the reason — but a reason, once given, is
// never replaced, and nobody else's request is touched.
describe('ApprovalService: reason added by a second ask', () => {
  const open = (svc: ReturnType<typeof newService>['service'], who = alice, reason = '') =>
    svc.open({ requester: who, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason });

  it('adds the reason to the open request instead of opening another', () => {
    const { service } = newService();
    const first = open(service);
    expect(first.reason).toBe('');
    const second = open(service, alice, 'decommission the old bucket');
    expect(second.id).toBe(first.id);
    expect(service.get(first.id)!.reason).toBe('decommission the old bucket');
  });

  it('never replaces a reason already given', () => {
    const { service } = newService();
    const first = open(service, alice, 'first reason');
    open(service, alice, 'a different story');
    expect(service.get(first.id)!.reason).toBe('first reason');
  });

  it('another requester asking for the same call gets a request of their own', () => {
    const { service } = newService();
    const a = open(service, alice);
    const d = open(service, dave, 'mine');
    expect(d.id).not.toBe(a.id);
    expect(service.get(a.id)!.reason).toBe('');
  });
});

// Two approve rules whose approver groups share nothing: the policy engine's combined requirement has no groups,
// and the request must be refused clearly (403 → exit 77), never opened with approvers from just one rule.
describe('ApprovalService: approval rules with no approver group in common', () => {
  it('refuses to open the request, naming the requirements', () => {
    const { service } = newService();
    const decision = {
      ...approveDecision(),
      approval: { groups: [], count: 2, requirements: [{ groups: ['approvers'], count: 1 }, { groups: ['security'], count: 2 }] },
    };
    let err: unknown;
    try {
      service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision, reason: '' });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('forbidden');
    expect(String((err as Error).message)).toMatch(/1 from approvers and 2 from security/);
    expect(service.list({})).toHaveLength(0);
  });
});
