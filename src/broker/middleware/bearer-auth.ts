import type { MiddlewareHandler } from 'hono';
import { isGuardError } from '../../errors.js';
import type { Caller } from '../../policy/types.js';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';
import type { BrokerLog } from '../log.js';

export type TokenVerifier = (token: string) => Promise<Caller>;

export interface BearerAuthOptions {
  verify: TokenVerifier;
  /** `realm` of the WWW-Authenticate challenge. */
  realm?: string;
  /** Paths served without a token (exact match), e.g. `/v1/config`. */
  isPublic?: (path: string) => boolean;
  log?: BrokerLog;
}

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Bearer-token authentication (RFC 6750). The token is handed to the verifier and never echoed, logged or stored.
 * - No Authorization header: 401 with a bare challenge (§3.1: no error code when the request carried no
 *   authentication information).
 * - Malformed header: 400 `bad_request` in the body, `error="invalid_request"` in the challenge (§3.1: that
 *   header speaks RFC 6750's vocabulary, the body the broker's own, src/api/errors.ts).
 * - Token rejected by the verifier: 401 `invalid_token` (§3.1).
 * - The identity provider's keys cannot be fetched: 503 — the token may be fine and "log in again" would be the
 *   wrong advice; still nothing is granted. Code `idp_unreachable`, as the CLI's own (older brokers: `idp_unavailable`).
 */
export function bearerAuth(options: BearerAuthOptions): MiddlewareHandler<BrokerEnv> {
  const realm = options.realm ?? 'guard-aws';
  const challenge = (extra = '') => `Bearer realm="${realm}"${extra}`;
  return async (c, next) => {
    if (options.isPublic?.(c.req.path)) return next();
    const header = c.req.header('Authorization');
    if (header === undefined || header === '') {
      throw new ApiError('unauthorized', 'a bearer token is required; run `guard-aws login`', {}, {
        headers: { 'WWW-Authenticate': challenge() },
      });
    }
    const m = BEARER.exec(header);
    if (!m) {
      throw new ApiError('bad_request', 'malformed Authorization header; expected `Bearer <token>`', {}, {
        headers: { 'WWW-Authenticate': challenge(', error="invalid_request"') },
      });
    }
    let caller: Caller;
    try {
      caller = await options.verify(m[1]!);
    } catch (e) {
      const code = isGuardError(e) ? e.code : 'error';
      if (code === 'idp_unreachable') {
        options.log?.({ level: 'error', msg: 'token verification impossible: identity provider keys unreachable', requestId: c.get('requestId') });
        throw new ApiError('idp_unreachable', 'the identity provider cannot be reached to check the token; try again later');
      }
      // Log why (the verifier's messages name claims, not the token), answer without detail.
      options.log?.({
        level: 'info',
        msg: 'token rejected',
        requestId: c.get('requestId'),
        reason: isGuardError(e) ? e.message : (e as Error)?.name,
      });
      const expired = code === 'auth_expired';
      throw new ApiError(expired ? 'token_expired' : 'invalid_token', expired ? 'the token has expired; run `guard-aws login`' : 'the token was rejected; run `guard-aws login`', {}, {
        headers: { 'WWW-Authenticate': challenge(`, error="invalid_token", error_description="${expired ? 'The access token expired' : 'The access token is invalid'}"`) },
      });
    }
    c.set('caller', caller);
    return next();
  };
}
