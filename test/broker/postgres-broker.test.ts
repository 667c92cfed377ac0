import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleBroker } from '../../src/broker/assemble.js';
import { brokerConfigFrom } from '../../src/broker/config.js';
import { silentLog } from '../../src/broker/log.js';
import { startBroker, type RunningBroker } from '../../src/broker/server.js';
import { ERRORS } from '../../src/errors.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

// The complete broker (approvals, audit log, routes) on a real PostgreSQL server, configured as an operator would:
// `storage.postgres` in the file, the URL in GUARD_AWS_STORE_URL. Then the database goes away under it and comes
// back: requests fail closed with store_unavailable (503, exit 69) meanwhile, and the broker reconnects by itself.
let pg: TestPostgres;
let broker: RunningBroker;
const dir = mkdtempSync(join(tmpdir(), 'guard-pg-broker-'));
const caller = { subject: 'alice', groups: ['developers', 'auditors'] };

beforeAll(async () => {
  pg = await startPostgres();
  const config = brokerConfigFrom({
    listen: { host: '127.0.0.1', port: 0 },
    issuer: 'https://idp.test.invalid',
    audience: 'guard-aws',
    clientId: 'guard-aws-cli',
    policies: [resolve('policies/default.yaml')],
    storage: { postgres: { poolSize: 4, connectTimeoutMs: 1000 }, auditKeyFile: join(dir, 'audit-key.pem') },
    execution: { people: 'local', workloads: 'local' },
    targets: [{ name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/guard-dev', region: 'us-east-1' }],
  });
  const deps = await assembleBroker(config, {
    env: { GUARD_AWS_STORE_URL: await pg.freshUrl() },
    overrides: { log: silentLog, verify: async () => caller },
  });
  broker = await startBroker(config, deps);
});
afterAll(async () => {
  await broker?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`${broker.url}${path}`, { headers: { authorization: 'Bearer t' } });

describe('a broker on PostgreSQL', () => {
  it('is ready, serves approvals and the audit log, and signs with the configured key file', async () => {
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', store: 'postgres' });
    expect((await get('/v1/approvals')).status).toBe(200);
    const verify = await get('/v1/audit/verify');
    expect(verify.status).toBe(200);
    expect(await verify.json()).toMatchObject({ ok: true, count: 0 });
    expect(existsSync(join(dir, 'audit-key.pem'))).toBe(true);
  });

  it('fails closed while the database is down (503 store_unavailable, exit 69) and recovers when it is back', async () => {
    await pg.halt();
    try {
      const res = await get('/v1/approvals');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('store_unavailable');
      // The database's address stays in the broker's log, not in answers to callers.
      expect(body.error.message).not.toContain(String(pg.port));
      expect(ERRORS.store_unavailable.exit).toBe(69);
      expect((await get('/healthz')).status).toBe(503);
      const ready = await get('/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', store: 'postgres', reason: 'the database is unreachable' });
    } finally {
      await pg.start();
    }
    expect((await get('/readyz')).status).toBe(200);
    expect((await get('/v1/approvals')).status).toBe(200);
  });
});
