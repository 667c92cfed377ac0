import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { BrokerEnv } from '../env.js';
import type { BrokerMetrics } from '../metrics.js';

/**
 * Records every request's latency. The route label is the matched route pattern, never the raw path, so a
 * scanner probing random URLs cannot blow up the number of time series.
 */
export function timeRequests(metrics: BrokerMetrics, now: () => number = () => performance.now()): MiddlewareHandler<BrokerEnv> {
  return async (c, next) => {
    const start = now();
    try {
      await next();
    } finally {
      let route = routePath(c, -1) || 'unmatched';
      // A 404 that only middleware (`/v1/*`, `*`) matched is an unknown path.
      if (c.res.status === 404 && route.endsWith('*')) route = 'unmatched';
      metrics.httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, (now() - start) / 1000);
    }
  };
}
