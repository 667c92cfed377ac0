import { readFile } from 'node:fs/promises';
import { noBrokerError } from '../config/client-config.js';
import { GuardError } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { readStoredLogin, summarizeToken, type StoredLogin } from './stored-login.js';
import type { TokenStore } from './token-store.js';
import { requireSecureUrl } from '../config/urls.js';
import { withRefreshLock } from './refresh-lock.js';
import { configDir } from '../config/paths.js';

export type TokenSource = 'GUARD_AWS_TOKEN' | 'GUARD_AWS_TOKEN_FILE' | 'github-actions' | 'login';

export interface AccessToken {
  token: string;
  source: TokenSource;
  subject?: string;
  groups?: string[];
  expiresAt?: Date;
  /** Where a stored login is kept (TokenStore.describe()), for `whoami`. */
  keptIn?: string;
}

export interface GetAccessTokenOptions {
  env: NodeJS.ProcessEnv;
  /** Resolved broker URL (flag > GUARD_AWS_BROKER > saved config); needed for GitHub Actions and stored logins. */
  brokerUrl?: string;
  store: TokenStore;
  fetch?: typeof fetch;
  clock?: Clock;
}

/** Refresh this long before expiry, so a token does not die between here and the broker. */
const EXPIRY_MARGIN_MS = 60_000;

/** The login command for a broker that is known: copied as is, it logs in to the right one. */
const loginHint = (broker: string) => `run \`guard-aws login --broker ${broker}\``;

/**
 * The bearer token for the broker, without ever prompting. In order:
 * 1. GUARD_AWS_TOKEN — a workload token given directly;
 * 2. GUARD_AWS_TOKEN_FILE — a file holding one (re-read every time: Kubernetes and CI rotate them in place);
 * 3. GitHub Actions' OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN) for the broker's audience;
 * 4. the stored `guard-aws login`, refreshed silently with its refresh token when expired.
 */
export async function getAccessToken(opts: GetAccessTokenOptions): Promise<AccessToken> {
  const { env } = opts;
  const f = opts.fetch ?? fetch;
  const clock = opts.clock ?? systemClock;

  if (env.GUARD_AWS_TOKEN) {
    return fromWorkloadToken(checkTokenText(env.GUARD_AWS_TOKEN.trim(), 'GUARD_AWS_TOKEN'), 'GUARD_AWS_TOKEN', clock);
  }
  if (env.GUARD_AWS_TOKEN_FILE) {
    const path = env.GUARD_AWS_TOKEN_FILE;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new GuardError('auth_required', `GUARD_AWS_TOKEN_FILE=${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (bytes.length > MAX_TOKEN_FILE) throw new GuardError('auth_rejected', `GUARD_AWS_TOKEN_FILE=${path}: ${bytes.length} bytes is not a token (at most ${MAX_TOKEN_FILE})`);
    const text = bytes.toString('latin1').trim();
    if (text === '') throw new GuardError('auth_required', `GUARD_AWS_TOKEN_FILE=${path}: the file is empty`);
    return fromWorkloadToken(checkTokenText(text, `GUARD_AWS_TOKEN_FILE=${path}`), 'GUARD_AWS_TOKEN_FILE', clock);
  }
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
    if (!opts.brokerUrl) throw noBrokerError();
    const { fetchBrokerConfig } = await import('./broker-config.js');
    const { audience } = await fetchBrokerConfig(opts.brokerUrl, f);
    const token = await githubActionsToken(env.ACTIONS_ID_TOKEN_REQUEST_URL, env.ACTIONS_ID_TOKEN_REQUEST_TOKEN, audience, f, env);
    return fromWorkloadToken(token, 'github-actions', clock);
  }

  const brokerUrl = opts.brokerUrl;
  if (!brokerUrl) throw noBrokerError();
  const store = opts.store;
  /** The stored login for this broker; a missing or unusable one means logging in (again). */
  const storedLogin = async (): Promise<StoredLogin> => {
    const text = await store.get(brokerUrl);
    if (text === undefined) throw new GuardError('auth_required', `not logged in to ${brokerUrl}; ${loginHint(brokerUrl)}`);
    const read = readStoredLogin(text);
    if (!read.login) throw new GuardError('auth_required', `the stored login for ${brokerUrl} cannot be used (${read.problem}); ${loginHint(brokerUrl)}`);
    return read.login;
  };
  const stored = await storedLogin();
  const isFresh = (l: StoredLogin) => Date.parse(l.expiresAt) - EXPIRY_MARGIN_MS > clock.now();
  const fresh = isFresh(stored)
    ? stored
    : await withRefreshLock(configDir(env), async () => {
        // Another process may have refreshed while this one waited for the lock: use its result.
        const current = await storedLogin();
        return isFresh(current) ? current : refresh(current, store, f, clock, env);
      });
  return {
    token: fresh.accessToken,
    source: 'login',
    subject: fresh.subject,
    groups: fresh.groups,
    expiresAt: new Date(fresh.expiresAt),
    keptIn: opts.store.describe(),
  };
}

/** A token file larger than this is something else (a JWT is a few KiB; the broker refuses more than 16 KiB). */
const MAX_TOKEN_FILE = 64 * 1024;

/**
 * A bearer token is visible ASCII (RFC 6750 §2.1 b64token; a JWT is base64url and dots). Anything else — a binary
 * file, a file in another encoding — is an authentication problem (67) named here, not a request that fails
 * inside the HTTP client as "broker unreachable". The content itself is never echoed.
 */
function checkTokenText(text: string, where: string): string {
  if (!/^[\x21-\x7e]+$/.test(text)) {
    throw new GuardError('auth_rejected', `${where}: not a token (it holds binary data, spaces or non-ASCII characters); expected one JWT`);
  }
  return text;
}

function fromWorkloadToken(token: string, source: TokenSource, clock: Clock): AccessToken {
  const s = summarizeToken(token);
  // Fail early with a clear message instead of a round trip to the broker; the broker still decides.
  if (s.expiresAt && s.expiresAt.getTime() <= clock.now()) {
    throw new GuardError('auth_expired', `the token from ${source} expired at ${s.expiresAt.toISOString()}`);
  }
  return {
    token,
    source,
    ...(s.subject ? { subject: s.subject } : {}),
    groups: s.groups,
    ...(s.expiresAt ? { expiresAt: s.expiresAt } : {}),
  };
}

/**
 * GitHub Actions OIDC: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud> with "Authorization: Bearer
 * $ACTIONS_ID_TOKEN_REQUEST_TOKEN" returns {"value": "<JWT>"} (GitHub docs, "Configuring OpenID Connect in cloud
 * providers" / actions/toolkit core.getIDToken). The job needs `permissions: id-token: write`.
 */
export async function githubActionsToken(requestUrl: string, requestToken: string, audience: string, f: typeof fetch, env: NodeJS.ProcessEnv): Promise<string> {
  const url = requireSecureUrl(requestUrl, 'ACTIONS_ID_TOKEN_REQUEST_URL', env);
  url.searchParams.set('audience', audience);
  let res: Response;
  try {
    res = await f(url.href, { headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json; api-version=2.0' }, signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    throw new GuardError('idp_unreachable', `cannot reach the GitHub Actions token endpoint at ${url.origin}`, { cause: e });
  }
  const body = (await res.json().catch(() => undefined)) as { value?: unknown } | undefined;
  if (!res.ok || typeof body?.value !== 'string' || body.value === '') {
    throw new GuardError('auth_required', `the GitHub Actions token endpoint answered HTTP ${res.status} without a token (does the job have \`permissions: id-token: write\`?)`);
  }
  return body.value;
}

async function refresh(stored: StoredLogin, store: TokenStore, f: typeof fetch, clock: Clock, env: NodeJS.ProcessEnv): Promise<StoredLogin> {
  if (!stored.refreshToken) {
    throw new GuardError('auth_required', `your login to ${stored.broker} has expired; ${loginHint(stored.broker)}`);
  }
  // Only a refresh needs the OAuth client library: loaded here, not at start-up of every call.
  const [client, { oauthReason, openIdpClient }, { toStoredLogin }] = await Promise.all([
    import('openid-client'),
    import('./oidc.js'),
    import('./login.js'),
  ]);
  const config = await openIdpClient(stored.issuer, stored.clientId, f, env);
  let tokens;
  try {
    // RFC 6749 §6 refresh, asking again for the broker as the resource (RFC 8707 §2.2).
    tokens = await client.refreshTokenGrant(config, stored.refreshToken, { resource: stored.audience });
  } catch (e) {
    if (e instanceof client.ResponseBodyError) {
      // invalid_grant: revoked, expired or already rotated away. Forget it so the next run does not retry it.
      await store.delete(stored.broker);
      throw new GuardError('auth_required', `your login to ${stored.broker} has expired (${e.error}); ${loginHint(stored.broker)}`);
    }
    throw new GuardError('idp_unreachable', `cannot refresh the login at ${stored.issuer}: ${oauthReason(e)}`, { cause: e });
  }
  const next = toStoredLogin(stored.broker, stored.issuer, stored.clientId, stored.audience, stored.groupsClaim, tokens, clock, stored.refreshToken);
  await store.set(stored.broker, JSON.stringify(next));
  return next;
}
