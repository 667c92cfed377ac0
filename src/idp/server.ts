import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Provider as ProviderType, errors as ErrorsType } from 'oidc-provider';
import { createMemoryAdapterFactory } from './memory-adapter.js';
import { generateSigningKey, type SigningJwk } from './keys.js';
import { interactionsMiddleware } from './interactions.js';
import { pollingMiddleware } from './polling.js';
import { providerConfiguration } from './provider-config.js';
import {
  DEFAULT_AUDIENCE,
  DEFAULT_CLI_CLIENT_ID,
  DEFAULT_CONSOLE_CLIENT_ID,
  DEFAULT_USERS,
  DEFAULT_WORKLOAD_CLIENT_ID,
  DEFAULT_WORKLOAD_GROUPS,
  type IdpUser,
  type IdpWorkload,
} from './users.js';

export interface IdpOptions {
  /** Interface to listen on; loopback by default (this is a development IdP). */
  host?: string;
  /** TCP port; 0 (default) lets the OS pick a free one. */
  port?: number;
  /**
   * Issuer origin clients use, when it differs from http://host:port (behind a proxy, or listening on 0.0.0.0).
   * `{port}` is replaced by the bound port. Default: http://<host>:<port> (127.0.0.1 for a wildcard host).
   */
  issuer?: string;
  /** Resource indicator (RFC 8707) and `aud` of every access token: the broker's audience. */
  audience?: string;
  /** People who can log in with the device flow. Default: DEFAULT_USERS. */
  users?: readonly IdpUser[];
  /**
   * Register the broker's web console as a public authorization-code + PKCE client with these redirect URIs
   * (`<console publicUrl>/ui/callback`). Default: no console client.
   */
  consoleRedirectUris?: string[];
  /** Client id of the console client. Default `guard-aws-console`. */
  consoleClientId?: string;
  /** Confidential clients for CI and agents. Default: one `guard-aws-ci` client in group `ci` with a random secret. */
  workloads?: readonly IdpWorkload[];
  /** Claim that carries the groups in access tokens. Default `groups`. */
  groupsClaim?: string;
  /** Client id of the public device-flow client the CLI uses. Default `guard-aws-cli`. */
  clientId?: string;
  /** Private signing JWKs (first one signs). Default: one RS256 key generated now. */
  signingKeys?: SigningJwk[];
  /** Lifetimes in seconds. */
  accessTokenTtlSec?: number;
  refreshTokenTtlSec?: number;
  deviceCodeTtlSec?: number;
  /** Minimum polling interval announced in the device authorization response (RFC 8628 §3.2). Default 5. */
  pollIntervalSec?: number;
  /**
   * Answer `slow_down` when a client polls sooner than the current interval, and raise that device code's interval by
   * 5 s (RFC 8628 §3.5). Default true.
   */
  enforcePollInterval?: boolean;
  /** Diagnostic lines (no tokens, codes or passwords ever reach it). Default: none. */
  log?: (line: string) => void;
  /**
   * Keep logins (refresh tokens, grants, sessions) in this file (0600) so they survive a restart, as `guard-aws dev`
   * does in its data directory. Default: memory only.
   */
  storeFile?: string;
}

export interface StartedIdp {
  issuer: string;
  port: number;
  audience: string;
  clientId: string;
  groupsClaim: string;
  users: readonly IdpUser[];
  workloads: readonly IdpWorkload[];
  jwksUri: string;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint: string;
  verificationUri: string;
  /** Public halves of the signing keys (what the JWKS endpoint serves). */
  signingKeys: readonly SigningJwk[];
  close(): Promise<void>;
}

type OidcModule = { Provider: typeof ProviderType; errors: typeof ErrorsType };
let providerModule: Promise<OidcModule> | undefined;

/**
 * oidc-provider prints an "Unsupported runtime" notice when imported on Node 20 (it targets 22+, but works on 20,
 * which guard-aws supports). That one notice is dropped; every other warning still shows.
 */
function loadProvider(): Promise<OidcModule> {
  providerModule ??= (async () => {
    const original = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
      original(...args);
    };
    try {
      const m = await import('oidc-provider');
      return { Provider: m.default, errors: m.errors };
    } finally {
      console.warn = original;
    }
  })();
  return providerModule;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function publicJwk(k: SigningJwk): SigningJwk {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = k;
  return pub as SigningJwk;
}

/** Configuration mistakes fail at start, naming the entry, rather than surfacing as odd logins later. */
function validateAccounts(users: readonly IdpUser[], workloads: readonly IdpWorkload[], cliClientId: string): void {
  const names = new Set<string>();
  users.forEach((u, i) => {
    if (typeof u.username !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(u.username)) throw new Error(`idp: users[${i}].username must be 1-64 of A-Z a-z 0-9 . _ @ -`);
    if (names.has(u.username)) throw new Error(`idp: users[${i}].username ${u.username} is listed twice`);
    names.add(u.username);
    if (typeof u.password !== 'string' || u.password === '') throw new Error(`idp: users[${i}].password must not be empty`);
    if (!Array.isArray(u.groups) || !u.groups.every((g) => typeof g === 'string' && g !== '')) throw new Error(`idp: users[${i}].groups must be a list of names`);
  });
  const ids = new Set<string>([cliClientId]);
  workloads.forEach((w, i) => {
    if (typeof w.clientId !== 'string' || w.clientId === '' || ids.has(w.clientId)) throw new Error(`idp: workloads[${i}].clientId must be unique and not the CLI's client id`);
    ids.add(w.clientId);
    if (typeof w.clientSecret !== 'string' || w.clientSecret.length < 8) throw new Error(`idp: workloads[${i}].clientSecret must be at least 8 characters`);
    if (!Array.isArray(w.groups) || !w.groups.every((g) => typeof g === 'string' && g !== '')) throw new Error(`idp: workloads[${i}].groups must be a list of names`);
  });
}

export async function startIdp(opts: IdpOptions = {}): Promise<StartedIdp> {
  const { Provider, errors } = await loadProvider();
  const host = opts.host ?? '127.0.0.1';
  const audience = opts.audience ?? DEFAULT_AUDIENCE;
  const users = opts.users ?? DEFAULT_USERS;
  const workloads = opts.workloads ?? [
    { clientId: DEFAULT_WORKLOAD_CLIENT_ID, clientSecret: randomBytes(24).toString('base64url'), groups: [...DEFAULT_WORKLOAD_GROUPS] },
  ];
  const groupsClaim = opts.groupsClaim ?? 'groups';
  const clientId = opts.clientId ?? DEFAULT_CLI_CLIENT_ID;
  const signingKeys = opts.signingKeys ?? [await generateSigningKey('RS256')];
  const accessTtl = opts.accessTokenTtlSec ?? 15 * 60;
  const refreshTtl = opts.refreshTokenTtlSec ?? 12 * 60 * 60;
  const deviceTtl = opts.deviceCodeTtlSec ?? 10 * 60;
  const pollInterval = opts.pollIntervalSec ?? 5;
  const enforceInterval = opts.enforcePollInterval ?? true;
  const log = opts.log ?? (() => {});
  validateAccounts(users, workloads, clientId);
  const usersByName = new Map(users.map((u) => [u.username, u]));

  const server = createServer();
  const port = await listen(server, opts.port ?? 0, host);
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const hostForUrl = urlHost.includes(':') ? `[${urlHost}]` : urlHost;
  const issuer = opts.issuer ? opts.issuer.replace('{port}', String(port)).replace(/\/+$/, '') : `http://${hostForUrl}:${port}`;
  // The provider is served at the root of this server, so the issuer must be a bare origin.
  if (new URL(issuer).origin !== issuer) {
    server.close();
    throw new Error(`idp: issuer must be an origin like http://host:port, not ${issuer}`);
  }

  const provider = new Provider(
    issuer,
    providerConfiguration({
      issuer,
      audience,
      clientId,
      groupsClaim,
      usersByName,
      workloads,
      ...(opts.consoleRedirectUris?.length ? { console: { clientId: opts.consoleClientId ?? DEFAULT_CONSOLE_CLIENT_ID, redirectUris: opts.consoleRedirectUris } } : {}),
      signingKeys,
      cookieKeys: [randomBytes(32).toString('base64url')],
      adapter: createMemoryAdapterFactory(Date.now, opts.storeFile ? { file: opts.storeFile } : undefined),
      errors,
      ttl: { access: accessTtl, refresh: refreshTtl, device: deviceTtl },
    }),
  );

  provider.on('server_error', (_ctx: unknown, err: Error) => log(`idp: server error: ${err.name}: ${err.message}`));
  // Koa prints uncaught request errors with their stack to stderr unless the app has its own 'error' listener.
  provider.on('error', (err: Error) => log(`idp: request error: ${err.name}: ${err.message}`));
  provider.use(pollingMiddleware({ pollIntervalSec: pollInterval, enforce: enforceInterval }));
  provider.use(interactionsMiddleware(provider, { usersByName, log }));

  server.on('request', provider.callback());

  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  return {
    issuer,
    port,
    audience,
    clientId,
    groupsClaim,
    users,
    workloads,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint: `${issuer}/token`,
    deviceAuthorizationEndpoint: `${issuer}/device/auth`,
    verificationUri: `${issuer}/device`,
    signingKeys: signingKeys.map(publicJwk),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      // Let in-process HTTP clients notice the closed keep-alive sockets before anyone reuses the port.
      await new Promise((r) => setTimeout(r, 25));
    },
  };
}
