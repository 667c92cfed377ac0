import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import type { Caller } from '../../src/policy/types.js';
import * as state from '../../src/approvals/state.js';
import type { ApprovalRow, Vote } from '../../src/approvals/state.js';

// The approval rules on plain rows: no SQLite, no clock (test/approvals/service.test.ts covers the stored path).

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const who = (subject: string, ...groups: string[]): Caller => ({ subject, groups });
const alice = who('alice', 'dev');
const bob = who('bob', 'approvers');
const carol = who('carol', 'approvers', 'security');
const dave = who('dave', 'security');

function row(over: Partial<ApprovalRow> = {}): ApprovalRow {
  return {
    id: 'apr_1',
    status: 'pending',
    binding_hash: 'h1',
    requester: 'alice',
    requester_name: null,
    target: 'prod',
    call: JSON.stringify({ argv: ['iam', 'delete-role', '--role-name', 'x'], region: 'us-east-1', service: 'iam', operation: 'DeleteRole', actions: [], permissions: [], resources: [], risks: [] }),
    rule: 'iam-writes',
    rule_reason: 'IAM changes need a second person',
    rule_source: null,
    reason: '',
    approver_groups: JSON.stringify(['approvers']),
    required: 1,
    requirements: null,
    created_at: T0,
    expires_at: T0 + 15 * MIN,
    decided_at: null,
    used_at: null,
    grant_id: null,
    ...over,
  };
}

function code(r: unknown): string | undefined {
  return r instanceof GuardError ? r.code : undefined;
}

describe('approve', () => {
  it('never lets the requester approve, whatever their groups, nor a non-member, nor after the deadline', () => {
    expect(code(state.approve(row(), [], who('alice', 'approvers'), T0, 15 * MIN))).toBe('self_approval');
    expect(code(state.approve(row(), [], dave, T0, 15 * MIN))).toBe('not_approver');
    // The deadline is exclusive: at expires_at the request has expired.
    expect(code(state.approve(row(), [], bob, T0 + 15 * MIN, 15 * MIN))).toBe('approval_expired');
    expect(state.approve(row(), [], bob, T0 + 15 * MIN - 1, 15 * MIN)).toMatchObject({ status: 'approved' });
    for (const status of ['denied', 'used', 'withdrawn', 'approved'] as const) {
      expect(code(state.approve(row({ status }), [], bob, T0, 15 * MIN))).toBe('approval_closed');
    }
  });

  it('counts each approver once and starts the use window at the final approval', () => {
    const r = row({ required: 2 });
    const first = state.approve(r, [], bob, T0 + MIN, 5 * MIN);
    expect(first).toBe(r);
    expect(code(state.approve(r, [{ actor: 'bob', groups: ['approvers'] }], bob, T0 + 2 * MIN, 5 * MIN))).toBe('approval_duplicate');
    const done = state.approve(r, [{ actor: 'bob', groups: ['approvers'] }], carol, T0 + 3 * MIN, 5 * MIN);
    expect(done).toMatchObject({ status: 'approved', decided_at: T0 + 3 * MIN, expires_at: T0 + 8 * MIN });
  });

  it('with several rules, every rule needs its own count of approvers who were in its groups when they voted', () => {
    const r = row({
      approver_groups: JSON.stringify(['approvers', 'security']),
      required: 1,
      requirements: JSON.stringify([
        { groups: ['approvers'], count: 1 },
        { groups: ['security'], count: 1 },
      ]),
    });
    expect(state.approve(r, [], bob, T0, MIN)).toBe(r);
    expect(state.approve(r, [{ actor: 'bob', groups: ['approvers'] }], dave, T0, MIN)).toMatchObject({ status: 'approved' });
    // One person in both groups meets both rules.
    expect(state.approve(r, [], carol, T0, MIN)).toMatchObject({ status: 'approved' });
    // A vote recorded without groups (before per-rule quorums) counts for no rule.
    expect(state.quorumMet(r, [{ actor: 'x', groups: null }])).toBe(false);
  });

  it('is approved exactly when `required` distinct eligible approvers have said yes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 12 }), (required, order) => {
        let r = row({ required });
        const votes: Vote[] = [];
        for (const n of order) {
          const approver = who(`approver${n}`, 'approvers');
          const next = state.approve(r, votes, approver, T0, MIN);
          const distinct = new Set(votes.map((v) => v.actor)).size;
          if (r.status === 'approved') expect(code(next)).toBe('approval_closed');
          else if (votes.some((v) => v.actor === approver.subject)) expect(code(next)).toBe('approval_duplicate');
          else {
            expect(next).toMatchObject({ status: distinct + 1 >= required ? 'approved' : 'pending' });
            votes.push({ actor: approver.subject, groups: approver.groups });
          }
          if (!(next instanceof GuardError)) r = next;
        }
        expect(r.status === 'approved').toBe(new Set(votes.map((v) => v.actor)).size >= required);
      }),
    );
  });
});

describe('deny and withdraw', () => {
  it('a denial by an eligible approver is final even after some approvals; the requester withdraws instead', () => {
    expect(state.deny(row({ required: 2 }), bob, T0)).toMatchObject({ status: 'denied', decided_at: T0 });
    expect(code(state.deny(row(), alice, T0))).toBe('self_approval');
    expect(code(state.deny(row(), dave, T0))).toBe('not_approver');
  });

  it('only the requester withdraws, while pending or approved and unused, keeping the decision time', () => {
    expect(code(state.withdraw(row(), bob, T0))).toBe('forbidden');
    expect(state.withdraw(row(), alice, T0)).toMatchObject({ status: 'withdrawn', decided_at: T0 });
    expect(state.withdraw(row({ status: 'approved', decided_at: T0 - 1 }), alice, T0)).toMatchObject({ status: 'withdrawn', decided_at: T0 - 1 });
    expect(code(state.withdraw(row({ status: 'used' }), alice, T0))).toBe('approval_closed');
    expect(code(state.withdraw(row(), alice, T0 + 15 * MIN))).toBe('approval_expired');
  });
});

describe('use', () => {
  const approved = row({ status: 'approved' });
  const attempt = { requester: alice, target: 'prod', bindingHash: 'h1', shownArgv: ['iam', 'delete-role', '--role-name', 'x'] };
  const noDenial = () => undefined;

  it('uses an approved request once, for exactly its call, by its requester', () => {
    expect(state.use(approved, attempt, T0, 'grant-1', noDenial)).toMatchObject({ status: 'used', used_at: T0, grant_id: 'grant-1' });
    const refused = (r: ApprovalRow, a = attempt) => state.use(r, a, T0, 'grant-1', () => ({ by: 'bob', comment: 'no' })) as GuardError;
    expect(refused(approved, { ...attempt, requester: bob })).toMatchObject({ code: 'approval_mismatch', details: { field: 'requester' } });
    expect(refused(approved, { ...attempt, target: 'staging' })).toMatchObject({ code: 'approval_mismatch', details: { field: 'target' } });
    expect(refused(approved, { ...attempt, bindingHash: 'h2' })).toMatchObject({ code: 'approval_mismatch', details: { field: 'call' } });
    expect(refused(approved, { ...attempt, bindingHash: 'h2', shownArgv: ['iam', 'delete-role', '--role-name', 'y'] })).toMatchObject({
      code: 'approval_mismatch',
      details: { field: 'argv' },
    });
    expect(refused(row()).code).toBe('approval_pending');
    expect(refused(row({ status: 'denied' }))).toMatchObject({ code: 'approval_denied', message: expect.stringMatching(/denied by bob: no/) });
    expect(refused(row({ status: 'used' })).code).toBe('approval_used');
    expect(refused(row({ status: 'withdrawn' })).code).toBe('approval_closed');
    expect(state.use(approved, attempt, approved.expires_at, null, noDenial)).toMatchObject({ code: 'approval_expired' });
  });
});

describe('quorums, visibility and text', () => {
  it('refuses a decision that names no approver groups or a count below one', () => {
    expect(code(state.quorumsOf({ rule: 'r', approval: { groups: [], count: 1 } }))).toBe('config_invalid');
    expect(code(state.quorumsOf({ rule: 'r', approval: { groups: ['a'], count: 0 } }))).toBe('config_invalid');
    expect(code(state.quorumsOf({ rule: 'r' }))).toBe('config_invalid');
    expect(state.quorumsOf({ rule: 'r', approval: { groups: ['b', 'a', 'b'], count: 2 } })).toEqual({ union: { groups: ['a', 'b'], count: 2 }, quorums: null });
    const two = state.quorumsOf({
      rule: 'r',
      approval: { groups: ['a'], count: 1, requirements: [{ groups: ['x', 'a'], count: 1 }, { groups: ['y'], count: 2 }] },
    });
    expect(two).toEqual({ union: { groups: ['a', 'x', 'y'], count: 2 }, quorums: [{ groups: ['a', 'x'], count: 1 }, { groups: ['y'], count: 2 }] });
  });

  it('requester, eligible approvers and auditors see a request; only others in the groups decide it, once', () => {
    const s = state.toSummary(row(), [{ kind: 'approved', actor: 'carol', at: T0, comment: null }], T0);
    expect(state.canView(s, alice, ['auditors'])).toBe(true);
    expect(state.canView(s, bob, ['auditors'])).toBe(true);
    expect(state.canView(s, who('eve', 'auditors'), ['auditors'])).toBe(true);
    expect(state.canView(s, dave, ['auditors'])).toBe(false);
    expect(state.canDecide(s, bob)).toBe(true);
    expect(state.canDecide(s, carol)).toBe(false);
    expect(state.canDecide(s, who('alice', 'approvers'))).toBe(false);
    expect(state.canDecide(state.toSummary(row(), [], T0 + 15 * MIN), bob)).toBe(false);
  });

  it('bounds free text', () => {
    expect(state.text('  why  ', 'reason')).toBe('why');
    expect(state.text('   ', 'reason')).toBeNull();
    expect(() => state.text('x'.repeat(state.MAX_TEXT + 1), 'comment')).toThrow(/at most 1000/);
  });
});
