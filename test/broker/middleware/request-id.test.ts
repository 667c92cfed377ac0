import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { errorHandler } from '../../../src/broker/middleware/error-handler.js';
import { requestId } from '../../../src/broker/middleware/request-id.js';

describe('requestId middleware', () => {
  it('generates a fresh id per request, ignores a client-supplied one, and keeps it on error responses', async () => {
    const app = new Hono<BrokerEnv>();
    app.onError(errorHandler(() => {}));
    app.use('*', requestId());
    app.get('/ok', (c) => c.text(c.get('requestId')));
    app.get('/fail', () => {
      throw new Error('x');
    });
    const a = await app.request('/ok', { headers: { 'X-Request-Id': 'forged-id' } });
    const b = await app.request('/ok');
    const idA = a.headers.get('x-request-id')!;
    expect(idA).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(await a.text()).toBe(idA);
    expect(b.headers.get('x-request-id')).not.toBe(idA);
    const f = await app.request('/fail');
    expect(f.status).toBe(500);
    expect(f.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });
});
