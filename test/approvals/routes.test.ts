import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalSummary, ErrorResponse } from '../../src/api/types.js';
import { alice, approveDecision, dave, deleteBucket } from './fixtures.js';
import { startApprovalsServer, type ApprovalsServer } from './helpers/approvals-server.js';

let srv: ApprovalsServer;
beforeAll(async () => {
  srv = await startApprovalsServer();
});
afterAll(async () => {
  await srv?.close();
});

async function api(method: string, path: string, who: string | null, body?: unknown, headers: Record<string, string> = {}) {
  const h: Record<string, string> = { ...headers };
  if (who) h.authorization = `Bearer ${srv.tokens[who]}`;
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const res = await fetch(`${srv.url}${path}`, { method, headers: h, body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as any, text };
}

function openFor(requester = alice, bucket = `b-${Math.random().toString(36).slice(2, 8)}`, count = 1, groups = ['approvers']) {
  return srv.service.open({ requester, invocation: deleteBucket(bucket), target: 'prod', decision: approveDecision(count, groups), reason: 'cleanup' });
}

describe('/v1/approvals over HTTP with real tokens', () => {
  it('refuses without a token or with a forged one', async () => {
    const s = await openFor();
    expect((await api('GET', `/v1/approvals/${s.id}`, null)).status).toBe(401);
    const [h, p] = srv.tokens.bob!.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'bob', groups: ['approvers'], aud: srv.idp.audience, iss: srv.idp.issuer })).toString('base64url')}.${'A'.repeat(43)}`;
    void p;
    const r = await fetch(`${srv.url}/v1/approvals/${s.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(401);
    expect((await srv.service.get(s.id))!.status).toBe('pending');
  });

  it('shows the full parsed call, its risks and the rule to the requester and approvers; refuses others', async () => {
    const s = await openFor();
    for (const who of ['alice', 'bob', 'erin']) {
      const r = await api('GET', `/v1/approvals/${s.id}`, who);
      expect(r.status).toBe(200);
      const a = r.body as ApprovalSummary;
      expect(a).toMatchObject({
        id: s.id,
        status: 'pending',
        requester: 'alice',
        argv: ['s3api', 'delete-bucket', '--bucket', expect.any(String)],
        actions: ['s3:DeleteBucket'],
        risks: ['write', 'destructive'],
        rule: 'destructive-needs-approval',
        ruleReason: 'destructive calls need a second person',
        approverGroups: ['approvers'],
        required: 1,
      });
      expect(a.canDecide).toBe(who === 'bob');
    }
    const r = await api('GET', `/v1/approvals/${s.id}`, 'dave');
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    const missing = await api('GET', '/v1/approvals/apr_doesnotexist', 'bob');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('approval_not_found');
  });

  it('an approver approves with a comment; the decision is recorded with who and when', async () => {
    const s = await openFor();
    const r = await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', { comment: 'backup verified' });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('approved');
    expect(r.body.approvals).toEqual([{ by: 'bob', at: expect.stringMatching(/Z$/), comment: 'backup verified' }]);
  });

  it('refuses self-approval over HTTP even though alice is in the approver group', async () => {
    const s = await openFor();
    const r = await api('POST', `/v1/approvals/${s.id}/approve`, 'alice', {});
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('self_approval');
    expect((await srv.service.get(s.id))!.approvals).toEqual([]);
  });

  it('refuses an approver outside the rule\'s groups', async () => {
    const s = await openFor(alice, undefined, 1, ['sre']);
    const r = await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', {});
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('not_approver');
    const ok = await api('POST', `/v1/approvals/${s.id}/approve`, 'carol', {});
    expect(ok.status).toBe(200);
  });

  it('two approvals: the same approver twice is refused (409) and counts once', async () => {
    const s = await openFor(alice, undefined, 2);
    expect((await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', {})).body.status).toBe('pending');
    const again = await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('approval_duplicate');
    const done = await api('POST', `/v1/approvals/${s.id}/approve`, 'carol', {});
    expect(done.body.status).toBe('approved');
    expect(done.body.approvals.map((a: { by: string }) => a.by)).toEqual(['bob', 'carol']);
  });

  it('a denial is final and carries the comment', async () => {
    const s = await openFor();
    const d = await api('POST', `/v1/approvals/${s.id}/deny`, 'carol', { comment: 'use the staging bucket' });
    expect(d.status).toBe(200);
    expect(d.body.denial).toMatchObject({ by: 'carol', comment: 'use the staging bucket' });
    const late = await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', {});
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('approval_closed');
    expect((await api('GET', `/v1/approvals/${s.id}`, 'alice')).body.status).toBe('denied');
  });

  it('withdraw: requester only', async () => {
    const s = await openFor();
    const r = await api('POST', `/v1/approvals/${s.id}/withdraw`, 'bob', {});
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    const w = await api('POST', `/v1/approvals/${s.id}/withdraw`, 'alice', {});
    expect(w.status).toBe(200);
    expect(w.body.status).toBe('withdrawn');
  });

  it('lists what each caller may see or decide', async () => {
    const mine = await openFor(dave, undefined, 1, ['sre']);
    const forBob = await api('GET', '/v1/approvals?scope=decide', 'bob');
    expect(forBob.status).toBe(200);
    expect(forBob.body.approvals.every((a: ApprovalSummary) => a.canDecide && a.requester !== 'bob')).toBe(true);
    expect(forBob.body.approvals.map((a: ApprovalSummary) => a.id)).not.toContain(mine.id);
    const forCarol = await api('GET', '/v1/approvals?scope=decide&status=pending', 'carol');
    expect(forCarol.body.approvals.map((a: ApprovalSummary) => a.id)).toContain(mine.id);
    const daves = await api('GET', '/v1/approvals', 'dave');
    expect(daves.body.approvals.map((a: ApprovalSummary) => a.id)).toEqual([mine.id]);
    const mineOnly = await api('GET', '/v1/approvals?scope=mine', 'alice');
    expect(mineOnly.body.approvals.every((a: ApprovalSummary) => a.requester === 'alice')).toBe(true);
    const all = await api('GET', '/v1/approvals', 'erin');
    expect(all.body.approvals.length).toBeGreaterThan(daves.body.approvals.length);
  });

  it('validates input before acting and never answers internals', async () => {
    const s = await openFor();
    const bad: [string, string, unknown, number, string][] = [
      ['POST', `/v1/approvals/${s.id}/approve`, { comment: 42 }, 400, 'bad_request'],
      ['POST', `/v1/approvals/${s.id}/approve`, { comment: 'x'.repeat(1001) }, 400, 'bad_request'],
      ['POST', `/v1/approvals/${s.id}/approve`, { comment: 'ok', approver: 'alice' }, 400, 'bad_request'],
      ['POST', `/v1/approvals/${s.id}/approve`, '{not json', 400, 'bad_request'],
      ['GET', '/v1/approvals?status=bogus', undefined, 400, 'bad_request'],
      ['GET', '/v1/approvals?limit=0', undefined, 400, 'bad_request'],
      ['GET', `/v1/approvals/${encodeURIComponent('../../etc')}`, undefined, 400, 'bad_request'],
    ];
    for (const [m, p, b, status, code] of bad) {
      const r = await api(m, p, 'bob', b);
      expect([p, r.status, (r.body as ErrorResponse).error.code]).toEqual([p, status, code]);
      expect(r.text).not.toMatch(/at .*\.ts|SQLITE|stack/i);
    }
    expect((await srv.service.get(s.id))!.status).toBe('pending');
  });

  it('an expired request can no longer be decided (409 approval_expired)', async () => {
    const s = await openFor();
    srv.clock.advance(15 * 60_000);
    try {
      const r = await api('POST', `/v1/approvals/${s.id}/approve`, 'bob', {});
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('approval_expired');
      expect((await api('GET', `/v1/approvals/${s.id}`, 'alice')).body.status).toBe('expired');
    } finally {
      srv.clock.advance(-15 * 60_000);
    }
  });
});
