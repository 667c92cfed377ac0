import type { Hono } from 'hono';
import { VERSION } from '../../version.js';
import type { BrokerConfigResponse } from '../../api/types.js';
import type { BrokerContext } from '../deps.js';
import type { BrokerEnv } from '../env.js';
import { notReady } from '../storage.js';

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
  app.get('/healthz', async (c) => {
    c.header('Cache-Control', 'no-store');
    try {
      await ctx.store.db.get('SELECT 1');
      return c.json({ status: 'ok' });
    } catch {
      return c.json({ status: 'unavailable' }, 503);
    }
  });

  // Ready = the database answers and its schema is exactly this broker's (not behind, not migrated further by a
  // newer broker): what a load balancer checks before sending a broker traffic. Why not, in one line, without
  // the database's address or credentials.
  app.get('/readyz', async (c) => {
    c.header('Cache-Control', 'no-store');
    const why = await notReady(ctx.store.db);
    if (why === undefined) return c.json({ status: 'ready', store: ctx.store.db.dialect });
    ctx.log({ level: 'warn', msg: 'not ready', error: why });
    return c.json({ status: 'unavailable', store: ctx.store.db.dialect, reason: why.startsWith('schema:') ? why : 'the database is unreachable' }, 503);
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', ctx.metrics.registry.contentType);
    return c.body(await ctx.metrics.registry.metrics());
  });
}
