import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getApproval,
  listApprovals,
  waitForApproval,
  waitOutcomeError,
  withdrawApproval,
  type ApprovalClientOptions,
} from '../../src/approvals/client.js';
import type { ApprovalSummary } from '../../src/api/types.js';
import { GuardError } from '../../src/errors.js';
import { freePort } from '../helpers/ports.js';
import { alice, approveDecision, bob, carol, deleteBucket } from './fixtures.js';
import { startApprovalsServer, type ApprovalsServer } from './helpers/approvals-server.js';

// Client helpers against the approval routes on a real socket with real IdP-issued tokens.
let srv: ApprovalsServer;
beforeAll(async () => {
  srv = await startApprovalsServer();
});
afterAll(async () => {
  await srv?.close();
});

const as = (who: string): ApprovalClientOptions => ({ brokerUrl: srv.url, token: srv.tokens[who]! });
const open = (count = 1) =>
  srv.service.open({
    requester: alice,
    invocation: deleteBucket(`w-${Math.random().toString(36).slice(2, 8)}`),
    target: 'prod',
    decision: approveDecision(count),
    reason: 'waiting test',
  });

async function errorOf(p: Promise<unknown>): Promise<GuardError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof GuardError)) throw new Error(`expected a GuardError, got ${String(e)}`);
  return e;
}

describe('approval client helpers', () => {
  it('waits with a live status until approved', async () => {
    const a = await open(2);
    const seen: string[] = [];
    let polls = 0;
    const r = await waitForApproval({
      ...as('alice'),
      id: a.id,
      pollMs: 10,
      onStatus: (s) => seen.push(`${s.status}:${s.approvals.length}`),
      sleep: async () => {
        polls++;
        if (polls === 2) await srv.service.approve(a.id, bob);
        if (polls === 4) await srv.service.approve(a.id, carol);
      },
    });
    expect(r.outcome).toBe('approved');
    expect(seen).toEqual(['pending:0', 'pending:1', 'approved:2']);
    expect(waitOutcomeError(r)).toBeUndefined();
  });

  it('a denial ends the wait with the comment, as approval_denied (77)', async () => {
    const a = await open();
    const r = await waitForApproval({ ...as('alice'), id: a.id, pollMs: 10, sleep: async () => void await srv.service.deny(a.id, bob, 'not today') });
    expect(r.outcome).toBe('denied');
    const e = waitOutcomeError(r)!;
    expect([e.code, e.exitCode]).toEqual(['approval_denied', 77]);
    expect(e.message).toContain('not today');
  });

  it('gives up after waitMs with approval_timeout (75) naming the id to re-run with', async () => {
    const a = await open();
    let t = 0;
    const r = await waitForApproval({ ...as('alice'), id: a.id, pollMs: 1000, waitMs: 3000, now: () => t, sleep: async (ms) => void (t += ms) });
    expect(r.outcome).toBe('timeout');
    const e = waitOutcomeError(r)!;
    expect([e.code, e.exitCode]).toEqual(['approval_timeout', 75]);
    expect(e.message).toContain(`--approval ${a.id}`);
  });

  it('Ctrl-C (abort) withdraws the request', async () => {
    const a = await open();
    const ac = new AbortController();
    const r = await waitForApproval({ ...as('alice'), id: a.id, pollMs: 10, signal: ac.signal, sleep: async () => ac.abort() });
    expect(r.outcome).toBe('aborted');
    expect(r.approval.status).toBe('withdrawn');
    expect((await srv.service.get(a.id))!.status).toBe('withdrawn');
    // An interruption, not a denial: 130 as a shell reports Ctrl-C, never 77.
    expect([waitOutcomeError(r)!.code, waitOutcomeError(r)!.exitCode]).toEqual(['interrupted', 130]);
  });

  it('keeps the broker\'s codes for refusals', async () => {
    const a = await open();
    expect((await errorOf(withdrawApproval(as('bob'), a.id))).code).toBe('forbidden');
    expect((await errorOf(getApproval(as('bob'), 'apr_missing'))).code).toBe('approval_not_found');
    expect((await errorOf(getApproval(as('dave'), a.id))).code).toBe('forbidden');
    const list: ApprovalSummary[] = await listApprovals(as('alice'), { scope: 'mine', status: 'pending' });
    expect(list.every((s) => s.requester === 'alice' && s.status === 'pending')).toBe(true);
  });

  it('a rejected token is auth_rejected (67); an unreachable broker is broker_unreachable (69)', async () => {
    const a = await open();
    const forged = (await errorOf(getApproval({ brokerUrl: srv.url, token: 'e30.e30.AAAA' }, a.id)));
    expect([forged.code, forged.exitCode]).toEqual(['auth_rejected', 67]);
    const down = { brokerUrl: `http://127.0.0.1:${await freePort()}`, token: 'x.y.z' };
    const e = await errorOf(getApproval(down, a.id));
    expect([e.code, e.exitCode]).toEqual(['broker_unreachable', 69]);
    // A wait outlives a short outage, but not a broker that never comes back within the wait.
    let t = 0;
    const w = await errorOf(waitForApproval({ ...down, id: a.id, pollMs: 100, waitMs: 250, now: () => t, sleep: async (ms) => void (t += ms) }));
    expect(w.code).toBe('broker_unreachable');
  });

  it('a token source function is asked for a fresh token on each request', async () => {
    const a = await open();
    let asked = 0;
    await getApproval({ brokerUrl: srv.url, token: async () => (asked++, srv.tokens.alice!) }, a.id);
    await getApproval({ brokerUrl: srv.url, token: async () => (asked++, srv.tokens.alice!) }, a.id);
    expect(asked).toBe(2);
  });
});
