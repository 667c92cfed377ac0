import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GuardError } from '../../src/errors.js';
import {
  checkWebhookConfig,
  createWebhookNotifier,
  signWebhook,
  verifyWebhookSignature,
  type WebhookDeps,
} from '../../src/approvals/webhook.js';
import { alice, approveDecision, bob, deleteBucket, newService } from './fixtures.js';

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

/** Timers that record the requested delay and fire almost at once: the backoff schedule without the wait. */
function fastTimers(): Required<Pick<WebhookDeps, 'setTimer' | 'clearTimer'>> & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    setTimer: (fn, ms) => {
      delays.push(ms);
      return setTimeout(fn, 1);
    },
    clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('approval webhooks', () => {
  it('delivers requests and decisions to a receiver that fails twice, with backoff and valid signatures', async () => {
    const rx = await receiver([503, 503, 200, 500, 200]);
    cleanups.push(rx.close);
    const timers = fastTimers();
    const logs: { msg: string }[] = [];
    const notifier = createWebhookNotifier({ url: rx.url, secret: SECRET, baseDelayMs: 1000, maxAttempts: 5 }, { ...timers, random: () => 0.5, log: (e) => logs.push(e) });
    const { service } = await newService({ notify: (n) => notifier.notify(n) });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'cleanup' });
    await notifier.drain();
    await service.approve(s.id, bob, 'checked');
    await notifier.drain();

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
    expect(rx.got[0]!.headers['x-guard-aws-event']).toBe('approval.requested');
    expect(events[0]).toMatchObject({ actor: 'alice', approval: { id: s.id, status: 'pending', argv: ['s3api', 'delete-bucket', '--bucket', 'prod-data'] } });
    expect(events[4]).toMatchObject({ actor: 'bob', comment: 'checked', approval: { status: 'approved' } });
    // Exponential with jitter in [exp/2, exp]: 1 s then 2 s for the first event, 1 s for the second (random 0.5 → 3/4).
    expect(timers.delays).toEqual([750, 1500, 750]);
    expect(JSON.stringify(logs)).not.toContain(SECRET);
    expect(rx.got.some((g) => g.raw.includes(SECRET))).toBe(false);
  });

  it('never blocks a decision: a receiver that never answers leaves approve() instant, and is given up after bounded attempts', async () => {
    const rx = await receiver(['hang', 'hang', 'hang', 'hang']);
    cleanups.push(rx.close);
    const timers = fastTimers();
    const logs: { msg: string; attempts?: number }[] = [];
    const notifier = createWebhookNotifier({ url: rx.url, secret: SECRET, timeoutMs: 150, maxAttempts: 2, baseDelayMs: 10 }, { ...timers, log: (e) => logs.push(e) });
    const { service } = await newService({ notify: (n) => notifier.notify(n) });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    const a = await service.approve(s.id, bob);
    // Both decisions are committed and returned before any delivery has even been attempted.
    expect(a.status).toBe('approved');
    expect(rx.got.length).toBe(0);
    expect(notifier.pending).toBe(2);
    await vi.waitFor(() => expect(rx.got.length).toBe(2), { timeout: 2000, interval: 5 }); // sent, never answered
    expect((await service.get(s.id))!.status).toBe('approved');
    await notifier.drain();
    expect(notifier.pending).toBe(0);
    const gaveUp = logs.filter((l) => l.msg === 'webhook delivery given up');
    expect(gaveUp.map((l) => l.attempts)).toEqual([2, 2]);
  });

  it('does not retry a permanent refusal (401) and retries 429/5xx only up to maxAttempts', async () => {
    const rx = await receiver([401]);
    cleanups.push(rx.close);
    const n1 = createWebhookNotifier({ url: rx.url, secret: SECRET }, fastTimers());
    const { service } = await newService({ notify: (n) => n1.notify(n) });
    await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    await n1.drain();
    expect(rx.got.length).toBe(1);

    const rx2 = await receiver([500, 429, 503, 502]);
    cleanups.push(rx2.close);
    const n2 = createWebhookNotifier({ url: rx2.url, secret: SECRET, maxAttempts: 3 }, fastTimers());
    const s2 = await newService({ notify: (n) => n2.notify(n) });
    await s2.service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    await n2.drain();
    expect(rx2.got.length).toBe(3);
  });

  it('sends a Slack-compatible message when asked, still signed', async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const notifier = createWebhookNotifier({ url: rx.url, secret: SECRET, format: 'slack' }, fastTimers());
    const { service } = await newService({ notify: (n) => notifier.notify(n) });
    const s = await service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: 'old <bucket>' });
    await notifier.drain();
    const msg = JSON.parse(rx.got[0]!.raw);
    expect(Object.keys(msg).sort()).toEqual(['blocks', 'text']);
    expect(msg.text).toContain('alice asks to run `aws s3api delete-bucket --bucket prod-data` on prod');
    expect(JSON.stringify(msg.blocks)).toContain(`guard-aws approvals approve ${s.id}`);
    expect(JSON.stringify(msg.blocks)).toContain('old &lt;bucket&gt;');
    expect(rx.got[0]!.signatureOk).toBe(true);
  });

  it('drops events beyond the queue bound instead of growing without limit', async () => {
    const rx = await receiver(['hang']);
    cleanups.push(rx.close);
    const logs: { msg: string }[] = [];
    const notifier = createWebhookNotifier({ url: rx.url, secret: SECRET, maxQueue: 1, maxAttempts: 1, timeoutMs: 100 }, { ...fastTimers(), log: (e) => logs.push(e) });
    const { service } = await newService({ notify: (n) => notifier.notify(n) });
    await service.open({ requester: alice, invocation: deleteBucket('a'), target: 'prod', decision: approveDecision(), reason: '' });
    await service.open({ requester: alice, invocation: deleteBucket('b'), target: 'prod', decision: approveDecision(), reason: '' });
    expect(notifier.pending).toBe(1);
    expect(logs.some((l) => l.msg === 'webhook queue full; event dropped')).toBe(true);
    await notifier.drain();
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
