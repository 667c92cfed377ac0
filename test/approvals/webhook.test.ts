import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { setupApprovals } from '../../src/approvals/setup.js';
import { checkWebhookConfig, signWebhook, verifyWebhookSignature } from '../../src/approvals/webhook.js';
import { migratedSqlite } from '../helpers/postgres.js';
import { alice, approveDecision, bob, deleteBucket } from './fixtures.js';

const SECRET = 'a'.repeat(16) + 'b'.repeat(16) + 'shared-secret';

interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
  /** Signature checked here with node:crypto directly, not with the module under test. */
  signatureOk: boolean;
}

/** A real HTTP receiver that answers `plan[i]` to the i-th request (then 200), checking every signature itself. */
async function receiver(plan: (number | 'hang')[] = []) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const ts = String(req.headers['x-guard-aws-timestamp']);
      const sig = String(req.headers['x-guard-aws-signature']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${raw}`).digest('hex')}`;
      const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const signatureOk = fresh && sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
      got.push({ headers: req.headers, raw, signatureOk });
      const step = plan[got.length - 1] ?? 200;
      if (step === 'hang') return; // never answers
      res.writeHead(step, { 'content-type': 'text/plain' }).end(step === 200 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Log = { level: string; msg: string; [k: string]: unknown };

/**
 * The approval service with a webhook, wired as the broker wires it (setupApprovals: the event is written to the
 * outbox in the change's transaction and posted by this broker's delivery loop), on a real SQLite database.
 */
async function withWebhook(url: string, webhook: Record<string, unknown> = {}, random = () => 0.5) {
  const db = await migratedSqlite();
  const logs: Log[] = [];
  const approvals = setupApprovals({
    db,
    config: { webhook: { url, ...webhook } },
    env: { GUARD_AWS_WEBHOOK_SECRET: SECRET },
    log: (e) => logs.push(e),
    webhookDeps: { random, pollMs: 20 },
  });
  cleanups.push(() => approvals.close());
  /** Resolves once no event waits for delivery any more (delivered or given up), retries included. */
  const settled = () =>
    vi.waitFor(
      async () => {
        const open = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL');
        expect(Number(open!.n)).toBe(0);
      },
      { timeout: 10_000, interval: 10 },
    );
  return { db, logs, service: approvals.service, settled };
}

describe('approval webhooks (delivered from the outbox)', () => {
  it('delivers requests and decisions to a receiver that fails twice, with backoff and valid signatures', async () => {
    const rx = await receiver([503, 503, 200, 500, 200]);
    cleanups.push(rx.close);
    const { service, logs, settled } = await withWebhook(rx.url, { baseDelayMs: 20, maxAttempts: 5 });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'cleanup' });
    await settled();
    await service.approve(s.id, bob, 'checked');
    await settled();

    expect(rx.got.length).toBe(5);
    expect(rx.got.every((g) => g.signatureOk)).toBe(true);
    const events = rx.got.map((g) => JSON.parse(g.raw));
    expect(events.map((e) => e.type)).toEqual([
      'approval.requested',
      'approval.requested',
      'approval.requested',
      'approval.approved',
      'approval.approved',
    ]);
    // Retries of one event keep its delivery id (receivers de-duplicate on it); a new event has a new id.
    const ids = rx.got.map((g) => g.headers['x-guard-aws-delivery']);
    expect(new Set(ids.slice(0, 3)).size).toBe(1);
    expect(ids[3]).toBe(ids[4]);
    expect(ids[3]).not.toBe(ids[0]);
    expect(events[0]!.deliveryId).toBe(ids[0]);
    expect(rx.got[0]!.headers['x-guard-aws-event']).toBe('approval.requested');
    expect(events[0]).toMatchObject({ actor: 'alice', approval: { id: s.id, status: 'pending', argv: ['s3api', 'delete-bucket', '--bucket', 'prod-data'] } });
    expect(events[4]).toMatchObject({ actor: 'bob', comment: 'checked', approval: { status: 'approved' } });
    // Exponential with jitter in [exp/2, exp]: 20 ms then 40 ms for the first event, 20 ms for the second (random 0.5 → 3/4).
    expect(logs.filter((l) => l.msg === 'webhook attempt failed; retrying').map((l) => l.delayMs)).toEqual([15, 30, 15]);
    expect(JSON.stringify(logs)).not.toContain(SECRET);
    expect(rx.got.some((g) => g.raw.includes(SECRET))).toBe(false);
  });

  it('never blocks a decision: a receiver that never answers leaves approve() unaffected, and is given up after bounded attempts', async () => {
    const rx = await receiver(['hang', 'hang', 'hang', 'hang']);
    cleanups.push(rx.close);
    const { db, service, logs, settled } = await withWebhook(rx.url, { timeoutMs: 150, maxAttempts: 2, baseDelayMs: 10 });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    const a = await service.approve(s.id, bob);
    // Both decisions are committed and returned while no delivery has been answered.
    expect(a.status).toBe('approved');
    expect((await service.get(s.id))!.status).toBe('approved');
    await settled();
    expect(rx.got.length).toBe(4); // two events, two attempts each, none answered
    const rows = await db.all<{ attempts: number; last_error: string }>('SELECT attempts, last_error FROM webhook_outbox ORDER BY created_at');
    expect(rows.map((r) => [Number(r.attempts), r.last_error])).toEqual([
      [2, 'timed out'],
      [2, 'timed out'],
    ]);
    expect(logs.filter((l) => l.msg === 'webhook delivery given up').map((l) => l.attempts)).toEqual([2, 2]);
  });

  it('does not retry a permanent refusal (401) and retries 429/5xx only up to maxAttempts', async () => {
    const rx = await receiver([401]);
    cleanups.push(rx.close);
    const one = await withWebhook(rx.url);
    await one.service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    await one.settled();
    expect(rx.got.length).toBe(1);
    expect((await one.db.get<{ last_error: string }>('SELECT last_error FROM webhook_outbox'))!.last_error).toBe('HTTP 401');

    const rx2 = await receiver([500, 429, 503, 502]);
    cleanups.push(rx2.close);
    const two = await withWebhook(rx2.url, { maxAttempts: 3, baseDelayMs: 5 });
    await two.service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    await two.settled();
    expect(rx2.got.length).toBe(3);
    expect((await two.db.get<{ last_error: string; failed_at: number | null }>('SELECT last_error, failed_at FROM webhook_outbox'))!).toMatchObject({ last_error: 'HTTP 503' });
  });

  it('sends a Slack-compatible message when asked, still signed', async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const { service, settled } = await withWebhook(rx.url, { format: 'slack' });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'old <bucket>' });
    await settled();
    const msg = JSON.parse(rx.got[0]!.raw);
    expect(Object.keys(msg).sort()).toEqual(['blocks', 'text']);
    expect(msg.text).toContain('alice asks to run `aws s3api delete-bucket --bucket prod-data` on prod');
    expect(JSON.stringify(msg.blocks)).toContain(`guard-aws approvals approve ${s.id}`);
    expect(JSON.stringify(msg.blocks)).toContain('old &lt;bucket&gt;');
    expect(rx.got[0]!.signatureOk).toBe(true);
  });
});

describe('webhook signature verification (receiver side)', () => {
  const body = '{"type":"approval.requested"}';
  const now = Date.parse('2026-11-25T12:00:00Z');
  const ts = String(now / 1000);
  const sig = signWebhook(SECRET, ts, body);

  it('accepts the exact bytes, timestamp and secret', async () => {
    expect(sig).toBe(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: ts, signature: sig, nowMs: now })).toBe(true);
  });

  it('refuses a changed body, another secret, a moved timestamp and a replay after 5 minutes', async () => {
    expect(verifyWebhookSignature({ secret: SECRET, body: body.replace('requested', 'approved'), timestamp: ts, signature: sig, nowMs: now })).toBe(false);
    expect(verifyWebhookSignature({ secret: `${SECRET}x`, body, timestamp: ts, signature: sig, nowMs: now })).toBe(false);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: String(Number(ts) + 1), signature: sig, nowMs: now })).toBe(false);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: ts, signature: sig, nowMs: now + 301_000 })).toBe(false);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: ts, signature: sig, nowMs: now + 299_000 })).toBe(true);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: null, signature: sig, nowMs: now })).toBe(false);
    expect(verifyWebhookSignature({ secret: SECRET, body, timestamp: ts, signature: sig.slice(0, -1), nowMs: now })).toBe(false);
  });

  it('refuses weak secrets and non-http URLs at configuration time', async () => {
    expect(() => checkWebhookConfig({ url: 'https://example.test/h', secret: 'short' })).toThrow(GuardError);
    expect(() => checkWebhookConfig({ url: 'file:///etc/passwd', secret: SECRET })).toThrow(/must be http/);
    expect(() => checkWebhookConfig({ url: 'https://example.test/h', secret: SECRET, maxAttempts: 0 })).toThrow(/maxAttempts/);
  });
});
