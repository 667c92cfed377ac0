import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient, brokerError } from '../../src/api/broker-client.js';
import { GuardError } from '../../src/errors.js';

// A real HTTP server answering what a broker (or something pretending to be one) might answer: every shape must map
// to the documented exit code, and nothing but JSON is accepted.
let server: Server;
let base: string;
const answers: Record<string, [number, string]> = {
  '/v1/grants/ok': [200, JSON.stringify({ grantId: 'g', credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T', expiration: 'x' }, argv: ['s3', 'ls'] })],
  '/v1/grants/denied': [403, JSON.stringify({ error: { code: 'denied', message: 'no', rule: 'r1', reason: 'because' } })],
  '/v1/grants/approval': [403, JSON.stringify({ error: { code: 'approval_required', message: 'needs', rule: 'r2', reason: 'risky', approval: { id: 'apr_1', status: 'pending' } } })],
  '/v1/grants/unauthorized': [401, JSON.stringify({ error: { code: 'unauthorized', message: 'bad token' } })],
  '/v1/grants/boom': [500, JSON.stringify({ error: { code: 'internal', message: 'internal error' } })],
  '/v1/grants/idpdown': [503, JSON.stringify({ error: { code: 'idp_unreachable', message: 'keys unreachable' } })],
  '/v1/grants/idpold': [503, JSON.stringify({ error: { code: 'idp_unavailable', message: 'keys unreachable' } })],
  '/v1/grants/html': [200, '<html>hello</html>'],
  '/v1/grants/nocreds': [200, JSON.stringify({ grantId: 'g' })],
};

beforeAll(async () => {
  server = createServer((req, res) => {
    // /<case>/v1/grants serves the grant answer of that case.
    const m = /^\/(\w+)\/v1\/grants$/.exec(req.url!);
    const [status, body] = answers[m ? `/v1/grants/${m[1]}` : req.url!] ?? [404, '{}'];
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const grantAt = (kase: string) => new BrokerClient(`${base}/${kase}/`).grant('tok', { argv: ['s3', 'ls'], transcriptKey: 'k' });
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e instanceof GuardError ? [e.code, e.exitCode] : ['not a GuardError'];
  }
  return ['resolved'];
};

describe('BrokerClient over node:http', () => {
  // The client appends v1/grants to the base URL; each test's base ends in a directory the server maps.
  it('maps every answer to the documented code', async () => {
    const c = (p: string) => new BrokerClient(`${base}/`).request('POST', `v1/grants/${p}`, 'tok', {});
    expect((await c('ok')).status).toBe(200);
    expect(await codeOf(c('unauthorized'))).toEqual(['auth_rejected', 67]);
    expect(await codeOf(c('boom'))).toEqual(['broker_unreachable', 69]);
    expect(await codeOf(c('html'))).toEqual(['broker_unreachable', 69]);
    // The broker's identity provider is down: said as such, from this broker and from an older one.
    expect(await codeOf(c('idpdown'))).toEqual(['idp_unreachable', 69]);
    expect(await codeOf(c('idpold'))).toEqual(['idp_unreachable', 69]);
  });
  it('a broker that is not there is unreachable (69)', async () => {
    expect(await codeOf(new BrokerClient('http://127.0.0.1:9').config())).toEqual(['broker_unreachable', 69]);
  });
  it('denials keep the rule and reason; approval answers are returned, not thrown', async () => {
    const e = brokerError(403, { code: 'denied', message: 'no', rule: 'r1', reason: 'because' });
    expect([e.code, e.exitCode]).toEqual(['denied', 77]);
    expect(e.message).toContain('r1');
    expect(e.message).toContain('because');
    expect(brokerError(409, { code: 'approval_closed', message: 'withdrawn' }).exitCode).toBe(77);
    expect(brokerError(409, { code: 'approval_expired', message: 'late' }).exitCode).toBe(75);
    expect(await codeOf(grantAt('denied'))).toEqual(['denied', 77]);
    const approval = await grantAt('approval');
    expect(approval).toMatchObject({ kind: 'approval', code: 'approval_required', rule: 'r2', approval: { id: 'apr_1' } });
    expect(await grantAt('ok')).toMatchObject({ kind: 'granted', grant: { grantId: 'g' } });
  });
  it('a grant answer without credentials is refused (fail closed)', async () => {
    expect(await codeOf(grantAt('nocreds'))).toEqual(['broker_unreachable', 69]);
    expect(await codeOf(grantAt('html'))).toEqual(['broker_unreachable', 69]);
  });
});
