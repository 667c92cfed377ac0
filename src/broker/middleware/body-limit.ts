import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../http-error.js';

/**
 * Refuses bodies larger than `maxBytes` with 413 (RFC 9110 §15.5.14) before anything parses them. hono's
 * bodyLimit checks Content-Length when given and otherwise counts the streamed bytes, so chunked bodies without
 * a length are bounded too.
 */
export function limitBody(maxBytes: number): MiddlewareHandler<BrokerEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      // The unread rest of the body is still on the connection: tell the client it will not be reused
      // (RFC 9112 §9.6) rather than let it send its next request into a socket we are about to drop.
      throw new ApiError(413, 'payload_too_large', `request body larger than ${maxBytes} bytes`, {}, { Connection: 'close' });
    },
  });
}
