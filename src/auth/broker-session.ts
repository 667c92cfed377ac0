import type { AccessToken } from './access-token.js';
import type { TokenStore } from './token-store.js';

/**
 * How every client command reaches the broker: its URL and a bearer token source. The one resolver for the run
 * path, `approvals …` and `audit …`.
 */
export interface BrokerSession {
  /** `--broker` > GUARD_AWS_BROKER > the last login's broker, normalised (https unless loopback). */
  readonly brokerUrl: string;
  /** The bearer token: fetched on first use, kept, and fetched again a minute before it expires. */
  token(): Promise<string>;
  /** Who the last token says we are (for messages only; the broker decides from its own verification). */
  readonly subject?: string | undefined;
  readonly groups?: string[] | undefined;
  /** The fetch the session was opened with, for the clients that talk to the broker with it. */
  readonly fetch?: typeof fetch;
}

export interface BrokerSessionOptions {
  /** `--broker URL`, when given. */
  flag?: string | undefined;
  env: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  /** Token store for stored logins; default: opened on first need (keychain or files), never for workload tokens. */
  store?: TokenStore;
  /** Milliseconds since the epoch (tests move time). */
  now?: () => number;
}

/** Refresh a minute before expiry so a token never dies between here and the broker. */
const MARGIN_MS = 60_000;

/**
 * Resolves the broker and returns its session. No broker anywhere is one error everywhere (noBrokerError: usage,
 * exit 64): the caller must say which broker (--broker, GUARD_AWS_BROKER, or a login that remembers it). The URL's scheme
 * was checked by normalizeBrokerUrl (a bearer token never travels in clear text, RFC 6750 §5.3).
 *
 * The token (GUARD_AWS_TOKEN[_FILE] > GitHub Actions > stored login, see getAccessToken) is fetched lazily, so a
 * command that needs no token never opens the store, and kept until a minute before its expiry; concurrent
 * callers share one fetch.
 */
export async function brokerSession(o: BrokerSessionOptions): Promise<BrokerSession> {
  // Imported here, not at the top: the run path loads this module early and most commands need only part of it.
  const [{ resolveBrokerUrl, noBrokerError }, { getAccessToken }] = await Promise.all([import('../config/client-config.js'), import('./access-token.js')]);
  const brokerUrl = await resolveBrokerUrl(o.flag, o.env);
  if (!brokerUrl) throw noBrokerError();
  const now = o.now ?? Date.now;
  let store: Promise<TokenStore> | undefined = o.store ? Promise.resolve(o.store) : undefined;
  // The store is opened only when a stored login is actually read: a workload token needs none of it.
  const openStore = async () => (store ??= import('./token-store.js').then((m) => m.openTokenStore({ env: o.env })));
  const lazyStore: TokenStore = {
    get kind() {
      return o.store?.kind ?? 'file';
    },
    get: async (k) => (await openStore()).get(k),
    set: async (k, v) => (await openStore()).set(k, v),
    delete: async (k) => (await openStore()).delete(k),
    describe: () => o.store?.describe() ?? 'not opened',
  };
  let cached: AccessToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;
  const fresh = (t: AccessToken) => !t.expiresAt || t.expiresAt.getTime() - MARGIN_MS > now();
  const session = {
    brokerUrl,
    ...(o.fetch ? { fetch: o.fetch } : {}),
    get subject() {
      return cached?.subject;
    },
    get groups() {
      return cached?.groups;
    },
    async token(): Promise<string> {
      if (cached && fresh(cached)) return cached.token;
      inFlight ??= getAccessToken({ env: o.env, brokerUrl, store: lazyStore, ...(o.fetch ? { fetch: o.fetch } : {}) }).finally(() => {
        inFlight = undefined;
      });
      cached = await inFlight;
      return cached.token;
    },
  };
  return session;
}
