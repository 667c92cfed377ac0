import type { KoaContext, errors as ErrorsType } from 'oidc-provider';
import { confirmPage, errorPage, successPage, userCodePage } from './pages.js';
import type { IdpUser, IdpWorkload } from './users.js';
import type { SigningJwk } from './keys.js';

/**
 * The oidc-provider configuration of the embedded identity provider: its clients (the CLI's public device-flow
 * client and the confidential workload clients), the claims in access tokens, the device flow's HTML pages, resource
 * indicators pinned to the broker's audience, and lifetimes. Pure data and callbacks; src/idp/server.ts starts it.
 */
export interface ProviderSettings {
  issuer: string;
  audience: string;
  clientId: string;
  groupsClaim: string;
  usersByName: ReadonlyMap<string, IdpUser>;
  workloads: readonly IdpWorkload[];
  /** The broker's web console (authorization code + PKCE), when it has redirect URIs to register. */
  console?: { clientId: string; redirectUris: string[] };
  signingKeys: SigningJwk[];
  cookieKeys: string[];
  adapter: unknown;
  errors: typeof ErrorsType;
  ttl: { access: number; refresh: number; device: number };
}

export function providerConfiguration(s: ProviderSettings): Record<string, unknown> {
  const { issuer, audience, usersByName, groupsClaim, errors } = s;
  const workloadsById = new Map(s.workloads.map((w) => [w.clientId, w]));
  const signingAlg = s.signingKeys[0]!.alg;
  const deviceAction = new URL('/device', issuer).href;
  const xsrfOf = (ctx: KoaContext) => (ctx.oidc as { session: { state: { secret: string } } }).session.state.secret;

  return {
    adapter: s.adapter,
    jwks: { keys: s.signingKeys },
    cookies: { keys: s.cookieKeys },
    clients: [
      {
        // The CLI is a public client on people's machines: no secret, device flow + refresh (RFC 8628 §3.4, RFC 6749 §6).
        client_id: s.clientId,
        client_name: 'guard-aws',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        application_type: 'native',
      },
      // The broker's web console: a public browser client, authorization code with PKCE only (RFC 7636; OAuth 2.0
      // Security BCP, RFC 9700 §2.1.1), redirecting to exactly the registered /ui/callback URIs.
      ...(s.console
        ? [
            {
              client_id: s.console.clientId,
              client_name: 'guard-aws console',
              token_endpoint_auth_method: 'none',
              grant_types: ['authorization_code'],
              response_types: ['code'],
              redirect_uris: s.console.redirectUris,
              application_type: 'web',
            },
          ]
        : []),
      ...s.workloads.map((w) => ({
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
          let message: string | undefined;
          if (err && (err.userCode || err.name === 'NoCodeError')) message = 'That code is not valid or has expired. Try again.';
          else if (err && err.name === 'AbortedError') message = 'The sign-in was cancelled.';
          else if (err) message = 'The sign-in could not be completed.';
          ctx.type = 'html';
          ctx.body = userCodePage(deviceAction, xsrfOf(ctx), message);
        },
        userCodeConfirmSource: async (ctx: KoaContext, _form: string, client: { clientName?: string; clientId: string }, _info: unknown, userCode: string) => {
          ctx.type = 'html';
          ctx.body = confirmPage(deviceAction, xsrfOf(ctx), userCode, client.clientName ?? client.clientId);
        },
        successSource: async (ctx: KoaContext) => {
          // The page says who signed in, so someone at a shared browser sees at once if it was the wrong account.
          const accountId = (ctx.oidc as { session?: { accountId?: string } } | undefined)?.session?.accountId;
          const user = accountId ? usersByName.get(accountId) : undefined;
          ctx.type = 'html';
          ctx.body = successPage(user ? { username: user.username, ...(user.name ? { name: user.name } : {}) } : undefined);
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
            accessTokenTTL: s.ttl.access,
            // RFC 9068 JWT access tokens, so the broker verifies them offline against the JWKS.
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
    interactions: { url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: s.ttl.access,
      ClientCredentials: s.ttl.access,
      DeviceCode: s.ttl.device,
      IdToken: s.ttl.access,
      RefreshToken: s.ttl.refresh,
      Interaction: 10 * 60,
      Session: s.ttl.refresh,
      Grant: s.ttl.refresh,
    },
    clientBasedCORS: () => false,
    renderError: async (ctx: KoaContext, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  };
}
