/**
 * Test helpers around the real embedded identity provider (oidc-provider on a loopback port).
 * - startIdp / DEFAULT_USERS: re-exported from src/idp.
 * - workloadToken(idp): a client-credentials JWT for the default workload client (groups ["ci"]).
 * - userToken(idp, username): runs a whole device flow over HTTP (device authorization, HTML login form, token
 *   request) and returns the user's tokens, without the CLI.
 */
import { startIdp, mintWorkloadToken, DEFAULT_USERS, type StartedIdp } from '../../src/idp/index.js';
import { completeDeviceLogin } from './device-login.js';

export { startIdp, DEFAULT_USERS, mintWorkloadToken };
export type { StartedIdp };

export async function workloadToken(idp: StartedIdp, clientId?: string): Promise<string> {
  const w = clientId ? idp.workloads.find((x) => x.clientId === clientId) : idp.workloads[0];
  if (!w) throw new Error(`no workload client ${clientId}`);
  const { accessToken } = await mintWorkloadToken({ tokenEndpoint: idp.tokenEndpoint, clientId: w.clientId, clientSecret: w.clientSecret, audience: idp.audience });
  return accessToken;
}

export interface UserTokens {
  accessToken: string;
  refreshToken?: string | undefined;
  idToken?: string | undefined;
  expiresIn: number;
}

export async function userToken(idp: StartedIdp, username: string, password?: string): Promise<UserTokens> {
  const user = idp.users.find((u) => u.username === username);
  const pw = password ?? user?.password;
  if (pw === undefined) throw new Error(`unknown user ${username}`);
  const da = (await (
    await fetch(idp.deviceAuthorizationEndpoint, {
      method: 'POST',
      body: new URLSearchParams({ client_id: idp.clientId, scope: 'openid offline_access', resource: idp.audience }),
    })
  ).json()) as { device_code: string; user_code: string; verification_uri: string };
  const done = await completeDeviceLogin({ verificationUri: da.verification_uri, userCode: da.user_code, username, password: pw });
  if (!done.ok) throw new Error(`device login for ${username} did not succeed`);
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: idp.clientId,
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: da.device_code,
      resource: idp.audience,
    }),
  });
  const t = (await res.json()) as { access_token?: string; refresh_token?: string; id_token?: string; expires_in?: number; error?: string };
  if (!t.access_token) throw new Error(`token request failed: ${t.error}`);
  return { accessToken: t.access_token, refreshToken: t.refresh_token, idToken: t.id_token, expiresIn: t.expires_in ?? 0 };
}
