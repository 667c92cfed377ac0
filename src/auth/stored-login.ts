import { decodeJwt } from 'jose';
import { z } from 'zod';
import { groupsFrom } from './verify.js';

/** A login as kept in the token store, one per broker. */
const StoredLoginSchema = z.object({
  version: z.literal(1),
  broker: z.string(),
  issuer: z.string(),
  clientId: z.string(),
  audience: z.string(),
  groupsClaim: z.string(),
  accessToken: z.string(),
  refreshToken: z.string().optional(),
  expiresAt: z.string(),
  subject: z.string(),
  groups: z.array(z.string()),
  name: z.string().optional(),
  savedAt: z.string(),
});
export type StoredLogin = z.infer<typeof StoredLoginSchema>;

/** The stored login, or undefined when the entry is missing or unreadable (then the user simply logs in again). */
export function parseStoredLogin(text: string | undefined): StoredLogin | undefined {
  if (text === undefined) return undefined;
  try {
    const r = StoredLoginSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
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
    const c = decodeJwt(token);
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
