import { GuardError } from '../errors.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopback(url: URL): boolean {
  return LOOPBACK.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

/**
 * Tokens and login codes only travel over TLS, except to this machine (the embedded `guard-aws dev` servers).
 * RFC 8628 §5.1 and RFC 6749 §3.1/§3.2 require TLS for these endpoints; loopback is the one safe exception.
 * GUARD_AWS_INSECURE_HTTP=1 lifts the rule for lab setups (documented as unsafe).
 */
export function requireSecureUrl(raw: string, what: string, env: NodeJS.ProcessEnv): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new GuardError('config_invalid', `${what}: not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && (isLoopback(u) || env.GUARD_AWS_INSECURE_HTTP === '1')) return u;
  throw new GuardError('config_invalid', `${what}: ${u.origin} must use https (plain http is only allowed on loopback)`);
}
