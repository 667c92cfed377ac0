import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';

/**
 * Refuses bodies larger than `maxBytes` with 413 (RFC 9110 §15.5.14) before anything parses them.
 * - With a Content-Length and no Transfer-Encoding, the header decides: Node's HTTP parser never delivers more
 *   body than Content-Length (RFC 9112 §6.3), so nothing larger can follow. Reading the header alone also keeps
 *   @hono/node-server on its fast body path.
 * - Otherwise (chunked), hono's bodyLimit counts the streamed bytes and stops at the limit.
 */
export function limitBody(maxBytes: number): MiddlewareHandler<BrokerEnv> {
  const tooLarge = () => {
    // The unread rest of the body is still on the connection: tell the client it will not be reused
    // (RFC 9112 §9.6) rather than let it send its next request into a socket we are about to drop.
    throw new ApiError('payload_too_large', `request body larger than ${maxBytes} bytes`, {}, { headers: { Connection: 'close' } });
  };
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (!/^[0-9]+$/.test(length)) throw new ApiError('bad_request', 'invalid Content-Length');
      if (Number(length) > maxBytes) tooLarge();
      return next();
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return streaming(c, next);
  };
}
