import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInvocation } from '../../src/invocation/parse.js';
import { loadPolicies } from '../../src/policy/index.js';
import { sessionPolicyEnforces } from '../../src/policy/enforceable.js';
import { TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';

/**
 * Where a call runs (broker config `execution`), on the real broker over HTTP with real tokens, moto as STS and the
 * real parser and policy. These brokers have no audit log mounted, so a call that must run on the broker is
 * refused as unavailable: the point here is that no credentials leave for it.
 */
let env: BrokerEnvironment;
let enforceableEnv: BrokerEnvironment;
const argv = ['dynamodb', 'describe-table', '--table-name', 'Orders'];
const grant = (e: BrokerEnvironment, token: string, body: Record<string, unknown> = {}) => e.post('/v1/grants', { argv, transcriptKey: TRANSCRIPT_KEY, ...body }, token);

beforeAll(async () => {
  // The defaults (broker for workloads, auto for people), a target that always runs locally, a group that always
  // runs on the broker. No session-policy analysis is wired: `auto` runs on the broker.
  env = await startBrokerEnv({}, { execution: { groups: { contractors: 'broker', ops: 'local' } } });
  // The helper's targets point at its moto, known only once started: mark one `execution: local` the way the
  // config file would (brokerConfigFrom validates the key in test/broker/config.test.ts).
  env.broker.broker.ctx.config.targets.find((t) => t.name === 'partner')!.execution = 'local';
  // The same defaults, with an analysis that says the session policy enforces everything.
  enforceableEnv = await startBrokerEnv({ enforceable: () => ({ enforceable: true, reasons: [] }) }, { execution: {} });
}, 60_000);
afterAll(async () => {
  await env?.stop();
  await enforceableEnv?.stop();
});

describe('the broker chooses where a call runs', () => {
  it('a workload (client-credentials token: sub = client_id) never gets credentials by default', async () => {
    const token = await env.token({ sub: 'agent-7', client_id: 'agent-7', groups: [] });
    const res = await grant(env, token);
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(JSON.parse(body).error.code).toBe('execution_on_broker');
    expect(body).not.toMatch(/accessKeyId|secretAccessKey|sessionToken/);
    const refusals = await env.broker.broker.ctx.store.listRefusals({});
    expect(refusals.find((r) => r.subject === 'agent-7')?.code).toBe('execution_on_broker');
  });

  it('so does a member of a workload group (ci), even with an enforceable session policy', async () => {
    const token = await enforceableEnv.token({ sub: 'pipeline', groups: ['ci'] });
    expect((await grant(enforceableEnv, token)).status).toBe(403);
  });

  it('a person under `auto`: local only when the session policy enforces everything the decision used', async () => {
    const person = { sub: 'alice@example.com', groups: ['developers'] };
    expect((await grant(env, await env.token(person))).status).toBe(403);
    const ok = await grant(enforceableEnv, await enforceableEnv.token(person));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { credentials: { accessKeyId: string } }).credentials.accessKeyId).toBeTruthy();
  });

  it('a target with execution: local hands out credentials; a group with execution: broker wins over it', async () => {
    const person = await env.token({ sub: 'alice@example.com', groups: ['developers'] });
    expect((await grant(env, person, { target: 'partner' })).status).toBe(200);
    const contractor = await env.token({ sub: 'carl@example.com', groups: ['developers', 'contractors'] });
    expect((await grant(env, contractor, { target: 'partner' })).status).toBe(403);
    const ops = await env.token({ sub: 'olga@example.com', groups: ['ops'] });
    expect((await grant(env, ops)).status).toBe(200);
  });

  it('POST /v1/runs answers a local run with the grant, a broker run without any credentials', async () => {
    const person = await enforceableEnv.token({ sub: 'alice@example.com', groups: ['developers'] });
    const local = await enforceableEnv.post('/v1/runs', { argv, transcriptKey: TRANSCRIPT_KEY }, person);
    expect(local.status).toBe(200);
    const l = (await local.json()) as { execution: string; grant: { credentials: unknown } };
    expect(l.execution).toBe('local');
    expect(l.grant.credentials).toBeDefined();
    // A local run needs the transcript key: refused (and recorded) without it.
    const noKey = await enforceableEnv.post('/v1/runs', { argv }, person);
    expect(noKey.status).toBe(400);
    // This broker has no audit log, so it cannot run calls itself: refused, and still no credentials.
    const agent = await env.token({ sub: 'agent-7', client_id: 'agent-7', groups: [] });
    const remote = await env.post('/v1/runs', { argv }, agent);
    expect(remote.status).toBe(503);
    const text = await remote.text();
    expect(JSON.parse(text).error.code).toBe('execution_unavailable');
    expect(text).not.toMatch(/accessKeyId|secretAccessKey|sessionToken/);
  });

  it('unknown keys in a run request are refused like in a grant request', async () => {
    const person = await env.token({ sub: 'alice@example.com', groups: ['developers'] });
    const res = await env.post('/v1/runs', { argv, endpoint: 'http://evil.example' }, person);
    expect(res.status).toBe(400);
  });
});

describe('sessionPolicyEnforces through the broker', () => {
  const inv = parseInvocation(argv, { account: '123456789012', region: 'us-east-1' });
  const args = { invocation: inv, caller: { subject: 'a', groups: [] }, target: { name: 'dev', account: '123456789012' } };
  it('the shipped default policy has rules on parameters, commands or risks: not enforceable, and says which', () => {
    const r = sessionPolicyEnforces({ policy: loadPolicies([join(__dirname, '../../policies/default.yaml')]), ...args });
    expect(r.enforceable).toBe(false);
    expect(r.reasons.length).toBeGreaterThan(0);
    expect(r.reasons[0]).toMatch(/^rule \S+ \(.*\) depends on/);
  });
  it('a policy of actions, resources and groups only is enforceable', () => {
    const r = sessionPolicyEnforces({ policy: loadPolicies([join(__dirname, 'helpers/broker-policy.yaml')]), ...args });
    expect(r).toEqual({ enforceable: true, reasons: [] });
  });
});
