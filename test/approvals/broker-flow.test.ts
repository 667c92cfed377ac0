import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApprovalGate } from '../../src/broker/approval-gate.js';
import { ApprovalService } from '../../src/approvals/service.js';
import type { ApprovalSummary, ErrorResponse, GrantResponse } from '../../src/api/types.js';
import { approvalRoutes } from '../../src/broker/routes/approvals.js';
import { BrokerClient } from '../../src/api/broker-client.js';
import { GuardError } from '../../src/errors.js';
import { openSqliteStore } from '../../src/broker/storage.js';
import { TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from '../broker/helpers/broker-env.js';
import { FakeClock } from './fixtures.js';

// The whole approval flow through the real broker: hono on a socket, bearer tokens signed with jose and verified
// against a JWKS over HTTP, STS on moto_server, SQLite on disk, the real parser and decide() over the broker tests'
// policy (`iam …` → approve by group `approvers`, test/broker/helpers/broker-policy.yaml).
let env: BrokerEnvironment;
let service: ApprovalService;
const clock = new FakeClock(Date.now());
const dir = mkdtempSync(join(tmpdir(), 'guard-approvals-flow-'));

const ALICE = { sub: 'alice', groups: ['developers', 'approvers'], name: 'Alice' };
const BOB = { sub: 'bob', groups: ['approvers'], name: 'Bob' };
const DAVE = { sub: 'dave', groups: ['developers'] };
const DELETE_ROLE = ['iam', 'delete-role', '--role-name', 'old-ci'];

beforeAll(async () => {
  const store = await openSqliteStore({ path: join(dir, 'broker.db') });
  service = new ApprovalService(store.db, { now: clock.now });
  env = await startBrokerEnv({ store, approvals: createApprovalGate(service), routes: [approvalRoutes(service)] });
});
afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tok = (who: Record<string, unknown>) => env.token(who);
async function grant(who: Record<string, unknown>, body: Record<string, unknown>) {
  const res = await env.post('/v1/grants', { transcriptKey: TRANSCRIPT_KEY, ...body }, await tok(who));
  return { status: res.status, body: (await res.json()) as GrantResponse & ErrorResponse };
}
async function decide(who: Record<string, unknown>, id: string, verb: 'approve' | 'deny', comment?: string) {
  const res = await env.post(`/v1/approvals/${id}/${verb}`, comment ? { comment } : {}, await tok(who));
  return { status: res.status, body: (await res.json()) as ApprovalSummary & ErrorResponse };
}
async function ask(argv = DELETE_ROLE): Promise<ApprovalSummary> {
  const r = await grant(ALICE, { argv, reason: 'retiring the old CI role' });
  expect(r.status).toBe(403);
  expect(r.body.error.code).toBe('approval_required');
  return r.body.error.approval!;
}
// Grants the broker issued (it records one per successful AssumeRole).
const assumeCalls = async () => (await env.broker.broker.ctx.store.listGrants({ limit: 10_000 })).length;

describe('approval flow through the broker', () => {
  it('a high-risk call opens a request bound to it; approved, it runs once and only once', async () => {
    const before = await assumeCalls();
    const a = await ask();
    expect(a).toMatchObject({ status: 'pending', requester: 'alice', argv: DELETE_ROLE, target: 'dev', approverGroups: ['approvers'], reason: 'retiring the old CI role' });
    expect(a.actions).toEqual(['iam:DeleteRole']);

    const early = await grant(ALICE, { argv: DELETE_ROLE, approvalId: a.id });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('approval_pending');
    expect(early.body.error.approval?.id).toBe(a.id);

    expect((await decide(ALICE, a.id, 'approve')).body.error.code).toBe('self_approval');
    expect((await decide(DAVE, a.id, 'approve')).body.error.code).toBe('not_approver');
    const ok = await decide(BOB, a.id, 'approve', 'role unused for 90 days');
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('approved');

    // Not for another call, another target, or another person.
    const otherArgv = await grant(ALICE, { argv: ['iam', 'delete-role', '--role-name', 'prod-admin'], approvalId: a.id });
    expect([otherArgv.status, otherArgv.body.error.code]).toEqual([403, 'approval_mismatch']);
    const otherTarget = await grant(ALICE, { argv: DELETE_ROLE, target: 'partner', approvalId: a.id });
    expect([otherTarget.status, otherTarget.body.error.code]).toEqual([403, 'approval_mismatch']);
    const otherPerson = await grant(BOB, { argv: DELETE_ROLE, approvalId: a.id });
    expect([otherPerson.status, otherPerson.body.error.code]).toEqual([403, 'approval_mismatch']);
    expect(await assumeCalls()).toBe(before);

    const run = await grant(ALICE, { argv: DELETE_ROLE, approvalId: a.id });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ decision: 'approve', approvalId: a.id, argv: DELETE_ROLE });
    expect(run.body.credentials.accessKeyId).toBeTruthy();
    expect(await assumeCalls()).toBe(before + 1);

    const twice = await grant(ALICE, { argv: DELETE_ROLE, approvalId: a.id });
    expect([twice.status, twice.body.error.code]).toEqual([409, 'approval_used']);
    expect(await assumeCalls()).toBe(before + 1);
    expect((await service.get(a.id))!.status).toBe('used');
    const issued = (await env.broker.broker.ctx.store.listGrants({ limit: 10_000 })).filter((g) => g.approvalId === a.id);
    expect(issued.map((g) => g.subject)).toEqual(['alice']);
  });

  it('an expired approval is refused (frozen clock)', async () => {
    const a = await ask(['iam', 'delete-role', '--role-name', 'expiring']);
    await decide(BOB, a.id, 'approve');
    clock.advance(15 * 60_000);
    try {
      const r = await grant(ALICE, { argv: ['iam', 'delete-role', '--role-name', 'expiring'], approvalId: a.id });
      expect([r.status, r.body.error.code]).toEqual([409, 'approval_expired']);
    } finally {
      clock.advance(-15 * 60_000);
    }
  });

  it('the lead\'s BrokerClient maps the answers to the documented exit codes', async () => {
    const client = new BrokerClient(env.broker.url);
    const token = await tok(ALICE);
    const argv = ['iam', 'delete-role', '--role-name', 'client-mapped'];
    const needed = await client.grant(token, { argv, transcriptKey: TRANSCRIPT_KEY });
    expect(needed.kind).toBe('approval');
    const id = needed.kind === 'approval' ? needed.approval.id : '';
    const pending = await client.grant(token, { argv, transcriptKey: TRANSCRIPT_KEY, approvalId: id });
    expect(pending).toMatchObject({ kind: 'approval', code: 'approval_pending' });
    await decide(BOB, id, 'deny', 'do it in the maintenance window');
    const denied = await client.grant(token, { argv, transcriptKey: TRANSCRIPT_KEY, approvalId: id }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(GuardError);
    expect((denied as GuardError).exitCode).toBe(77);
    expect((denied as GuardError).message).toContain('do it in the maintenance window');
  });

  it('asking again for the same call while one is pending does not open a second request', async () => {
    const a = await ask(['iam', 'delete-role', '--role-name', 'dedupe']);
    const b = await ask(['iam', 'delete-role', '--role-name', 'dedupe']);
    expect(b.id).toBe(a.id);
  });
});
