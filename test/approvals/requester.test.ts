import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalWaitMs, awaitApproval, promptReason } from '../../src/approvals/requester.js';
import { RecordingHost } from '../helpers/recording-host.js';
import { alice, approveDecision, bob, carol, deleteBucket } from './fixtures.js';
import { startApprovalsServer, type ApprovalsServer } from './helpers/approvals-server.js';
import { rejection } from '../helpers/rejection.js';

// The requester's wait, against the approval routes on a real socket with real IdP-issued tokens.
let srv: ApprovalsServer;
beforeAll(async () => {
  srv = await startApprovalsServer();
});
afterAll(async () => {
  await srv?.close();
});

const open = (count = 1) =>
  srv.service.open({
    requester: alice,
    invocation: deleteBucket(`r-${Math.random().toString(36).slice(2, 8)}`),
    target: 'prod',
    decision: approveDecision(count),
    reason: 'requester test',
  });
const client = () => ({ brokerUrl: srv.url, token: srv.tokens.alice! });

describe('requester side', () => {
  it('--wait and GUARD_AWS_APPROVAL_WAIT', async () => {
    expect(approvalWaitMs('30', {})).toBe(30_000);
    expect(approvalWaitMs(undefined, { GUARD_AWS_APPROVAL_WAIT: '5' })).toBe(5000);
    expect(approvalWaitMs('0', { GUARD_AWS_APPROVAL_WAIT: '5' })).toBe(0);
    expect(approvalWaitMs(undefined, {})).toBeUndefined();
    for (const bad of ['-1', '1.5', 'soon', '9999999']) expect(() => approvalWaitMs(bad, {})).toThrow(expect.objectContaining({ code: 'usage' }) as unknown as Error);
  });

  it('asks for a reason only on a terminal', async () => {
    const tty = new RecordingHost(true);
    (tty as RecordingHost & { prompt: () => Promise<string> }).prompt = async () => '  rotate the key  ';
    expect(await promptReason(tty, 'kms-needs-approval', 'key changes need a second person')).toBe('rotate the key');
    expect(tty.stderr[0]).toContain('rule kms-needs-approval');
    expect(await promptReason(new RecordingHost(false), null, 'x')).toBeUndefined();
  });

  it('says who can approve and how, shows live status, and returns once approved', async () => {
    const a = await open(2);
    const host = new RecordingHost(true);
    let polls = 0;
    const done = await awaitApproval({
      ...client(),
      host,
      approval: a,
      pollMs: 5,
      sleep: async () => {
        polls++;
        if (polls === 1) await srv.service.approve(a.id, bob, 'fine by me');
        if (polls === 2) await srv.service.approve(a.id, carol);
      },
    });
    expect(done.status).toBe('approved');
    expect(host.stderr[0]).toBe(`Approval request ${a.id}: needs 2 approvals from approvers (rule destructive-needs-approval: destructive calls need a second person).`);
    expect(host.stderr).toContain(`  approver: guard-aws approvals show ${a.id} && guard-aws approvals approve ${a.id}`);
    expect(host.stderr).toContain('approved by bob: fine by me');
    expect(host.stderr).toContain('approved by carol');
    expect(host.statuses[0]).toMatch(new RegExp(`^waiting for approval ${a.id}: 0 of 2, expires in \\d+m$`));
  });

  it('a denial throws approval_denied (77) with the comment', async () => {
    const a = await open();
    const e = await rejection(
      awaitApproval({ ...client(), host: new RecordingHost(), approval: a, pollMs: 5, sleep: async () => void await srv.service.deny(a.id, bob, 'wrong account') }),
    );
    expect([e.code, e.exitCode]).toEqual(['approval_denied', 77]);
    expect(e.message).toContain('wrong account');
  });

  it('CI (no wait): approval_timeout (75) naming --approval ID', async () => {
    const a = await open();
    const e = await rejection(awaitApproval({ ...client(), host: new RecordingHost(), approval: a, waitMs: 0 }));
    expect([e.code, e.exitCode]).toEqual(['approval_timeout', 75]);
    expect(e.message).toContain(`--approval ${a.id}`);
    expect((await srv.service.get(a.id))!.status).toBe('pending');
  });

  it('Ctrl-C withdraws the request', async () => {
    const a = await open();
    const ac = new AbortController();
    const e = await rejection(awaitApproval({ ...client(), host: new RecordingHost(true), approval: a, pollMs: 5, signal: ac.signal, sleep: async () => ac.abort() }));
    expect([e.code, e.exitCode]).toEqual(['interrupted', 130]);
    expect((await srv.service.get(a.id))!.status).toBe('withdrawn');
  });
});
