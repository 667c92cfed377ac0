import * as client from 'openid-client';
import type { IoHost } from '../io/host.js';
import { openIdpClient, oauthReason } from './oidc.js';
import { parseStoredLogin } from './stored-login.js';
import type { TokenStore } from './token-store.js';

export interface LogoutResult {
  /** A login was stored and has been forgotten. */
  forgotten: boolean;
  /** The refresh token was revoked at the identity provider (RFC 7009). */
  revoked: boolean;
  subject?: string;
}

/**
 * Forget the stored login for a broker and, where the IdP offers a revocation endpoint, revoke its refresh token
 * first (RFC 7009 §2; revoking the refresh token ends the grant, so no new access tokens can be minted from it).
 * A failed revocation does not stop the local forget: logging out must always work offline.
 */
export async function logout(opts: { brokerUrl: string; store: TokenStore; env: NodeJS.ProcessEnv; host: IoHost; fetch?: typeof fetch }): Promise<LogoutResult> {
  const f = opts.fetch ?? fetch;
  const stored = parseStoredLogin(await opts.store.get(opts.brokerUrl));
  let revoked = false;
  if (stored?.refreshToken) {
    try {
      const config = await openIdpClient(stored.issuer, stored.clientId, f, opts.env);
      if (config.serverMetadata().revocation_endpoint) {
        await client.tokenRevocation(config, stored.refreshToken, { token_type_hint: 'refresh_token' });
        revoked = true;
      }
    } catch (e) {
      opts.host.warn(`could not revoke the login at the identity provider (${oauthReason(e)}); forgetting it locally anyway`);
    }
  }
  await opts.store.delete(opts.brokerUrl);
  return { forgotten: stored !== undefined, revoked, ...(stored ? { subject: stored.subject } : {}) };
}
