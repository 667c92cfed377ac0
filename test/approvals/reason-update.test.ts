import { describe, expect, it } from 'vitest';
import { alice, approveDecision, deleteBucket, dave, newService } from './fixtures.js';

// The CLI learns that a call needs approval from the broker's first answer, then prompts for a reason and asks
// again: the same request must be found (not a second one) and gain the reason — but a reason, once given, is
// never replaced, and nobody else's request is touched.
describe('ApprovalService: reason added by a second ask', () => {
  const open = (svc: Awaited<ReturnType<typeof newService>>['service'], who = alice, reason = '') =>
    svc.open({ requester: who, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason });

  it('adds the reason to the open request instead of opening another', async () => {
    const { service } = await newService();
    const first = await open(service);
    expect(first.reason).toBe('');
    const second = await open(service, alice, 'decommission the old bucket');
    expect(second.id).toBe(first.id);
    expect((await service.get(first.id))!.reason).toBe('decommission the old bucket');
  });

  it('never replaces a reason already given', async () => {
    const { service } = await newService();
    const first = await open(service, alice, 'first reason');
    await open(service, alice, 'a different story');
    expect((await service.get(first.id))!.reason).toBe('first reason');
  });

  it('another requester asking for the same call gets a request of their own', async () => {
    const { service } = await newService();
    const a = await open(service, alice);
    const d = await open(service, dave, 'mine');
    expect(d.id).not.toBe(a.id);
    expect((await service.get(a.id))!.reason).toBe('');
  });
});

// Two approve rules matched with different approver groups: each keeps its own quorum, and the request is
// approved only when all of them are met — an approver counts toward the rules whose groups they are in.
describe('ApprovalService: several approve rules, each with its own quorum', () => {
  const decision = {
    ...approveDecision(),
    approval: { groups: [], count: 2, requirements: [{ groups: ['approvers'], count: 1 }, { groups: ['security'], count: 2 }] },
  };
  const sec1 = { subject: 'sec1', groups: ['security'] };
  const sec2 = { subject: 'sec2', groups: ['security'] };
  const both = { subject: 'both', groups: ['security', 'approvers'] };
  const outsider = { subject: 'out', groups: ['developers'] };

  it('stays pending until every rule has its approvers, then is approved', async () => {
    const { service } = await newService();
    const a = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision, reason: '' });
    expect(a.requirements).toEqual([{ groups: ['approvers'], count: 1 }, { groups: ['security'], count: 2 }]);
    expect(a.approverGroups).toEqual(['approvers', 'security']);
    expect((await service.approve(a.id, sec1)).status).toBe('pending'); // security 1/2, approvers 0/1
    expect((await service.approve(a.id, sec2)).status).toBe('pending'); // security 2/2, approvers 0/1
    expect((await service.approve(a.id, { subject: 'bob', groups: ['approvers'] })).status).toBe('approved');
  });

  it('one person in both groups counts toward both rules, but only once toward each', async () => {
    const { service } = await newService();
    const a = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision, reason: '' });
    expect((await service.approve(a.id, both)).status).toBe('pending'); // approvers 1/1, security 1/2
    await expect(service.approve(a.id, both)).rejects.toThrow(); // the same vote twice never counts twice
    expect((await service.approve(a.id, sec1)).status).toBe('approved');
  });

  it('someone in none of the groups cannot approve, and the requester never can', async () => {
    const { service } = await newService();
    const a = await service.open({ requester: { subject: 'sec1', groups: ['security'] }, invocation: deleteBucket(), target: 'prod', decision, reason: '' });
    await expect(service.approve(a.id, outsider)).rejects.toThrow(/only members/);
    await expect(service.approve(a.id, sec1)).rejects.toThrow(/own request/);
  });
});

// Found in review: an STS failure after the approval was consumed burned the approver's decision although no
// credentials were issued. The broker releases it; a use that led to a grant can never be released.
describe('ApprovalService: release after a failed grant', () => {
  it('a consumed approval with no grant returns to approved, once, for the requester only', async () => {
    const { service } = await newService();
    const inv = deleteBucket();
    const a = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
    await service.approve(a.id, { subject: 'bob', groups: ['approvers'] });
    await service.consume(a.id, { requester: alice, invocation: inv, target: 'prod' });
    expect((await service.get(a.id))!.status).toBe('used');
    await service.release(a.id, dave, 'not the requester'); // someone else cannot release it
    expect((await service.get(a.id))!.status).toBe('used');
    await service.release(a.id, alice, 'STS failed');
    expect((await service.get(a.id))!.status).toBe('approved');
    await service.consume(a.id, { requester: alice, invocation: inv, target: 'prod', grantId: 'grt_1' });
    await service.release(a.id, alice, 'too late: a grant was issued');
    expect((await service.get(a.id))!.status).toBe('used');
  });
});
