import { decodeClaims, groupsFrom } from './claims.js';

/**
 * A login as kept in the token store, one per broker. Checked by hand rather than with a schema library: this is
 * read on every guarded call, and start-up time matters there.
 */
export interface StoredLogin {
  version: 1;
  broker: string;
  issuer: string;
  clientId: string;
  audience: string;
  groupsClaim: string;
  accessToken: string;
  refreshToken?: string;
  expiresAt: string;
  subject: string;
  groups: string[];
  name?: string;
  savedAt: string;
}

const REQUIRED = ['broker', 'issuer', 'clientId', 'audience', 'groupsClaim', 'accessToken', 'expiresAt', 'subject', 'savedAt'] as const;

/** The stored login, or undefined when the entry is missing or unreadable (then the user simply logs in again). */
export function parseStoredLogin(text: string | undefined): StoredLogin | undefined {
  if (text === undefined) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || v.version !== 1) return undefined;
  for (const k of REQUIRED) if (typeof v[k] !== 'string') return undefined;
  if (!Array.isArray(v.groups) || !v.groups.every((g) => typeof g === 'string')) return undefined;
  for (const k of ['refreshToken', 'name'] as const) if (v[k] !== undefined && typeof v[k] !== 'string') return undefined;
  return v as unknown as StoredLogin;
}

export interface TokenSummary {
  subject?: string;
  groups: string[];
  name?: string;
  expiresAt?: Date;
}

/**
 * What an access token says about its holder, read WITHOUT verifying it: only for display and cache expiry on the
 * client. The broker verifies every token itself (src/auth/verify.ts); nothing here grants anything.
 */
export function summarizeToken(token: string, groupsClaim = 'groups'): TokenSummary {
  try {
    const c = decodeClaims(token);
    let groups: string[] = [];
    try {
      groups = groupsFrom(c[groupsClaim]);
    } catch {
      groups = [];
    }
    const name = [c.name, c.preferred_username, c.email].find((v): v is string => typeof v === 'string' && v !== '');
    return {
      ...(typeof c.sub === 'string' ? { subject: c.sub } : {}),
      groups,
      ...(name ? { name } : {}),
      ...(typeof c.exp === 'number' ? { expiresAt: new Date(c.exp * 1000) } : {}),
    };
  } catch {
    return { groups: [] };
  }
}
