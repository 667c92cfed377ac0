import { createHash } from 'node:crypto';
import type { Caller } from '../policy/types.js';
import type { TokenVerifier } from './middleware/bearer-auth.js';

export interface VerifyCacheOptions {
  /** Longest a verification is reused, whatever the token's own expiry. Default 60 s. */
  ttlMs?: number;
  /** Most tokens remembered; the oldest is dropped first. Default 10,000. */
  max?: number;
  now?: () => number;
}

/**
 * Remembers successful verifications for a short while, so a caller running many commands in a row does not pay
 * for a signature check each time. A cached answer is never used past the token's own `exp`, nor past `ttlMs`
 * (which bounds how long a key removed from the issuer's JWKS stays trusted). Only successes are cached; tokens
 * without an expiry are not cached at all. Entries are keyed by SHA-256 of the token.
 */
export function cachingVerifier(verify: TokenVerifier, options: VerifyCacheOptions = {}): TokenVerifier {
  const ttl = options.ttlMs ?? 60_000;
  const max = options.max ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { caller: Caller; until: number }>();
  return async (token) => {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = cache.get(key);
    const t = now();
    if (hit && t < hit.until) return hit.caller;
    if (hit) cache.delete(key);
    const caller = await verify(token);
    const exp = (caller as Caller & { expiresAt?: Date }).expiresAt;
    if (exp instanceof Date) {
      const until = Math.min(exp.getTime(), t + ttl);
      if (until > t) {
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(key, { caller, until });
      }
    }
    return caller;
  };
}
