import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

/**
 * A minimal token issuer for broker tests: real keys, real signatures, a JWKS served over real HTTP on loopback,
 * and a second "rogue" key to forge tokens with. The broker verifies with the real src/auth/verify.ts.
 */
export interface TestIdp {
  issuer: string;
  jwksUri: string;
  audience: string;
  sign(claims: Record<string, unknown>, opts?: { expiresIn?: string | number; audience?: string; issuer?: string; alg?: string; key?: 'good' | 'rogue'; notBefore?: string | number }): Promise<string>;
  jwksRequests(): number;
  close(): Promise<void>;
}

export async function startTestIdp(audience = 'guard-aws'): Promise<TestIdp> {
  const good = await generateKeyPair('ES256', { extractable: true });
  const rogue = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(good.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let hits = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/jwks') {
      hits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = base;
  const jwksUri = `${base}/jwks`;

  return {
    issuer,
    jwksUri,
    audience,
    async sign(claims, opts = {}) {
      const key = opts.key === 'rogue' ? rogue.privateKey : good.privateKey;
      let jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: 'k1' })
        .setIssuer(opts.issuer ?? issuer)
        .setAudience(opts.audience ?? audience)
        .setIssuedAt()
        .setExpirationTime(opts.expiresIn ?? '5m');
      if (opts.notBefore !== undefined) jwt = jwt.setNotBefore(opts.notBefore);
      return jwt.sign(key);
    },
    jwksRequests: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** An unsigned token (`alg: none`, RFC 7519 §6): must always be refused. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}
