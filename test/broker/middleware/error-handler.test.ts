import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { ApiError } from '../../../src/api/http-error.js';
import type { BrokerLogEntry } from '../../../src/broker/log.js';
import { errorHandler, notFound } from '../../../src/broker/middleware/error-handler.js';
import { requestId } from '../../../src/broker/middleware/request-id.js';

function setup() {
  const logs: BrokerLogEntry[] = [];
  const app = new Hono<BrokerEnv>();
  app.onError(errorHandler((e) => logs.push(e)));
  app.notFound(notFound);
  app.use('*', requestId(() => 'req-1'));
  app.get('/api', () => {
    throw new ApiError('denied', 'denied: no', { rule: 'r', reason: 'no' });
  });
  app.get('/bug', () => {
    throw new TypeError('cannot read secretAccessKey of undefined at /srv/x.ts');
  });
  app.get('/hono', () => {
    throw new HTTPException(400, { message: 'Malformed JSON in request body: {"pw":"hunter2"' });
  });
  return { app, logs };
}

describe('error handler', () => {
  it('deliberate errors keep status, code and extras', async () => {
    const r = await setup().app.request('/api');
    expect(r.status).toBe(403);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(await r.json()).toEqual({ error: { code: 'denied', message: 'denied: no', rule: 'r', reason: 'no' } });
  });
  it('bugs → 500 with only the request id; the details go to the log', async () => {
    const { app, logs } = setup();
    const r = await app.request('/bug');
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: "internal error; quote request id req-1 to the broker's operator" } });
    expect(text).not.toMatch(/secretAccessKey|TypeError|srv/);
    expect(logs).toMatchObject([{ level: 'error', requestId: 'req-1', error: expect.stringContaining('TypeError') }]);
  });
  it('hono client errors keep their status but not their message', async () => {
    const r = await setup().app.request('/hono');
    expect(r.status).toBe(400);
    expect(await r.text()).not.toContain('hunter2');
  });
  it('unknown routes → 404 JSON', async () => {
    const r = await setup().app.request('/nowhere', { method: 'DELETE' });
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: { code: 'not_found', message: 'no such endpoint: DELETE /nowhere' } });
  });
});
