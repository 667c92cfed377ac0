/**
 * A workload (CI job, agent) obtains its own access token from the embedded IdP with the client credentials grant
 * (RFC 6749 §4.4), asking for the broker as the resource (RFC 8707 §2) so the JWT's `aud` is the broker's audience.
 */
export interface WorkloadTokenRequest {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  fetch?: typeof fetch;
}

export async function mintWorkloadToken(req: WorkloadTokenRequest): Promise<{ accessToken: string; expiresIn: number }> {
  const f = req.fetch ?? fetch;
  // RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before base64.
  const basic = Buffer.from(`${encodeURIComponent(req.clientId)}:${encodeURIComponent(req.clientSecret)}`).toString('base64');
  const res = await f(req.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: req.audience }).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
  if (!res.ok || typeof body.access_token !== 'string') {
    throw new Error(`workload token request failed: HTTP ${res.status} ${body.error ?? ''}`.trim());
  }
  return { accessToken: body.access_token, expiresIn: body.expires_in ?? 0 };
}
