import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { limitBody } from '../../../src/broker/middleware/body-limit.js';
import { errorHandler } from '../../../src/broker/middleware/error-handler.js';

const app = new Hono<BrokerEnv>();
app.onError(errorHandler(() => {}));
app.use('*', limitBody(1024));
app.post('/echo', async (c) => c.text(String((await c.req.text()).length)));

describe('limitBody middleware', () => {
  it('passes bodies up to the limit', async () => {
    const r = await app.request('/echo', { method: 'POST', body: 'x'.repeat(1024) });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('1024');
  });
  it('refuses a larger body by Content-Length with 413 JSON and Connection: close', async () => {
    const r = await app.request('/echo', { method: 'POST', body: 'x'.repeat(1025) });
    expect(r.status).toBe(413);
    expect(r.headers.get('connection')).toBe('close');
    expect(await r.json()).toEqual({ error: { code: 'payload_too_large', message: 'request body larger than 1024 bytes' } });
  });
  it('refuses a larger streamed body without Content-Length', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(400));
        c.close();
      },
    });
    const r = await app.request('/echo', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
  });
});
