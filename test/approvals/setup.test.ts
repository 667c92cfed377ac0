import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { migratedSqlite } from '../helpers/postgres.js';
import { describe, expect, it } from 'vitest';
import { setupApprovals } from '../../src/approvals/setup.js';
import { verifyWebhookSignature } from '../../src/approvals/webhook.js';
import { GuardError } from '../../src/errors.js';
import { alice, approveDecision, deleteBucket } from './fixtures.js';

const SECRET = 'x'.repeat(40);

describe('setupApprovals (the broker config section)', () => {
  it('applies the TTLs and sends signed webhooks with the secret from the environment', async () => {
    const got: { ok: boolean; type: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c)).on('end', () => {
        const body = Buffer.concat(chunks);
        got.push({
          ok: verifyWebhookSignature({ secret: SECRET, body, timestamp: req.headers['x-guard-aws-timestamp'] as string, signature: req.headers['x-guard-aws-signature'] as string }),
          type: JSON.parse(body.toString()).type,
        });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const t = Date.parse('2026-11-25T12:00:00Z');
      const a = setupApprovals({
        db: await migratedSqlite(),
        config: { pendingTtlSec: 120, webhook: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/h` } },
        env: { GUARD_AWS_WEBHOOK_SECRET: SECRET },
        now: () => t,
      });
      const s = await a.service.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
      expect(Date.parse(s.expiresAt) - t).toBe(120_000);
      await a.webhook!.idle();
      expect(got).toEqual([{ ok: true, type: 'approval.requested' }]);
      await a.close();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses bad config with the field named, and a missing secret', async () => {
    const db = await migratedSqlite();
    const err = (config: object, env = {}) => {
      try {
        setupApprovals({ db, config, env });
      } catch (e) {
        expect(e).toBeInstanceOf(GuardError);
        expect((e as GuardError).code).toBe('config_invalid');
        return (e as GuardError).message;
      }
      throw new Error('expected a config error');
    };
    expect(err({ pendingTtlSec: 5 })).toMatch(/^approvals\.pendingTtlSec:/);
    expect(err({ webhook: { url: 'ftp://x' } })).toMatch(/^approvals\.webhook\.url:/);
    expect(err({ webhook: { url: 'https://hooks.example.test/x' } })).toMatch(/set GUARD_AWS_WEBHOOK_SECRET/);
    expect(err({ webhook: { url: 'https://hooks.example.test/x' } }, { GUARD_AWS_WEBHOOK_SECRET: 'short' })).toMatch(/at least 32 characters/);
    expect(err({ surprise: true })).toMatch(/^approvals\./);
  });

  it('still loads a config with the retired webhook maxQueue, and says it is unused', async () => {
    const logs: { level: string; msg: string }[] = [];
    const a = setupApprovals({ db: await migratedSqlite(), config: { webhook: { url: 'https://hooks.example.test/x', maxQueue: 10 } }, env: { GUARD_AWS_WEBHOOK_SECRET: SECRET }, log: (e) => logs.push(e) });
    await a.close();
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringContaining('maxQueue is no longer used') }));
  });
});
