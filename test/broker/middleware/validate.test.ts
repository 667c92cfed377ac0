import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { errorHandler } from '../../../src/broker/middleware/error-handler.js';
import { fieldName, validateJson } from '../../../src/broker/middleware/validate.js';

let handlerRuns = 0;
const app = new Hono<BrokerEnv>();
app.onError(errorHandler(() => {}));
app.post('/x', validateJson(z.strictObject({ name: z.string(), tags: z.array(z.string()).optional(), meta: z.object({ n: z.number() }).optional() })), (c) => {
  handlerRuns++;
  return c.json(c.get('body'));
});
const post = (body: string, type = 'application/json') => app.request('/x', { method: 'POST', body, headers: { 'content-type': type } });

describe('validateJson middleware', () => {
  it('hands the parsed body to the handler', async () => {
    const r = await post('{"name":"a","tags":["x"]}', 'application/json; charset=utf-8');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ name: 'a', tags: ['x'] });
  });
  it.each([
    ['{"tags":[]}', 'name'],
    ['{"name":"a","tags":["x",1]}', 'tags[1]'],
    ['{"name":"a","meta":{"n":"1"}}', 'meta.n'],
    ['{"name":"a","extra":1}', 'extra'],
    ['"just a string"', '(body)'],
  ])('%s → 400 naming %s, before the handler', async (body, field) => {
    const before = handlerRuns;
    const r = await post(body);
    expect(r.status).toBe(400);
    const e = (await r.json()).error;
    expect(e).toMatchObject({ code: 'bad_request', field });
    expect(e.message).toContain(`invalid field ${field}:`);
    expect(handlerRuns).toBe(before);
  });
  it('invalid JSON and other content types → 400', async () => {
    expect((await post('{')).status).toBe(400);
    expect((await post('{"name":"a"}', 'text/plain')).status).toBe(400);
    expect((await post('{"name":"a"}', 'application/jsonx')).status).toBe(400);
  });
  it('fieldName formats paths like a client writes them', () => {
    expect(fieldName([])).toBe('(body)');
    expect(fieldName(['files', '/a/b'])).toBe('files./a/b');
    expect(fieldName(['argv', 3])).toBe('argv[3]');
  });
});
