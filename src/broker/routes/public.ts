import type { Hono } from 'hono';
import { VERSION } from '../../version.js';
import type { BrokerConfigResponse } from '../../api/types.js';
import type { BrokerContext } from '../deps.js';
import type { BrokerEnv } from '../env.js';

/** Unauthenticated routes: what a client needs before it has a token, liveness, and metrics. */
export function mountPublic(app: Hono<BrokerEnv>, ctx: BrokerContext): void {
  const configBody: BrokerConfigResponse = {
    issuer: ctx.config.issuer,
    clientId: ctx.config.clientId,
    audience: ctx.config.audience,
    targets: ctx.config.targets.map((t) => ({ name: t.name, account: t.account, region: t.region, default: t.default })),
    version: VERSION,
  };
  app.get('/v1/config', (c) => c.json(configBody));

  // Healthy = the store answers. A broker that cannot record grants must not be sent traffic.
  app.get('/healthz', (c) => {
    try {
      ctx.store.db.prepare('SELECT 1').get();
      return c.json({ status: 'ok' });
    } catch {
      return c.json({ status: 'unavailable' }, 503);
    }
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', ctx.metrics.registry.contentType);
    return c.body(await ctx.metrics.registry.metrics());
  });
}
