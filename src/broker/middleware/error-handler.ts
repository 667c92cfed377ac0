import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';
import { isGuardError } from '../../errors.js';
import type { BrokerLog } from '../log.js';

function send(c: Context<BrokerEnv>, e: ApiError) {
  for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
  c.header('Cache-Control', 'no-store');
  return c.json(e.body(), e.status);
}

/**
 * The one place errors become responses. Deliberate ApiErrors keep their status and message; hono's own
 * HTTPExceptions (malformed requests it caught) keep their status with a generic message; anything else is a
 * bug: 500 with only the request id, and the details (stack included) go to the broker log alone.
 */
export function errorHandler(log: BrokerLog): ErrorHandler<BrokerEnv> {
  return (err, c) => {
    if (err instanceof ApiError) return send(c, err);
    if (err instanceof HTTPException && err.status < 500) {
      return send(c, new ApiError('bad_request', 'the request could not be read', {}, { status: err.status }));
    }
    const requestId = c.get('requestId');
    if (isGuardError(err) && err.code === 'store_unavailable') {
      // Fail closed: nothing is granted or recorded without the database. The client is told to retry (possibly on
      // another broker); where the database is and why it failed stay in this broker's log.
      log({ level: 'error', msg: 'store unavailable', requestId, method: c.req.method, path: c.req.path, error: err.message });
      return send(c, new ApiError('store_unavailable', `the broker's database is unavailable; nothing was granted or recorded, try again shortly (request id ${requestId ?? 'unknown'})`, {}, { headers: { 'Retry-After': '1' } }));
    }
    log({
      level: 'error',
      msg: 'internal error',
      requestId,
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    return send(c, new ApiError('internal', `internal error; quote request id ${requestId ?? 'unknown'} to the broker's operator`));
  };
}

export const notFound: NotFoundHandler<BrokerEnv> = (c) =>
  send(c, new ApiError('not_found', `no such endpoint: ${c.req.method} ${c.req.path}`));
