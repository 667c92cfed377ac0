import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';

/** A private signing JWK with the fields oidc-provider's keystore needs (kid, alg, use). */
export type SigningJwk = JWK & { kid: string; alg: string; use: 'sig' };

/**
 * A fresh signing key, made at start so no key is ever committed or reused between runs. RS256 because every
 * OIDC relying party supports it (OIDC Core §15.1); tests pass other algorithms to prove the verifier's allow-list.
 */
export async function generateSigningKey(alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA' = 'RS256'): Promise<SigningJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg, use: 'sig' };
}
