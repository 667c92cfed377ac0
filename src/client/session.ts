import type { AccessToken } from '../auth/access-token.js';
import type { TokenStore } from '../auth/token-store.js';
import { GuardError } from '../errors.js';
import type { GuardOptions } from './guard-options.js';

/** Broker URL and a bearer token source for one run; the token is renewed near expiry during long waits. */
export interface ClientSession {
  brokerUrl: string;
  token: () => Promise<string>;
  /** Who the token says we are (for messages only; the broker decides from its own verification). */
  subject?: string;
  groups?: string[];
}

const MARGIN_MS = 60_000;

/** The session for the real CLI: `--broker` > GUARD_AWS_BROKER > the last login's broker; tokens per src/auth. */
export async function openSession(options: GuardOptions, env: NodeJS.ProcessEnv, f: typeof fetch = fetch): Promise<ClientSession> {
  const [{ resolveBrokerUrl, noBrokerError }, { requireSecureUrl }, { getAccessToken }, { openTokenStore }] = await Promise.all([
    import('../config/client-config.js'),
    import('../auth/urls.js'),
    import('../auth/access-token.js'),
    import('../auth/token-store.js'),
  ]);
  const brokerUrl = await resolveBrokerUrl(options.broker, env);
  if (!brokerUrl) {
    throw noBrokerError();
  }
  // A bearer token must not cross the network in clear text (plain http only on loopback).
  requireSecureUrl(brokerUrl, 'broker URL', env);
  // The store (keychain via keytar, or files) is opened only when a stored login is actually read: a workload
  // token from the environment needs none of it.
  let opened: Promise<TokenStore> | undefined;
  let real: TokenStore | undefined;
  const open = async () => (real ??= await (opened ??= openTokenStore({ env })));
  const store: TokenStore = {
    get kind() {
      return real?.kind ?? 'file';
    },
    get: async (k) => (await open()).get(k),
    set: async (k, v) => (await open()).set(k, v),
    delete: async (k) => (await open()).delete(k),
    describe: () => real?.describe() ?? 'not opened',
  };
  let cached: AccessToken = await getAccessToken({ env, brokerUrl, store, fetch: f });
  const token = async () => {
    if (cached.expiresAt && cached.expiresAt.getTime() - MARGIN_MS <= Date.now()) {
      cached = await getAccessToken({ env, brokerUrl, store, fetch: f });
    }
    return cached.token;
  };
  return {
    brokerUrl,
    token,
    ...(cached.subject ? { subject: cached.subject } : {}),
    ...(cached.groups ? { groups: cached.groups } : {}),
  };
}
