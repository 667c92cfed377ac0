import { getAccessToken, type TokenSource } from './access-token.js';
import type { Clock } from './clock.js';
import type { TokenStore } from './token-store.js';

export interface WhoamiInfo {
  subject: string | null;
  groups: string[];
  expiresAt: string | null;
  broker: string | null;
  source: TokenSource;
  /** Where the token comes from or is kept: an environment variable, a file path, or the token store. */
  keptIn: string;
}

/** Who guard-aws would present itself as to the broker right now (refreshing a stored login if needed). */
export async function whoami(opts: { env: NodeJS.ProcessEnv; brokerUrl?: string; store: TokenStore; fetch?: typeof fetch; clock?: Clock }): Promise<WhoamiInfo> {
  const t = await getAccessToken(opts);
  const keptIn =
    t.source === 'login'
      ? (t.keptIn ?? opts.store.describe())
      : t.source === 'GUARD_AWS_TOKEN_FILE'
        ? `file ${opts.env.GUARD_AWS_TOKEN_FILE}`
        : t.source === 'GUARD_AWS_TOKEN'
          ? 'environment variable GUARD_AWS_TOKEN'
          : 'GitHub Actions OIDC token (not stored)';
  return {
    subject: t.subject ?? null,
    groups: t.groups ?? [],
    expiresAt: t.expiresAt?.toISOString() ?? null,
    broker: opts.brokerUrl ?? null,
    source: t.source,
    keptIn,
  };
}
