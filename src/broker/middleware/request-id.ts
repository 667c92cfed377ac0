import type { MiddlewareHandler } from 'hono';
import type { BrokerEnv } from '../env.js';
import { randomId } from '../ids.js';

/**
 * Gives every request an id, returned in `X-Request-Id` and written to every log line about the request, so a
 * user quoting the id of a 500 can be matched to the broker log. Always generated here: an id chosen by the
 * client could be used to forge or confuse log correlation.
 */
export function requestId(generate: () => string = () => randomId(12)): MiddlewareHandler<BrokerEnv> {
  return async (c, next) => {
    const id = generate();
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
    // Error responses built by onError replace c.res; keep the header on them too.
    if (!c.res.headers.has('X-Request-Id')) c.res.headers.set('X-Request-Id', id);
  };
}
