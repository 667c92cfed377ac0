import { createHash } from 'node:crypto';
import type { Middleware } from 'oidc-provider';

/**
 * Device-flow polling rules the library leaves to the application. RFC 8628 §3.2 lets the server choose the polling
 * interval; oidc-provider leaves it out of the device authorization response (clients then assume 5 s), so it is
 * added here. §3.5: a client polling sooner than the interval gets `slow_down`, and that device code's interval grows
 * by 5 s for all later requests. Device codes are kept hashed (they are bearer secrets until used).
 */
export function pollingMiddleware(o: { pollIntervalSec: number; enforce: boolean; now?: () => number }): Middleware {
  const now = o.now ?? Date.now;
  const polls = new Map<string, { last: number; interval: number }>();
  return async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      (ctx.body as Record<string, unknown>).interval = o.pollIntervalSec;
      return;
    }
    if (route !== 'token' || !o.enforce) return;
    const body = ctx.body as { error?: string } | undefined;
    const deviceCode = ctx.oidc?.params?.device_code;
    if (typeof deviceCode !== 'string' || body?.error !== 'authorization_pending') return;
    const key = createHash('sha256').update(deviceCode).digest('base64url');
    const t = now();
    const seen = polls.get(key);
    if (seen && t - seen.last < seen.interval * 1000 - 250) {
      seen.interval += 5;
      seen.last = t;
      ctx.body = { error: 'slow_down', error_description: `poll no more often than every ${seen.interval} s` };
      return;
    }
    polls.set(key, { last: t, interval: seen?.interval ?? o.pollIntervalSec });
  };
}
