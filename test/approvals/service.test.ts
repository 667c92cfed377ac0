import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import type { ApprovalNotification } from '../../src/approvals/service.js';
import { alice, approveDecision, bob, carol, dave, deleteBucket, erin, newService } from './fixtures.js';

const MIN = 60_000;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof GuardError) return e.code;
    throw e;
  }
  throw new Error('expected a GuardError, nothing was thrown');
}

function errorOf(fn: () => unknown): GuardError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error('expected a GuardError, nothing was thrown');
}

/** Alice asks to delete a bucket; bob approves. */
function approvedForAlice(count = 1) {
  const env = newService();
  const inv = deleteBucket();
  const a = env.service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(count), reason: 'decommission' });
  return { ...env, inv, id: a.id, opened: a };
}

describe('ApprovalService: opening', () => {
  it('opens a pending request showing the whole call, the rule and the deadline', () => {
    const { opened, clock } = approvedForAlice();
    expect(opened).toMatchObject({
      status: 'pending',
      requester: 'alice',
      requesterName: 'Alice',
      argv: ['s3api', 'delete-bucket', '--bucket', 'prod-data'],
      target: 'prod',
      region: 'us-east-1',
      service: 's3',
      operation: 'DeleteBucket',
      actions: ['s3:DeleteBucket'],
      permissions: [{ action: 's3:DeleteBucket', resources: ['arn:aws:s3:::prod-data'] }],
      resources: ['arn:aws:s3:::prod-data'],
      risks: ['write', 'destructive'],
      rule: 'destructive-needs-approval',
      ruleReason: 'destructive calls need a second person',
      ruleSource: 'policies/default.yaml:12',
      reason: 'decommission',
      approverGroups: ['approvers'],
      required: 1,
      approvals: [],
      createdAt: new Date(clock.ms).toISOString(),
      expiresAt: new Date(clock.ms + 15 * MIN).toISOString(),
    });
    expect(opened.bindingHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('never stores or shows secret values from the argv', () => {
    const { service, db } = newService();
    const argv = ['secretsmanager', 'put-secret-value', '--secret-id', 'db', '--secret-string', 'hunter2-s3cr3t'];
    const inv = deleteBucket('x', { argv, canonicalArgv: argv, params: { SecretId: 'db', SecretString: 'hunter2-s3cr3t' } });
    const s = service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
    expect(s.argv).toEqual(['secretsmanager', 'put-secret-value', '--secret-id', 'db', '--secret-string', '<masked>']);
    const dump = JSON.stringify(db.prepare('SELECT * FROM approval_requests').all()) + JSON.stringify(db.prepare('SELECT * FROM approval_events').all());
    expect(dump).not.toContain('hunter2');
  });

  it('asking again for the same call returns the open request instead of a second one', () => {
    const { service, inv, id } = approvedForAlice();
    const again = service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: 'again' });
    expect(again.id).toBe(id);
    const other = service.open({ requester: alice, invocation: deleteBucket('other'), target: 'prod', decision: approveDecision(), reason: '' });
    expect(other.id).not.toBe(id);
  });

  it('refuses a rule that names no approver group', () => {
    const { service } = newService();
    const d = { ...approveDecision(), approval: { groups: [], count: 1 } };
    expect(codeOf(() => service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: d, reason: '' }))).toBe('config_invalid');
  });

  it('caps the open requests of one requester so approvers cannot be flooded', () => {
    const { service } = newService({ maxPendingPerRequester: 2 });
    const ask = (b: string) => service.open({ requester: dave, invocation: deleteBucket(b), target: 'prod', decision: approveDecision(), reason: '' });
    const first = ask('a');
    ask('b');
    expect(codeOf(() => ask('c'))).toBe('forbidden');
    expect(ask('a').id).toBe(first.id); // the same call still finds its open request
    service.withdraw(first.id, dave);
    expect(ask('c').status).toBe('pending');
    expect(service.open({ requester: alice, invocation: deleteBucket('c'), target: 'prod', decision: approveDecision(), reason: '' }).status).toBe('pending');
  });

  it('refuses an over-long reason', () => {
    const { service } = newService();
    expect(
      codeOf(() => service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'x'.repeat(1001) })),
    ).toBe('usage');
  });
});

describe('ApprovalService: who may decide', () => {
  it('refuses self-approval even when the requester is in the approver group', () => {
    const { service, id } = approvedForAlice();
    expect(alice.groups).toContain('approvers');
    expect(codeOf(() => service.approve(id, alice, 'looks fine to me'))).toBe('self_approval');
    // Same subject with other groups in a fresh token: still the requester.
    expect(codeOf(() => service.approve(id, { subject: 'alice', groups: ['approvers', 'admins'] }))).toBe('self_approval');
    expect(codeOf(() => service.deny(id, alice))).toBe('self_approval');
    expect(service.get(id)!.status).toBe('pending');
    expect(service.get(id)!.approvals).toEqual([]);
  });

  it('refuses approval and denial by someone outside the approver groups', () => {
    const { service, id } = approvedForAlice();
    expect(codeOf(() => service.approve(id, dave))).toBe('not_approver');
    expect(codeOf(() => service.deny(id, dave))).toBe('not_approver');
    expect(codeOf(() => service.approve(id, erin))).toBe('not_approver'); // auditors read, never decide
    expect(service.get(id)!.status).toBe('pending');
  });

  it('two approvals required: one is not enough, the same approver twice counts once', () => {
    const { service, id, inv } = approvedForAlice(2);
    const one = service.approve(id, bob, 'ok');
    expect(one.status).toBe('pending');
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_pending');
    expect(codeOf(() => service.approve(id, bob, 'ok again'))).toBe('approval_duplicate');
    expect(codeOf(() => service.approve(id, { subject: 'bob', groups: ['approvers', 'sre'] }))).toBe('approval_duplicate');
    expect(service.get(id)!.approvals.map((a) => a.by)).toEqual(['bob']);
    expect(service.get(id)!.status).toBe('pending');
    const two = service.approve(id, carol, 'fine');
    expect(two.status).toBe('approved');
    expect(two.approvals.map((a) => a.by)).toEqual(['bob', 'carol']);
    expect(service.consume(id, { requester: alice, invocation: inv, target: 'prod' }).status).toBe('used');
  });

  it('a denial is final and carries the comment', () => {
    const { service, id, inv, clock } = approvedForAlice(2);
    service.approve(id, bob, 'ok');
    clock.advance(1000);
    const denied = service.deny(id, carol, 'not during the freeze');
    expect(denied.status).toBe('denied');
    expect(denied.denial).toEqual({ by: 'carol', at: new Date(clock.ms).toISOString(), comment: 'not during the freeze' });
    expect(codeOf(() => service.approve(id, { subject: 'frank', groups: ['approvers'] }))).toBe('approval_closed');
    expect(codeOf(() => service.deny(id, bob))).toBe('approval_closed');
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
    expect(e.code).toBe('approval_denied');
    expect(e.exitCode).toBe(77);
    expect(e.message).toContain('not during the freeze');
    expect(e.details).toMatchObject({ by: 'carol', comment: 'not during the freeze' });
    expect(service.get(id)!.status).toBe('denied');
  });

  it('records every decision with who, when and the comment', () => {
    const { service, id, db, clock } = approvedForAlice(2);
    clock.advance(5000);
    service.approve(id, bob, 'checked the backup');
    clock.advance(5000);
    service.approve(id, carol);
    const events = db.prepare('SELECT kind, actor, at, comment FROM approval_events WHERE approval_id = ? ORDER BY seq').all(id);
    const t0 = clock.ms - 10_000;
    expect(events).toEqual([
      { kind: 'opened', actor: 'alice', at: t0, comment: 'decommission' },
      { kind: 'approved', actor: 'bob', at: t0 + 5000, comment: 'checked the backup' },
      { kind: 'approved', actor: 'carol', at: t0 + 10_000, comment: null },
    ]);
  });

  it('only the requester may withdraw', () => {
    const { service, id, inv } = approvedForAlice();
    expect(codeOf(() => service.withdraw(id, bob))).toBe('forbidden');
    expect(codeOf(() => service.withdraw(id, { subject: 'mallory', groups: ['approvers', 'auditors'] }))).toBe('forbidden');
    expect(service.get(id)!.status).toBe('pending');
    service.approve(id, bob);
    const w = service.withdraw(id, alice, 'not needed');
    expect(w.status).toBe('withdrawn');
    expect(w.withdrawnAt).toBeDefined();
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_closed');
  });

  it('unknown ids are named as such', () => {
    const { service } = newService();
    expect(codeOf(() => service.approve('apr_nope', bob))).toBe('approval_not_found');
    expect(codeOf(() => service.consume('apr_nope', { requester: alice, invocation: deleteBucket(), target: 'prod' }))).toBe('approval_not_found');
    expect(service.get('apr_nope')).toBeUndefined();
  });
});

describe('ApprovalService: an approval lets exactly that call run once', () => {
  it('the approved call runs once; a second use is refused', () => {
    const { service, id, inv } = approvedForAlice();
    service.approve(id, bob);
    const used = service.consume(id, { requester: alice, invocation: deleteBucket(), target: 'prod', grantId: 'g-1' });
    expect(used).toMatchObject({ status: 'used', grantId: 'g-1' });
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
    expect(e.code).toBe('approval_used');
    expect(e.exitCode).toBe(77);
  });

  it('is refused for another call (different argv) and stays usable for the right one', () => {
    const { service, id, inv } = approvedForAlice();
    service.approve(id, bob);
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: deleteBucket('payroll'), target: 'prod' }));
    expect(e.code).toBe('approval_mismatch');
    expect(e.details.field).toBe('argv');
    // Same resources, an extra flag on the argv: still another call.
    const argv = [...inv.canonicalArgv, '--expected-bucket-owner', '111122223333'];
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: { ...inv, argv, canonicalArgv: argv }, target: 'prod' }))).toBe(
      'approval_mismatch',
    );
    expect(service.consume(id, { requester: alice, invocation: inv, target: 'prod' }).status).toBe('used');
  });

  it('is refused when the argv is the same but the content differs (file:// changed after approval, other region)', () => {
    const { service, id, inv } = approvedForAlice();
    service.approve(id, bob);
    const otherParams = { ...inv, params: { Bucket: 'prod-data', ExpectedBucketOwner: '999988887777' } };
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: otherParams, target: 'prod' }));
    expect(e.code).toBe('approval_mismatch');
    expect(e.details.field).toBe('call');
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: { ...inv, region: 'eu-west-1' }, target: 'prod' }))).toBe(
      'approval_mismatch',
    );
    const wider = { ...inv, permissions: [{ action: 's3:DeleteBucket', resources: ['*'], derived: false }] };
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: wider, target: 'prod' }))).toBe('approval_mismatch');
  });

  it('is refused for another person, even one in the approver group, and stays usable by the requester', () => {
    const { service, id, inv } = approvedForAlice();
    service.approve(id, bob);
    const e = errorOf(() => service.consume(id, { requester: bob, invocation: inv, target: 'prod' }));
    expect(e.code).toBe('approval_mismatch');
    expect(e.details.field).toBe('requester');
    expect(codeOf(() => service.consume(id, { requester: dave, invocation: inv, target: 'prod' }))).toBe('approval_mismatch');
    expect(service.consume(id, { requester: alice, invocation: inv, target: 'prod' }).status).toBe('used');
  });

  it('is refused on another target', () => {
    const { service, id, inv } = approvedForAlice();
    service.approve(id, bob);
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'staging' }));
    expect(e.code).toBe('approval_mismatch');
    expect(e.details.field).toBe('target');
    expect(service.get(id)!.status).toBe('approved');
  });

  it('a pending request expires after 15 minutes (frozen clock): no decision, no use', () => {
    const { service, id, inv, clock } = approvedForAlice();
    clock.advance(15 * MIN - 1);
    expect(service.get(id)!.status).toBe('pending');
    clock.advance(1);
    expect(service.get(id)!.status).toBe('expired');
    expect(codeOf(() => service.approve(id, bob))).toBe('approval_expired');
    expect(codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_expired');
    expect(service.list({ status: 'expired' }).map((s) => s.id)).toEqual([id]);
    expect(service.list({ status: 'pending' })).toEqual([]);
    // After expiry, asking again opens a fresh request.
    const fresh = service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
    expect(fresh.id).not.toBe(id);
  });

  it('an approved approval that is not used expires 15 minutes after the approval', () => {
    const { service, id, inv, clock } = approvedForAlice();
    clock.advance(10 * MIN);
    const a = service.approve(id, bob);
    expect(a.expiresAt).toBe(new Date(clock.ms + 15 * MIN).toISOString());
    clock.advance(15 * MIN);
    const e = errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
    expect(e.code).toBe('approval_expired');
    expect(e.exitCode).toBe(75);
  });

  it('just before the deadline it still works (the deadline is exclusive)', () => {
    const { service, id, inv, clock } = approvedForAlice();
    service.approve(id, bob);
    clock.advance(15 * MIN - 1);
    expect(service.consume(id, { requester: alice, invocation: inv, target: 'prod' }).status).toBe('used');
  });

  it('TTLs are configurable', () => {
    const { service, clock } = newService({ pendingTtlMs: 60_000, approvedTtlMs: 5_000 });
    const s = service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    expect(Date.parse(s.expiresAt) - clock.ms).toBe(60_000);
    clock.advance(1000);
    expect(Date.parse(service.approve(s.id, bob).expiresAt) - clock.ms).toBe(5_000);
  });

  it('refused uses are recorded in the event log', () => {
    const { service, id, inv, db } = approvedForAlice();
    service.approve(id, bob);
    expect(() => service.consume(id, { requester: dave, invocation: inv, target: 'prod' })).toThrow(GuardError);
    expect(db.prepare(`SELECT actor, comment FROM approval_events WHERE kind = 'refused'`).all()).toEqual([
      { actor: 'dave', comment: 'approval_mismatch' },
    ]);
  });
});

describe('ApprovalService: listing and visibility', () => {
  it('approvers list what they can decide; requesters their own; auditors all', () => {
    const { service } = newService();
    const a = service.open({ requester: alice, invocation: deleteBucket('a'), target: 'prod', decision: approveDecision(), reason: '' });
    const d = service.open({ requester: dave, invocation: deleteBucket('d'), target: 'prod', decision: approveDecision(1, ['sre']), reason: '' });
    expect(service.list({ forApprover: bob }).map((s) => s.id)).toEqual([a.id]);
    expect(service.list({ forApprover: carol }).map((s) => s.id).sort()).toEqual([a.id, d.id].sort());
    expect(service.list({ forApprover: alice }).map((s) => s.id)).toEqual([]); // never her own
    expect(service.list({ visibleTo: dave }).map((s) => s.id)).toEqual([d.id]);
    expect(service.list({ visibleTo: erin }).length).toBe(2);
    expect(service.list({ visibleTo: { subject: 'zed', groups: [] } })).toEqual([]);
    service.approve(a.id, carol);
    expect(service.list({ forApprover: carol }).map((s) => s.id)).toEqual([d.id]);
    expect(service.canDecide(service.get(d.id)!, carol)).toBe(true);
    expect(service.canDecide(service.get(d.id)!, dave)).toBe(false);
    expect(service.canView(service.get(d.id)!, bob)).toBe(false);
  });
});

describe('ApprovalService: notifications', () => {
  it('notifies after each committed change and survives a throwing notifier', () => {
    const seen: ApprovalNotification[] = [];
    const { service } = newService({
      notify: (e) => {
        seen.push(e);
        throw new Error('receiver is down');
      },
    });
    const s = service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'why' });
    service.approve(s.id, bob, 'ok');
    service.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' });
    expect(seen.map((e) => [e.kind, e.actor, e.approval.status])).toEqual([
      ['opened', 'alice', 'pending'],
      ['approved', 'bob', 'approved'],
      ['used', 'alice', 'used'],
    ]);
    expect(seen[1]!.comment).toBe('ok');
    // A refused decision notifies nobody.
    expect(() => service.approve(s.id, carol)).toThrow(GuardError);
    expect(seen.length).toBe(3);
  });
});
