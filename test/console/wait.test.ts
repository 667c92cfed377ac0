import { describe, expect, it } from 'vitest';
import { waitForApproval } from '../../src/approvals/client.js';

// The CLI's wait against brokers with and without the long poll. The broker here is a stub on purpose: what is
// under test is how many requests the client makes and with which parameters when the broker answers at once
// (an older broker) — the real long poll is tested against the real broker in server.test.ts.
function pendingBroker() {
  const urls: string[] = [];
  const f = (async (input: string | URL | Request) => {
    urls.push(String(input));
    const body = { id: 'apr_x', status: 'pending', argv: ['s3', 'ls'], approvals: [], required: 1, expiresAt: new Date(Date.now() + 60_000).toISOString() };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }) as typeof fetch;
  return { urls, f };
}

describe('waiting for an approval', () => {
  it('asks with a long poll after the first answer; a broker that answers it at once is polled every pollMs, never in a loop', async () => {
    const b = pendingBroker();
    let t = 0;
    const sleeps: number[] = [];
    const r = await waitForApproval({
      brokerUrl: 'http://127.0.0.1:1',
      token: 'tok',
      fetch: b.f,
      id: 'apr_x',
      pollMs: 2000,
      waitMs: 10_000,
      now: () => t,
      sleep: async (ms) => {
        sleeps.push(ms);
        t += ms;
      },
    });
    expect(r.outcome).toBe('timeout');
    expect(new URL(b.urls[0]!).search).toBe('');
    expect(new URL(b.urls[1]!).searchParams.get('seen')).toBe('pending/0');
    expect(Number(new URL(b.urls[1]!).searchParams.get('wait'))).toBeGreaterThan(0);
    // One request without sleeping (the first answer), then one per poll interval: 10 s / 2 s.
    expect(sleeps.every((ms) => ms === 2000)).toBe(true);
    expect(b.urls.length).toBe(sleeps.length + 2);
    expect(sleeps.length).toBe(5);
  });

  it('a single check (waitMs 0, CI) makes one plain request', async () => {
    const b = pendingBroker();
    const r = await waitForApproval({ brokerUrl: 'http://127.0.0.1:1', token: 'tok', fetch: b.f, id: 'apr_x', waitMs: 0, sleep: async () => undefined });
    expect(r.outcome).toBe('timeout');
    expect(b.urls.map((u) => new URL(u).search)).toEqual(['']);
  });

  it('Ctrl-C during a held long poll withdraws at once, without waiting for the broker to answer', async () => {
    const urls: string[] = [];
    const summary = (status: string) => ({ id: 'apr_x', status, argv: ['s3', 'ls'], approvals: [], required: 1, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const f = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      urls.push(`${init?.method ?? 'GET'} ${url}`);
      if (url.includes('wait=')) await new Promise(() => undefined); // the broker holds it (longer than this test)
      const body = init?.method === 'POST' ? summary('withdrawn') : summary('pending');
      return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    }) as typeof fetch;
    const ctl = new AbortController();
    const waiting = waitForApproval({ brokerUrl: 'http://127.0.0.1:1', token: 'tok', fetch: f, id: 'apr_x', signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 50));
    expect(urls.some((u) => u.includes('wait='))).toBe(true);
    const t0 = Date.now();
    ctl.abort();
    const r = await waiting;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(r.outcome).toBe('aborted');
    expect(urls.at(-1)).toMatch(/^POST .*\/v1\/approvals\/apr_x\/withdraw$/);
  });
});
