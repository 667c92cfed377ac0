import { createServer } from 'node:net';
import { STSClient, type AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantResponse } from '../../src/api/types.js';
import { startBroker } from '../../src/broker/server.js';
import { openSqliteStore } from '../../src/broker/storage.js';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';

// Graceful close: a grant in flight when close() is called still completes; new connections are refused after.
// STS is the real moto, reached through a client that waits 400 ms first so the request is surely in flight.
let env: BrokerEnvironment;
beforeAll(async () => {
  env = await startBrokerEnv({
    createStsClient: (t) => {
      const real = new STSClient({ region: t.region, ...(t.endpoint ? { endpoint: t.endpoint } : {}), credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
      return {
        send: async (cmd: AssumeRoleCommand) => {
          await new Promise((r) => setTimeout(r, 400));
          return real.send(cmd);
        },
        destroy: () => real.destroy(),
      };
    },
  });
});
afterAll(async () => {
  await env?.stop();
});

describe('startBroker', () => {
  it('close() lets an in-flight grant finish, then stops listening', async () => {
    const inFlight = env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY });
    await new Promise((r) => setTimeout(r, 150));
    const closing = env.broker.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as GrantResponse).credentials.accessKeyId).toBeTruthy();
    await closing;
    await expect(fetch(`${env.broker.url}/healthz`)).rejects.toThrow();
  });

  it('a port already in use → config_invalid naming the address, and the store is closed', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const store = await openSqliteStore({ path: ':memory:' });
    const config = { ...env.broker.broker.ctx.config, listen: { host: '127.0.0.1', port } };
    const err = await startBroker(config, { store, verify: async () => ({ subject: 'x', groups: [] }), parse: parseInvocation, decide: () => { throw new Error('never asked: the broker does not start'); } }).catch((e) => e);
    blocker.close();
    expect(err).toBeInstanceOf(GuardError);
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    expect(store.db.closed).toBe(true);
  });
});
