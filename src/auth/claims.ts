import { GuardError } from '../errors.js';

/**
 * Reading (not verifying) a JWT's claims, and the groups claim's forms. Kept free of heavy imports: the run path
 * uses it on every call. Nothing here grants anything — the broker verifies every token (src/auth/verify.ts).
 */
export function decodeClaims(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) throw new Error('not a JWS compact serialization');
  const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new Error('JWT payload is not an object');
  return payload as Record<string, unknown>;
}

/** Groups from a claim that is a list, or a space/comma separated string (as some IdPs send it). */
export function groupsFrom(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const raw = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : null;
  if (raw === null) throw new GuardError('auth_rejected', 'token rejected: groups claim is neither a list nor a string');
  const out: string[] = [];
  for (const g of raw) {
    if (typeof g !== 'string') throw new GuardError('auth_rejected', 'token rejected: groups claim holds a non-string value');
    const t = g.trim();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}
