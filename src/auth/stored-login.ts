import { decodeClaims, groupsFrom } from './claims.js';

/**
 * A login as kept in the token store, one per broker. Checked by hand rather than with zod: this is read on every
 * guarded call, whose code path loads no schema library (a bare `import('zod')` took 150–170 ms on a 2-core
 * machine, where a guarded call's whole start-up is meant to stay small).
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

type TextField = 'broker' | 'issuer' | 'clientId' | 'audience' | 'groupsClaim' | 'accessToken' | 'expiresAt' | 'subject' | 'savedAt';

/** The login, or why it cannot be used: `field: what was expected` (never a value — the entry holds tokens). */
export type StoredLoginRead = { login: StoredLogin; problem?: undefined } | { login?: undefined; problem: string };

class Unusable extends Error {}

export function readStoredLogin(text: string): StoredLoginRead {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { problem: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: 'not a JSON object' };
  const entry = new Map(Object.entries(v));
  const need = (k: TextField): string => {
    const x = entry.get(k);
    if (typeof x !== 'string') throw new Unusable(`${k}: expected a string`);
    return x;
  };
  const optional = (k: 'refreshToken' | 'name'): string | undefined => {
    const x = entry.get(k);
    if (x !== undefined && typeof x !== 'string') throw new Unusable(`${k}: expected a string`);
    return x;
  };
  const list = (k: 'groups'): string[] => {
    const x = entry.get(k);
    if (!Array.isArray(x) || !x.every((g): g is string => typeof g === 'string')) throw new Unusable(`${k}: expected a list of strings`);
    return [...x];
  };
  try {
    if (entry.get('version') !== 1) throw new Unusable('version: expected 1');
    const refreshToken = optional('refreshToken');
    const name = optional('name');
    const login: StoredLogin = {
      version: 1,
      broker: need('broker'),
      issuer: need('issuer'),
      clientId: need('clientId'),
      audience: need('audience'),
      groupsClaim: need('groupsClaim'),
      accessToken: need('accessToken'),
      ...(refreshToken !== undefined ? { refreshToken } : {}),
      expiresAt: need('expiresAt'),
      subject: need('subject'),
      groups: list('groups'),
      ...(name !== undefined ? { name } : {}),
      savedAt: need('savedAt'),
    };
    return { login };
  } catch (e) {
    if (e instanceof Unusable) return { problem: e.message };
    throw e;
  }
}

/** The stored login, or undefined when the entry is missing or unusable (logout forgets it either way). */
export function parseStoredLogin(text: string | undefined): StoredLogin | undefined {
  return text === undefined ? undefined : readStoredLogin(text).login;
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
