import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import type { ApprovalNotification } from '../../src/approvals/service.js';
import { alice, approveDecision, bob, carol, codeOf, dave, deleteBucket, erin, newService as newServiceOn } from './fixtures.js';
import type { ApprovalServiceOptions } from '../../src/approvals/service.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

const MIN = 60_000;

async function errorOf(fn: () => unknown): Promise<GuardError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error('expected a GuardError, nothing was thrown');
}

/** Alice asks to delete a bucket; bob approves. */
// The same tests on both stores: SQLite (embedded) and a real PostgreSQL server (test/helpers/postgres.ts).
describe.each(DIALECTS)('on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());
  const newService = async (opts: ApprovalServiceOptions = {}) => newServiceOn(opts, await dbs.open());

  async function approvedForAlice(count = 1) {
    const env = await newService();
    const inv = deleteBucket();
    const a = await env.service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(count), reason: 'decommission' });
    return { ...env, inv, id: a.id, opened: a };
  }

  describe('ApprovalService: opening', () => {
    it('opens a pending request showing the whole call, the rule and the deadline', async () => {
      const { opened, clock } = await approvedForAlice();
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

    it('never stores or shows secret values from the argv', async () => {
      const { service, db } = await newService();
      const argv = ['secretsmanager', 'put-secret-value', '--secret-id', 'db', '--secret-string', 'hunter2-s3cr3t'];
      const inv = deleteBucket('x', { argv, canonicalArgv: argv, params: { SecretId: 'db', SecretString: 'hunter2-s3cr3t' } });
      const s = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
      expect(s.argv).toEqual(['secretsmanager', 'put-secret-value', '--secret-id', 'db', '--secret-string', '<masked>']);
      const dump = JSON.stringify((await db.all('SELECT * FROM approval_requests'))) + JSON.stringify((await db.all('SELECT * FROM approval_events')));
      expect(dump).not.toContain('hunter2');
    });

    it('asking again for the same call returns the open request instead of a second one', async () => {
      const { service, inv, id } = await approvedForAlice();
      const again = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: 'again' });
      expect(again.id).toBe(id);
      const other = await service.open({ requester: alice, invocation: deleteBucket('other'), target: 'prod', decision: approveDecision(), reason: '' });
      expect(other.id).not.toBe(id);
    });

    it('refuses a rule that names no approver group', async () => {
      const { service } = await newService();
      const d = { ...approveDecision(), approval: { groups: [], count: 1 } };
      expect(await codeOf(() => service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: d, reason: '' }))).toBe('config_invalid');
    });

    it('caps the open requests of one requester so approvers cannot be flooded', async () => {
      const { service } = await newService({ maxPendingPerRequester: 2 });
      const ask = (b: string) => service.open({ requester: dave, invocation: deleteBucket(b), target: 'prod', decision: approveDecision(), reason: '' });
      const first = await ask('a');
      await ask('b');
      expect(await codeOf(() => ask('c'))).toBe('forbidden');
      expect((await ask('a')).id).toBe(first.id); // the same call still finds its open request
      await service.withdraw(first.id, dave);
      expect((await ask('c')).status).toBe('pending');
      expect((await service.open({ requester: alice, invocation: deleteBucket('c'), target: 'prod', decision: approveDecision(), reason: '' })).status).toBe('pending');
    });

    it('refuses an over-long reason', async () => {
      const { service } = await newService();
      expect(
        await codeOf(() => service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'x'.repeat(1001) })),
      ).toBe('usage');
    });
  });

  describe('ApprovalService: who may decide', () => {
    it('refuses self-approval even when the requester is in the approver group', async () => {
      const { service, id } = await approvedForAlice();
      expect(alice.groups).toContain('approvers');
      expect(await codeOf(() => service.approve(id, alice, 'looks fine to me'))).toBe('self_approval');
      // Same subject with other groups in a fresh token: still the requester.
      expect(await codeOf(() => service.approve(id, { subject: 'alice', groups: ['approvers', 'admins'] }))).toBe('self_approval');
      expect(await codeOf(() => service.deny(id, alice))).toBe('self_approval');
      expect((await service.get(id))!.status).toBe('pending');
      expect((await service.get(id))!.approvals).toEqual([]);
    });

    it('refuses approval and denial by someone outside the approver groups', async () => {
      const { service, id } = await approvedForAlice();
      expect(await codeOf(() => service.approve(id, dave))).toBe('not_approver');
      expect(await codeOf(() => service.deny(id, dave))).toBe('not_approver');
      expect(await codeOf(() => service.approve(id, erin))).toBe('not_approver'); // auditors read, never decide
      expect((await service.get(id))!.status).toBe('pending');
    });

    it('two approvals required: one is not enough, the same approver twice counts once', async () => {
      const { service, id, inv } = await approvedForAlice(2);
      const one = await service.approve(id, bob, 'ok');
      expect(one.status).toBe('pending');
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_pending');
      expect(await codeOf(() => service.approve(id, bob, 'ok again'))).toBe('approval_duplicate');
      expect(await codeOf(() => service.approve(id, { subject: 'bob', groups: ['approvers', 'sre'] }))).toBe('approval_duplicate');
      expect((await service.get(id))!.approvals.map((a) => a.by)).toEqual(['bob']);
      expect((await service.get(id))!.status).toBe('pending');
      const two = await service.approve(id, carol, 'fine');
      expect(two.status).toBe('approved');
      expect(two.approvals.map((a) => a.by)).toEqual(['bob', 'carol']);
      expect((await service.consume(id, { requester: alice, invocation: inv, target: 'prod' })).status).toBe('used');
    });

    it('a denial is final and carries the comment', async () => {
      const { service, id, inv, clock } = await approvedForAlice(2);
      await service.approve(id, bob, 'ok');
      clock.advance(1000);
      const denied = await service.deny(id, carol, 'not during the freeze');
      expect(denied.status).toBe('denied');
      expect(denied.denial).toEqual({ by: 'carol', at: new Date(clock.ms).toISOString(), comment: 'not during the freeze' });
      expect(await codeOf(() => service.approve(id, { subject: 'frank', groups: ['approvers'] }))).toBe('approval_closed');
      expect(await codeOf(() => service.deny(id, bob))).toBe('approval_closed');
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
      expect(e.code).toBe('approval_denied');
      expect(e.exitCode).toBe(77);
      expect(e.message).toContain('not during the freeze');
      expect(e.details).toMatchObject({ by: 'carol', comment: 'not during the freeze' });
      expect((await service.get(id))!.status).toBe('denied');
    });

    it('records every decision with who, when and the comment', async () => {
      const { service, id, db, clock } = await approvedForAlice(2);
      clock.advance(5000);
      await service.approve(id, bob, 'checked the backup');
      clock.advance(5000);
      await service.approve(id, carol);
      const events = (await db.all('SELECT kind, actor, at, comment FROM approval_events WHERE approval_id = ? ORDER BY seq', [id]));
      const t0 = clock.ms - 10_000;
      expect(events).toEqual([
        { kind: 'opened', actor: 'alice', at: t0, comment: 'decommission' },
        { kind: 'approved', actor: 'bob', at: t0 + 5000, comment: 'checked the backup' },
        { kind: 'approved', actor: 'carol', at: t0 + 10_000, comment: null },
      ]);
    });

    it('only the requester may withdraw', async () => {
      const { service, id, inv } = await approvedForAlice();
      expect(await codeOf(() => service.withdraw(id, bob))).toBe('forbidden');
      expect(await codeOf(() => service.withdraw(id, { subject: 'mallory', groups: ['approvers', 'auditors'] }))).toBe('forbidden');
      expect((await service.get(id))!.status).toBe('pending');
      await service.approve(id, bob);
      const w = await service.withdraw(id, alice, 'not needed');
      expect(w.status).toBe('withdrawn');
      expect(w.withdrawnAt).toBeDefined();
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_closed');
    });

    it('unknown ids are named as such', async () => {
      const { service } = await newService();
      expect(await codeOf(() => service.approve('apr_nope', bob))).toBe('approval_not_found');
      expect(await codeOf(() => service.consume('apr_nope', { requester: alice, invocation: deleteBucket(), target: 'prod' }))).toBe('approval_not_found');
      expect(await service.get('apr_nope')).toBeUndefined();
    });
  });

  describe('ApprovalService: an approval lets exactly that call run once', () => {
    it('the approved call runs once; a second use is refused', async () => {
      const { service, id, inv } = await approvedForAlice();
      await service.approve(id, bob);
      const used = await service.consume(id, { requester: alice, invocation: deleteBucket(), target: 'prod', grantId: 'g-1' });
      expect(used).toMatchObject({ status: 'used', grantId: 'g-1' });
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
      expect(e.code).toBe('approval_used');
      expect(e.exitCode).toBe(77);
    });

    it('is refused for another call (different argv) and stays usable for the right one', async () => {
      const { service, id, inv } = await approvedForAlice();
      await service.approve(id, bob);
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: deleteBucket('payroll'), target: 'prod' }));
      expect(e.code).toBe('approval_mismatch');
      expect(e.details.field).toBe('argv');
      // Same resources, an extra flag on the argv: still another call.
      const argv = [...inv.canonicalArgv, '--expected-bucket-owner', '111122223333'];
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: { ...inv, argv, canonicalArgv: argv }, target: 'prod' }))).toBe(
        'approval_mismatch',
      );
      expect((await service.consume(id, { requester: alice, invocation: inv, target: 'prod' })).status).toBe('used');
    });

    it('is refused when the argv is the same but the content differs (file:// changed after approval, other region)', async () => {
      const { service, id, inv } = await approvedForAlice();
      await service.approve(id, bob);
      const otherParams = { ...inv, params: { Bucket: 'prod-data', ExpectedBucketOwner: '999988887777' } };
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: otherParams, target: 'prod' }));
      expect(e.code).toBe('approval_mismatch');
      expect(e.details.field).toBe('call');
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: { ...inv, region: 'eu-west-1' }, target: 'prod' }))).toBe(
        'approval_mismatch',
      );
      const wider = { ...inv, permissions: [{ action: 's3:DeleteBucket', resources: ['*'], derived: false }] };
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: wider, target: 'prod' }))).toBe('approval_mismatch');
    });

    it('is refused for another person, even one in the approver group, and stays usable by the requester', async () => {
      const { service, id, inv } = await approvedForAlice();
      await service.approve(id, bob);
      const e = await errorOf(() => service.consume(id, { requester: bob, invocation: inv, target: 'prod' }));
      expect(e.code).toBe('approval_mismatch');
      expect(e.details.field).toBe('requester');
      expect(await codeOf(() => service.consume(id, { requester: dave, invocation: inv, target: 'prod' }))).toBe('approval_mismatch');
      expect((await service.consume(id, { requester: alice, invocation: inv, target: 'prod' })).status).toBe('used');
    });

    it('is refused on another target', async () => {
      const { service, id, inv } = await approvedForAlice();
      await service.approve(id, bob);
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'staging' }));
      expect(e.code).toBe('approval_mismatch');
      expect(e.details.field).toBe('target');
      expect((await service.get(id))!.status).toBe('approved');
    });

    it('a pending request expires after 15 minutes (frozen clock): no decision, no use', async () => {
      const { service, id, inv, clock } = await approvedForAlice();
      clock.advance(15 * MIN - 1);
      expect((await service.get(id))!.status).toBe('pending');
      clock.advance(1);
      expect((await service.get(id))!.status).toBe('expired');
      expect(await codeOf(() => service.approve(id, bob))).toBe('approval_expired');
      expect(await codeOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }))).toBe('approval_expired');
      expect((await service.list({ status: 'expired' })).map((s) => s.id)).toEqual([id]);
      expect(await service.list({ status: 'pending' })).toEqual([]);
      // After expiry, asking again opens a fresh request.
      const fresh = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
      expect(fresh.id).not.toBe(id);
    });

    it('an approved approval that is not used expires 15 minutes after the approval', async () => {
      const { service, id, inv, clock } = await approvedForAlice();
      clock.advance(10 * MIN);
      const a = await service.approve(id, bob);
      expect(a.expiresAt).toBe(new Date(clock.ms + 15 * MIN).toISOString());
      clock.advance(15 * MIN);
      const e = await errorOf(() => service.consume(id, { requester: alice, invocation: inv, target: 'prod' }));
      expect(e.code).toBe('approval_expired');
      expect(e.exitCode).toBe(75);
    });

    it('just before the deadline it still works (the deadline is exclusive)', async () => {
      const { service, id, inv, clock } = await approvedForAlice();
      await service.approve(id, bob);
      clock.advance(15 * MIN - 1);
      expect((await service.consume(id, { requester: alice, invocation: inv, target: 'prod' })).status).toBe('used');
    });

    it('TTLs are configurable', async () => {
      const { service, clock } = await newService({ pendingTtlMs: 60_000, approvedTtlMs: 5_000 });
      const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
      expect(Date.parse(s.expiresAt) - clock.ms).toBe(60_000);
      clock.advance(1000);
      expect(Date.parse((await service.approve(s.id, bob)).expiresAt) - clock.ms).toBe(5_000);
    });

    it('refused uses are recorded in the event log', async () => {
      const { service, id, inv, db } = await approvedForAlice();
      await service.approve(id, bob);
      await expect(service.consume(id, { requester: dave, invocation: inv, target: 'prod' })).rejects.toThrow(GuardError);
      expect((await db.all(`SELECT actor, comment FROM approval_events WHERE kind = 'refused'`))).toEqual([
        { actor: 'dave', comment: 'approval_mismatch' },
      ]);
    });
  });

  describe('ApprovalService: listing and visibility', () => {
    it('approvers list what they can decide; requesters their own; auditors all', async () => {
      const { service } = await newService();
      const a = await service.open({ requester: alice, invocation: deleteBucket('a'), target: 'prod', decision: approveDecision(), reason: '' });
      const d = await service.open({ requester: dave, invocation: deleteBucket('d'), target: 'prod', decision: approveDecision(1, ['sre']), reason: '' });
      expect((await service.list({ forApprover: bob })).map((s) => s.id)).toEqual([a.id]);
      expect((await service.list({ forApprover: carol })).map((s) => s.id).sort()).toEqual([a.id, d.id].sort());
      expect((await service.list({ forApprover: alice })).map((s) => s.id)).toEqual([]); // never her own
      expect((await service.list({ visibleTo: dave })).map((s) => s.id)).toEqual([d.id]);
      expect((await service.list({ visibleTo: erin })).length).toBe(2);
      expect(await service.list({ visibleTo: { subject: 'zed', groups: [] } })).toEqual([]);
      await service.approve(a.id, carol);
      expect((await service.list({ forApprover: carol })).map((s) => s.id)).toEqual([d.id]);
      expect(service.canDecide((await service.get(d.id))!, carol)).toBe(true);
      expect(service.canDecide((await service.get(d.id))!, dave)).toBe(false);
      expect(service.canView((await service.get(d.id))!, bob)).toBe(false);
    });
  });

  describe('ApprovalService: pages and retention', () => {
    it('pages newest first with a cursor: every request exactly once, whatever the ties in time', async () => {
      const { service, clock } = await newService({ maxPendingPerRequester: 100 });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await service.open({ requester: alice, invocation: deleteBucket(`p-${i}`), target: 'prod', decision: approveDecision(), reason: '' })).id);
        if (i % 3 === 2) clock.advance(1); // several requests share a created_at: the id breaks the tie
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await service.listPage({ requester: 'alice', limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.approvals.map((a) => a.id));
        cursor = page.next;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(new Set(seen).size).toBe(7);
      expect(seen.sort()).toEqual([...ids].sort());
      expect(await codeOf(() => service.listPage({ cursor: 'bm90LWpzb24' }))).toBe('usage');
    });

    it('retention deletes closed requests older than it (with their events), never an open one', async () => {
      const { service, clock, db } = await newService({ retainClosedMs: 60 * MIN, maxPendingPerRequester: 100 });
      const open = (b: string) => service.open({ requester: alice, invocation: deleteBucket(b), target: 'prod', decision: approveDecision(), reason: '' });
      const denied = await open('old-denied');
      await service.deny(denied.id, bob);
      const used = await open('old-used');
      await service.approve(used.id, bob);
      await service.consume(used.id, { requester: alice, invocation: deleteBucket('old-used'), target: 'prod' });
      const lapsed = await open('old-expired'); // pending, expires after 15 minutes
      clock.advance(30 * MIN);
      const recent = await open('recent');
      await service.withdraw(recent.id, alice);
      const waiting = await open('waiting');
      expect(await service.purgeClosed()).toBe(0); // nothing closed an hour ago yet
      clock.advance(45 * MIN);
      // denied and used closed 75 minutes ago, the lapsed one expired 60 minutes ago (not yet past the hour).
      expect(await service.purgeClosed()).toBe(2);
      expect(await service.get(denied.id)).toBeUndefined();
      expect(await service.get(used.id)).toBeUndefined();
      expect((await service.get(lapsed.id))?.status).toBe('expired');
      expect((await service.get(recent.id))?.status).toBe('withdrawn');
      clock.advance(20 * MIN);
      // Now the lapsed one (expired 80 minutes ago) and the withdrawn one (65 minutes ago) go.
      expect(await service.purgeClosed()).toBe(2);
      expect(await service.get(lapsed.id)).toBeUndefined();
      expect(await service.get(recent.id)).toBeUndefined();
      // The request left waiting for its approvers expired 50 minutes ago: kept for now.
      expect((await service.get(waiting.id))?.status).toBe('expired');
      const left = await db.all<{ approval_id: string }>('SELECT DISTINCT approval_id FROM approval_events');
      expect(left.map((r) => r.approval_id)).toEqual([waiting.id]);
    });
  });

  describe('ApprovalService: notifications', () => {
    it('notifies after each committed change and survives a throwing notifier', async () => {
      const seen: ApprovalNotification[] = [];
      const { service } = await newService({
        notify: (e) => {
          seen.push(e);
          throw new Error('receiver is down');
        },
      });
      const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'why' });
      await service.approve(s.id, bob, 'ok');
      await service.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' });
      expect(seen.map((e) => [e.kind, e.actor, e.approval.status])).toEqual([
        ['opened', 'alice', 'pending'],
        ['approved', 'bob', 'approved'],
        ['used', 'alice', 'used'],
      ]);
      expect(seen[1]!.comment).toBe('ok');
      // A refused decision notifies nobody.
      await expect(service.approve(s.id, carol)).rejects.toThrow(GuardError);
      expect(seen.length).toBe(3);
    });
  });
});
