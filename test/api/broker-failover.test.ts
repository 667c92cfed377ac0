import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/api/broker-client.js';
import { forgetHealthy, HEALTHY_TTL_MS, idempotent, neverSent } from '../../src/api/broker-urls.js';
import { normalizeBrokerUrl, readClientConfig } from '../../src/config/client-config.js';
import { GuardError } from '../../src/errors.js';
import { closingServer, type FaultServer } from '../fault/helpers.js';

// The client's failover between several broker URLs (src/api/broker-urls.ts), against real sockets on loopback:
// a port nobody listens on (refused: the request provably never left), a peer that reads the request and hangs up
// (it may have acted on it), a peer that answers 503, a peer that speaks plain HTTP where TLS was expected (the
// handshake fails before a byte of the request is written), and a healthy peer that counts what reaches it. The
// brokers themselves are in test/ha/failover.test.ts; here each rule is pinned down one by one.

interface Counting {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

async function healthy(status = 200, body = '{"ok":true}'): Promise<Counting> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A loopback port with nothing listening: connecting is refused. */
async function refusedUrl(): Promise<string> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

let dir: string;
let env: NodeJS.ProcessEnv;
let good: Counting;
let unavailable: Counting;
let closing: FaultServer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-failover-'));
  env = { GUARD_AWS_CACHE_DIR: join(dir, 'cache') };
  good = await healthy();
  unavailable = await healthy(503, '{"error":{"code":"unavailable","message":"database unreachable"}}');
});
afterAll(async () => {
  await good.close();
  await unavailable.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await closing?.close();
  good.hits.length = 0;
  unavailable.hits.length = 0;
  forgetHealthy();
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
});

const client = (urls: string[], now = Date.now) => new BrokerClient(urls.join(','), undefined, 10_000, env, now);
const grantBody = { argv: ['s3', 'ls'], transcriptKey: 'k' };

async function failure(p: Promise<unknown>): Promise<GuardError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error('expected a GuardError');
}

describe('which requests may go to another broker', () => {
  it('GETs and transcript uploads are idempotent; grants, runs and votes are not', () => {
    expect(idempotent('GET', 'v1/approvals/apr_1')).toBe(true);
    expect(idempotent('POST', 'v1/transcripts')).toBe(true);
    for (const p of ['v1/grants', 'v1/runs', 'v1/approvals/apr_1/approve', 'v1/approvals/apr_1/deny', 'v1/approvals/apr_1/withdraw', 'v1/approvals']) {
      expect(idempotent('POST', p), p).toBe(false);
    }
  });

  it('an error is "never sent" only when the transport says so or by a pre-connection code', () => {
    expect(neverSent(Object.assign(new Error('x'), { code: 'ECONNRESET', unsent: true }))).toBe(true);
    expect(neverSent(Object.assign(new Error('x'), { code: 'ECONNREFUSED', unsent: false }))).toBe(false);
    expect(neverSent(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }))).toBe(true);
    expect(neverSent(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }))).toBe(false);
    expect(neverSent(new Error('timed out'))).toBe(false);
  });
});

describe('failover between broker URLs', () => {
  it('a grant goes to the next broker when the first refused the connection', async () => {
    const c = client([await refusedUrl(), good.url]);
    const r = await c.request('POST', 'v1/grants', 't', grantBody);
    expect(r.status).toBe(200);
    expect(good.hits).toEqual(['POST /v1/grants']);
    expect(c.answeredBy).toBe(good.url);
  });

  it('a grant that reached a broker which hung up is NOT sent to another one (exit 69, says why)', async () => {
    closing = await closingServer();
    const e = await failure(client([closing.url, good.url]).request('POST', 'v1/grants', 't', grantBody));
    expect(e.code).toBe('broker_unreachable');
    expect(e.exitCode).toBe(69);
    expect(e.message).toMatch(/took the POST v1\/grants request and broke off before answering/);
    expect(e.message).toMatch(/not sent to another broker/);
    expect(closing.connections).toBe(1);
    expect(good.hits).toEqual([]);
  });

  it('votes and runs follow the same rule as grants', async () => {
    closing = await closingServer();
    for (const path of ['v1/runs', 'v1/approvals/apr_1/approve']) {
      const e = await failure(client([closing.url, good.url]).request('POST', path, 't', {}));
      expect(e.code).toBe('broker_unreachable');
    }
    expect(good.hits).toEqual([]);
  });

  it('a grant whose TLS handshake failed (plain HTTP where https was expected) goes to the next broker', async () => {
    // The TLS client never completes its handshake with a peer that answers in plain text: not a byte of the
    // request was written (it would have been encrypted under the handshake's keys).
    closing = await closingServer();
    const tlsUrl = closing.url.replace('http:', 'https:');
    const r = await client([tlsUrl, good.url]).request('POST', 'v1/grants', 't', grantBody);
    expect(r.status).toBe(200);
    expect(good.hits).toEqual(['POST /v1/grants']);
  });

  it('a transcript upload and a GET go to the next broker after a hang-up', async () => {
    closing = await closingServer();
    expect((await client([closing.url, good.url]).request('POST', 'v1/transcripts', 't', {})).status).toBe(200);
    forgetHealthy();
    rmSync(join(dir, 'cache'), { recursive: true, force: true });
    expect((await client([closing.url, good.url]).request('GET', 'v1/approvals', 't')).status).toBe(200);
    expect(good.hits).toEqual(['POST /v1/transcripts', 'GET /v1/approvals']);
    expect(closing.connections).toBe(2);
  });

  it('a 503 sends a GET on, but not a grant', async () => {
    expect((await client([unavailable.url, good.url]).request('GET', 'v1/approvals', 't')).status).toBe(200);
    forgetHealthy();
    rmSync(join(dir, 'cache'), { recursive: true, force: true });
    const e = await failure(client([unavailable.url, good.url]).request('POST', 'v1/grants', 't', grantBody));
    expect(e.code).toBe('broker_unreachable');
    expect(good.hits).toEqual(['GET /v1/approvals']);
  });

  it('every broker down: one error naming each URL and why (exit 69)', async () => {
    const a = await refusedUrl();
    const b = await refusedUrl();
    const e = await failure(client([a, b]).request('POST', 'v1/grants', 't', grantBody));
    expect(e.exitCode).toBe(69);
    expect(e.message).toBe(`no broker reachable: ${a}: ECONNREFUSED; ${b}: ECONNREFUSED`);
  });

  it('the broker that answered after a failure is tried first for a while, also by the next process', async () => {
    closing = await closingServer();
    let now = 1_000_000;
    const urls = [closing.url, good.url];
    await client(urls, () => now).request('GET', 'v1/approvals', 't');
    expect(closing.connections).toBe(1);
    const file = JSON.parse(readFileSync(join(dir, 'cache', 'broker-pick.json'), 'utf8')) as { url: string };
    expect(file.url).toBe(good.url);
    // A new process (nothing remembered in memory) reads the choice: the dead broker is not asked again.
    forgetHealthy();
    await client(urls, () => now).request('GET', 'v1/approvals', 't');
    await client(urls, () => now).request('POST', 'v1/grants', 't', grantBody);
    expect(closing.connections).toBe(1);
    // After the remembered time, the list's order again (the first broker may be back).
    now += HEALTHY_TTL_MS + 1;
    await client(urls, () => now).request('GET', 'v1/approvals', 't');
    expect(closing.connections).toBe(2);
  });
});

describe('the broker setting may list several URLs', () => {
  it('each is normalised and checked, duplicates dropped, the order kept', () => {
    expect(normalizeBrokerUrl(' http://127.0.0.1:1/ , http://localhost:2/x/?q=1 ,http://127.0.0.1:1')).toBe('http://127.0.0.1:1,http://localhost:2/x');
    expect(() => normalizeBrokerUrl('http://127.0.0.1:1,,http://127.0.0.1:2', 'GUARD_AWS_BROKER')).toThrow(/GUARD_AWS_BROKER: an empty URL/);
    // Each one must be https unless loopback, as a single URL must.
    expect(() => normalizeBrokerUrl('http://127.0.0.1:1,http://broker.example.com', 'GUARD_AWS_BROKER', {})).toThrow(/must use https/);
  });

  it('the saved login broker may be a list too', async () => {
    const { writeFileSync, mkdirSync } = await import('node:fs');
    const cfgDir = join(dir, 'config');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, 'config.json'), JSON.stringify({ broker: 'https://a.example,https://b.example' }));
    expect(await readClientConfig({ GUARD_AWS_CONFIG_DIR: cfgDir })).toEqual({ broker: 'https://a.example,https://b.example' });
  });
});
