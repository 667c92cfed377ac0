import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { KoaContext, Provider as ProviderType, errors as ErrorsType } from 'oidc-provider';
import { createMemoryAdapterFactory } from './memory-adapter.js';
import { generateSigningKey, type SigningJwk } from './keys.js';
import { confirmPage, errorPage, loginPage, successPage, userCodePage } from './pages.js';
import {
  DEFAULT_AUDIENCE,
  DEFAULT_CLI_CLIENT_ID,
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

/** Constant-time password check: compares digests so length differences leak nothing either. */
function passwordMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
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
  const workloadsById = new Map(workloads.map((w) => [w.clientId, w]));
  const signingAlg = signingKeys[0]!.alg;

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

  const provider = new Provider(issuer, {
    adapter: createMemoryAdapterFactory(),
    jwks: { keys: signingKeys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clients: [
      {
        // The CLI is a public client on people's machines: no secret, device flow + refresh (RFC 8628 §3.4, RFC 6749 §6).
        client_id: clientId,
        client_name: 'guard-aws',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        application_type: 'native',
      },
      ...workloads.map((w) => ({
        client_id: w.clientId,
        client_secret: w.clientSecret,
        client_name: w.clientId,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      })),
    ],
    clientDefaults: { id_token_signed_response_alg: signingAlg },
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name'] },
    async findAccount(_ctx: unknown, sub: string) {
      const user = usersByName.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...(user.name ? { name: user.name } : {}) }) };
    },
    // Groups (and the display name) travel in the access token so the broker decides without a userinfo round trip.
    async extraTokenClaims(_ctx: unknown, token: { accountId?: string; clientId?: string; kind?: string }) {
      if (token.accountId) {
        const user = usersByName.get(token.accountId);
        if (!user) return undefined;
        return { [groupsClaim]: [...user.groups], ...(user.name ? { name: user.name } : {}) };
      }
      const w = token.clientId ? workloadsById.get(token.clientId) : undefined;
      return w ? { [groupsClaim]: [...w.groups] } : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client may only revoke its own tokens.
        allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => token.clientId === client.clientId,
      },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx: KoaContext, _form: string, _out: unknown, err?: { name?: string; userCode?: string }) => {
          const state = (ctx.oidc as { session: { state: { secret: string } } }).session.state;
          let message: string | undefined;
          if (err && (err.userCode || err.name === 'NoCodeError')) message = 'That code is not valid or has expired. Try again.';
          else if (err && err.name === 'AbortedError') message = 'The sign-in was cancelled.';
          else if (err) message = 'The sign-in could not be completed.';
          ctx.type = 'html';
          ctx.body = userCodePage(new URL('/device', issuer).href, state.secret, message);
        },
        userCodeConfirmSource: async (ctx: KoaContext, _form: string, client: { clientName?: string; clientId: string }, _info: unknown, userCode: string) => {
          const state = (ctx.oidc as { session: { state: { secret: string } } }).session.state;
          ctx.type = 'html';
          ctx.body = confirmPage(new URL('/device', issuer).href, state.secret, userCode, client.clientName ?? client.clientId);
        },
        successSource: async (ctx: KoaContext) => {
          ctx.type = 'html';
          ctx.body = successPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        // RFC 8707: tokens are only ever minted for the broker; any other resource is refused (invalid_target).
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          if (resource !== audience) throw new errors.InvalidTarget!();
          return {
            scope: 'openid offline_access',
            audience,
            accessTokenTTL: accessTtl,
            // RFC 9068 JWT access tokens, so the broker verifies them offline against the JWKS.
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
    interactions: { url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      DeviceCode: deviceTtl,
      IdToken: accessTtl,
      RefreshToken: refreshTtl,
      Interaction: 10 * 60,
      Session: refreshTtl,
      Grant: refreshTtl,
    },
    clientBasedCORS: () => false,
    renderError: async (ctx: KoaContext, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  });

  provider.on('server_error', (_ctx: unknown, err: Error) => log(`idp: server error: ${err.name}: ${err.message}`));
  // Koa prints uncaught request errors with their stack to stderr unless the app has its own 'error' listener.
  provider.on('error', (err: Error) => log(`idp: request error: ${err.name}: ${err.message}`));

  // RFC 8628 §3.2 lets the server choose the polling interval; oidc-provider leaves it out (clients assume 5 s).
  // §3.5: a client polling faster gets `slow_down`, and that code's interval grows by 5 s for all later requests.
  const polls = new Map<string, { last: number; interval: number }>();
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      (ctx.body as Record<string, unknown>).interval = pollInterval;
      return;
    }
    if (route !== 'token' || !enforceInterval) return;
    const body = ctx.body as { error?: string } | undefined;
    const deviceCode = ctx.oidc?.params?.device_code;
    if (typeof deviceCode !== 'string' || body?.error !== 'authorization_pending') return;
    const key = createHash('sha256').update(deviceCode).digest('base64url');
    const now = Date.now();
    const seen = polls.get(key);
    if (seen && now - seen.last < seen.interval * 1000 - 250) {
      seen.interval += 5;
      seen.last = now;
      ctx.body = { error: 'slow_down', error_description: `poll no more often than every ${seen.interval} s` };
      return;
    }
    polls.set(key, { last: now, interval: seen?.interval ?? pollInterval });
  });

  // The login form (the interaction step oidc-provider hands to the application).
  provider.use(async (ctx, next) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/.exec(ctx.path);
    if (!m) return next();
    ctx.set('cache-control', 'no-store');
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', 'this sign-in has expired; run `guard-aws login` again');
      return;
    }
    if (details.uid !== m[1]) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', 'interaction mismatch');
      return;
    }
    const finish = async (result: Record<string, unknown>) => {
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.redirect(to);
      ctx.status = 303;
    };

    if (ctx.method === 'GET' && !m[2]) {
      if (details.prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage(details.uid);
        return;
      }
      if (details.prompt.name === 'consent') {
        // guard-aws's own clients are first-party: consent is implied by logging in, so the grant is recorded
        // without a second page (the pattern oidc-provider documents for first-party clients).
        const accountId = details.session?.accountId;
        const cid = String(details.params.client_id);
        if (!accountId) throw new Error('consent without a session');
        const grant = details.grantId ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId: cid })) : new provider.Grant({ accountId, clientId: cid });
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
        if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
        const grantId = await grant.save();
        await finish({ consent: { grantId } });
        return;
      }
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('invalid_request', `unsupported prompt ${details.prompt.name}`);
      return;
    }

    if (ctx.method === 'POST' && m[2] === '/abort') {
      await finish({ error: 'access_denied', error_description: 'End-User aborted the sign-in' });
      return;
    }

    if (ctx.method === 'POST' && m[2] === '/login' && details.prompt.name === 'login') {
      let form: URLSearchParams;
      try {
        form = await readForm(ctx.req);
      } catch {
        ctx.status = 413;
        return;
      }
      const username = form.get('username') ?? '';
      const user = usersByName.get(username);
      // Always run the comparison so an unknown user costs the same as a wrong password.
      const ok = passwordMatches(form.get('password') ?? '', user?.password ?? randomBytes(16).toString('hex')) && !!user;
      if (!ok) {
        log(`idp: failed login for ${JSON.stringify(username.slice(0, 64))}`);
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage(details.uid, 'Wrong username or password.', username);
        return;
      }
      log(`idp: ${user!.username} logged in`);
      await finish({ login: { accountId: user!.username } });
      return;
    }
    ctx.status = 405;
  });

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
