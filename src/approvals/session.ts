import { getAccessToken, type AccessToken } from '../auth/access-token.js';
import { openTokenStore, type TokenStore } from '../auth/token-store.js';
import { requireSecureUrl } from '../auth/urls.js';
import { noBrokerError, resolveBrokerUrl } from '../config/client-config.js';
import { GuardError } from '../errors.js';
import type { ApprovalClientOptions } from './client.js';

export interface SessionOptions {
  env: NodeJS.ProcessEnv;
  /** `--broker URL`, when given. */
  brokerFlag?: string;
  fetch?: typeof fetch;
  store?: TokenStore;
  now?: () => number;
}

/** Refresh a minute before expiry so a token never dies between here and the broker. */
const MARGIN_MS = 60_000;

/**
 * Broker URL and bearer token for the approval commands, resolved the way every guard-aws command does
 * (`--broker` > GUARD_AWS_BROKER > the last login's broker; GUARD_AWS_TOKEN[_FILE] > GitHub Actions > stored
 * login). The token is fetched lazily and renewed near its expiry, so a long wait keeps working.
 */
export async function approvalSession(o: SessionOptions): Promise<ApprovalClientOptions> {
  const brokerUrl = await resolveBrokerUrl(o.brokerFlag, o.env);
  if (!brokerUrl) {
    throw noBrokerError();
  }
  // A bearer token must not cross the network in clear text (plain http only on loopback).
  requireSecureUrl(brokerUrl, 'broker URL', o.env);
  const now = o.now ?? Date.now;
  let store = o.store;
  let cached: AccessToken | undefined;
  const token = async (): Promise<string> => {
    if (cached && (!cached.expiresAt || cached.expiresAt.getTime() - MARGIN_MS > now())) return cached.token;
    store ??= await openTokenStore({ env: o.env });
    cached = await getAccessToken({ env: o.env, brokerUrl, store, ...(o.fetch ? { fetch: o.fetch } : {}) });
    return cached.token;
  };
  return { brokerUrl, token, ...(o.fetch ? { fetch: o.fetch } : {}) };
}
