import * as client from 'openid-client';
import { spawn } from 'node:child_process';
import { GuardError } from '../errors.js';
import type { IoHost } from '../io/host.js';
import { writeClientConfig, readClientConfig } from '../config/client-config.js';
import { fetchBrokerConfig } from './broker-config.js';
import { systemClock, type Clock } from './clock.js';
import { pollDeviceToken, type DeviceAuthorization } from './device-flow.js';
import { oauthReason, openIdpClient } from './oidc.js';
import { summarizeToken, type StoredLogin } from './stored-login.js';
import type { TokenStore } from './token-store.js';

export interface LoginOptions {
  /** Normalized broker URL (see normalizeBrokerUrl). */
  brokerUrl: string;
  host: IoHost;
  env: NodeJS.ProcessEnv;
  store: TokenStore;
  fetch?: typeof fetch;
  clock?: Clock;
  /** Opens a URL in the user's browser; only ever called on an interactive terminal, never on CI. */
  openBrowser?: (url: string) => Promise<void>;
  /** --no-browser: never offer to open one. */
  noBrowser?: boolean;
}

/** Scopes: `openid` for the subject, `offline_access` for a refresh token (OIDC Core §11). */
const SCOPE = 'openid offline_access';

function isCi(env: NodeJS.ProcessEnv): boolean {
  return !!env.CI && env.CI !== 'false' && env.CI !== '0';
}

/**
 * `guard-aws login`: OAuth 2.0 device authorization grant (RFC 8628) against the identity provider the broker names.
 * Shows the verification URL and user code, optionally opens a browser, polls, then keeps the tokens in the store
 * and remembers the broker URL.
 */
export async function login(opts: LoginOptions): Promise<StoredLogin> {
  const f = opts.fetch ?? fetch;
  const clock = opts.clock ?? systemClock;
  const { host, env } = opts;
  const brokerCfg = await fetchBrokerConfig(opts.brokerUrl, f);
  const groupsClaim = brokerCfg.groupsClaim ?? 'groups';
  const config = await openIdpClient(brokerCfg.issuer, brokerCfg.clientId, f, env);
  const resource = { resource: brokerCfg.audience };

  let da: DeviceAuthorization;
  try {
    da = (await client.initiateDeviceAuthorization(config, { scope: SCOPE, ...resource })) as DeviceAuthorization;
  } catch (e) {
    throw new GuardError(e instanceof client.ResponseBodyError ? 'auth_rejected' : 'idp_unreachable', `the identity provider refused to start a login: ${oauthReason(e)}`, { cause: e });
  }

  // RFC 8628 §3.3: show the user where to go and the code to enter. The lines below are a stable format
  // (scripts and tests read "open:" and "code:").
  host.info(`To log in to ${opts.brokerUrl}, open this page in a browser:`);
  host.info(`  open: ${da.verification_uri}`);
  host.info(`  code: ${da.user_code}`);

  const direct = da.verification_uri_complete ?? da.verification_uri;
  if (host.interactive && !opts.noBrowser && !isCi(env) && opts.openBrowser && host.prompt) {
    const answer = (await host.prompt('Open the login page in your browser now? [Y/n]')).trim().toLowerCase();
    if (answer === '' || answer === 'y' || answer === 'yes') {
      await opts.openBrowser(direct).catch(() => host.warn('could not open a browser; open the page above yourself'));
    }
  }

  host.status('waiting for the login to be completed in the browser…');
  const tokens = await pollDeviceToken(config, da, { clock, parameters: resource, host });
  const stored = toStoredLogin(opts.brokerUrl, brokerCfg.issuer, brokerCfg.clientId, brokerCfg.audience, groupsClaim, tokens, clock);
  await opts.store.set(opts.brokerUrl, JSON.stringify(stored));
  await writeClientConfig({ ...(await readClientConfig(env).catch(() => ({}))), broker: opts.brokerUrl }, env);
  return stored;
}

export function toStoredLogin(
  broker: string,
  issuer: string,
  clientId: string,
  audience: string,
  groupsClaim: string,
  tokens: { access_token: string; refresh_token?: string; expires_in?: number },
  clock: Clock,
  previousRefreshToken?: string,
): StoredLogin {
  const summary = summarizeToken(tokens.access_token, groupsClaim);
  const expiresAt =
    typeof tokens.expires_in === 'number' ? new Date(clock.now() + tokens.expires_in * 1000) : (summary.expiresAt ?? new Date(clock.now()));
  const refreshToken = tokens.refresh_token ?? previousRefreshToken;
  return {
    version: 1,
    broker,
    issuer,
    clientId,
    audience,
    groupsClaim,
    accessToken: tokens.access_token,
    ...(refreshToken ? { refreshToken } : {}),
    expiresAt: expiresAt.toISOString(),
    subject: summary.subject ?? '(unknown)',
    groups: summary.groups,
    ...(summary.name ? { name: summary.name } : {}),
    savedAt: new Date(clock.now()).toISOString(),
  };
}

/** Opens a URL with the platform's opener, without a shell (argv array), detached from guard-aws. */
export async function openInBrowser(url: string): Promise<void> {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true, shell: false });
    child.once('error', reject);
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
