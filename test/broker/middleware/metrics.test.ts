import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { createMetrics } from '../../../src/broker/metrics.js';
import { notFound } from '../../../src/broker/middleware/error-handler.js';
import { timeRequests } from '../../../src/broker/middleware/metrics.js';

describe('timeRequests middleware', () => {
  it('labels by route pattern, and unknown paths as one series', async () => {
    const m = createMetrics();
    const app = new Hono<BrokerEnv>();
    app.notFound(notFound);
    app.use('*', timeRequests(m));
    app.get('/items/:id', (c) => c.text('ok'));
    await app.request('/items/1');
    await app.request('/items/2');
    for (let i = 0; i < 5; i++) await app.request(`/probe-${i}`);
    const text = await m.registry.metrics();
    expect(text).toMatch(/guard_aws_http_request_duration_seconds_count\{method="GET",route="\/items\/:id",status="200"\} 2/);
    expect(text).toMatch(/guard_aws_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} 5/);
    expect(text).not.toContain('probe-');
  });
  it('each broker has its own registry', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.grants.inc({ target: 't' });
    expect(await b.registry.getSingleMetricAsString('guard_aws_grants_total')).not.toMatch(/target="t"/);
  });
});
