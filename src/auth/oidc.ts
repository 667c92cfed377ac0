import * as client from 'openid-client';
import { GuardError } from '../errors.js';
import { requireSecureUrl } from '../config/urls.js';

/**
 * An openid-client Configuration for guard-aws's public CLI client at `issuer`, discovered from the issuer's
 * metadata (OIDC Discovery §4; openid-client checks the document's issuer matches). All HTTP goes through the
 * injected fetch.
 */
export async function openIdpClient(issuer: string, clientId: string, f: typeof fetch, env: NodeJS.ProcessEnv): Promise<client.Configuration> {
  const url = requireSecureUrl(issuer, 'identity provider issuer', env);
  try {
    return await client.discovery(url, clientId, { token_endpoint_auth_method: 'none' }, client.None(), {
      [client.customFetch]: (u, init) => f(u, init as RequestInit),
      execute: url.protocol === 'http:' ? [client.allowInsecureRequests] : [],
      timeout: 15,
    });
  } catch (e) {
    throw new GuardError('idp_unreachable', `cannot use the identity provider at ${issuer}: ${oauthReason(e)}`, { cause: e });
  }
}

/** A short, secret-free reason for an openid-client / oauth4webapi failure. */
export function oauthReason(e: unknown): string {
  if (e instanceof client.ResponseBodyError) return e.error_description ? `${e.error}: ${e.error_description}` : e.error;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
