import * as client from 'openid-client';
import { openIdpClient, oauthReason } from '../auth/oidc.js';
import { GuardError } from '../errors.js';

/**
 * The console's sign-in: OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1, RFC 7636, S256) at the broker's
 * own issuer, as a public client. `state` (RFC 6749 §10.12) and the PKCE verifier live in a short-lived cookie on
 * the browser that started the sign-in; the code is useless without the verifier, so a code intercepted on the
 * redirect opens nothing (RFC 7636 §1). The resulting access token is then verified by the broker's own verifier —
 * the same audience, issuer, signature and groups checks as every API call.
 */
export interface LoginStart {
  url: string;
  /** Cookie value: state and verifier, read back on the callback. */
  cookie: string;
}

export interface ConsoleLogin {
  start(o: { next: string; forceLogin: boolean }): Promise<LoginStart>;
  /** Exchanges the code in `callbackUrl` for an access token; returns it and where to go next. */
  finish(callbackUrl: URL, cookie: string | undefined): Promise<{ accessToken: string; next: string }>;
}

export interface ConsoleLoginOptions {
  issuer: string;
  clientId: string;
  redirectUri: string;
  /** RFC 8707 resource indicator: the broker's audience, so the token is minted for the broker. */
  audience: string;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

const safeNext = (n: string | undefined): string => (n && /^\/ui\/[A-Za-z0-9_\-/?=&.%]*$/.test(n) && !n.startsWith('/ui//') ? n : '/ui/');

export function consoleLogin(o: ConsoleLoginOptions): ConsoleLogin {
  let config: Promise<client.Configuration> | undefined;
  const cfg = () => {
    // A failed discovery is retried on the next sign-in rather than remembered.
    config ??= openIdpClient(o.issuer, o.clientId, o.fetch ?? fetch, o.env ?? process.env).catch((e) => {
      config = undefined;
      throw e;
    });
    return config;
  };
  return {
    async start({ next, forceLogin }) {
      const c = await cfg();
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(c, {
        redirect_uri: o.redirectUri,
        scope: 'openid',
        response_type: 'code',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        resource: o.audience,
        ...(forceLogin ? { prompt: 'login' } : {}),
      });
      return { url: url.href, cookie: Buffer.from(JSON.stringify({ state, verifier, next: safeNext(next) })).toString('base64url') };
    },
    async finish(callbackUrl, cookie) {
      let saved: { state: string; verifier: string; next: string };
      try {
        saved = JSON.parse(Buffer.from(cookie ?? '', 'base64url').toString('utf8')) as typeof saved;
        if (typeof saved.state !== 'string' || typeof saved.verifier !== 'string') throw new Error('shape');
      } catch {
        throw new GuardError('auth_rejected', 'this sign-in was not started in this browser (or took too long); start again');
      }
      const c = await cfg();
      let tokens: client.TokenEndpointResponse;
      try {
        tokens = await client.authorizationCodeGrant(c, callbackUrl, { pkceCodeVerifier: saved.verifier, expectedState: saved.state, idTokenExpected: true }, { resource: o.audience });
      } catch (e) {
        throw new GuardError('auth_rejected', `the identity provider did not complete the sign-in: ${oauthReason(e)}`);
      }
      return { accessToken: tokens.access_token, next: safeNext(saved.next) };
    },
  };
}
