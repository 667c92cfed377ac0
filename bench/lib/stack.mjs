// A broker for benchmarks: real SQLite, real HTTP, the real decision core, STS on a moto_server child (the
// project's own startMotoServer), and bearer tokens signed by a local ES256 key served as a fixed JWKS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dist, loadCore, root } from './core.mjs';

export const ACCOUNT = '123456789012';
export const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/guard-bench`;

/**
 * `store`: `{ postgres: { url } }` runs the broker on PostgreSQL (bench/store.mjs); default a SQLite file. Several
 * brokers on one database (the multi-broker figure) call this once per broker with the same store.
 * @param {{ name: string, cachingVerify?: boolean, routes?: (deps: object) => unknown[], store?: object }} o
 */
export async function startBenchBroker(o) {
  const { SignJWT, exportJWK, generateKeyPair } = await import('jose');
  const { STSClient } = await import('@aws-sdk/client-sts');
  const { startMotoServer } = await dist('dev/moto.js');
  const { startBroker } = await dist('broker/server.js');
  const { brokerConfigFrom } = await dist('broker/config.js');
  const { openStore } = await dist('broker/storage.js');
  const { createTokenVerifier } = await dist('auth/verify.js');
  const { cachingVerifier } = await dist('broker/verify-cache.js');
  const { silentLog } = await dist('broker/log.js');
  const { parse, decide, core } = await loadCore();

  const dir = mkdtempSync(join(tmpdir(), `guard-${o.name}-bench-`));
  const moto = await startMotoServer();
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'b1', alg: 'ES256' };
  const issuer = 'https://idp.bench.invalid';
  const config = brokerConfigFrom({
    listen: { host: '127.0.0.1', port: 0 },
    issuer,
    audience: 'guard-aws',
    clientId: 'guard-aws-cli',
    policies: [join(root, 'policies/default.yaml')],
    storage: o.store?.postgres ? { postgres: o.store.postgres, auditKeyFile: join(dir, 'audit-key.pem') } : { sqlite: join(dir, 'broker.db') },
    // These benchmarks measure the grant path (credentials to the caller): every call runs locally.
    execution: { people: 'local', workloads: 'local' },
    // On PostgreSQL transcript bodies need a location every broker shares (src/broker/config.ts).
    ...(o.store?.postgres ? { transcripts: { store: { type: 'file', dir: join(dir, 'bodies') } } } : {}),
    targets: [{ name: 'bench', roleArn: ROLE_ARN, region: 'us-east-1', endpoint: moto.endpoint, default: true }],
  });
  const stsClient = () =>
    new STSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
  const verifier = createTokenVerifier({ issuer, audience: 'guard-aws', jwks: { keys: [jwk] }, algorithms: ['ES256'] });
  const broker = await startBroker(config, {
    store: await openStore(o.store ?? { sqlite: config.storage.sqlite }),
    // As in production (src/broker/wiring.ts) when asked: the real verifier behind the short verification cache.
    verify: o.cachingVerify ? cachingVerifier(verifier) : verifier,
    parse,
    decide,
    createStsClient: stsClient,
    log: silentLog,
    routes: (await o.routes?.()) ?? [],
  });
  const token = await new SignJWT({ groups: ['developers'] })
    .setProtectedHeader({ alg: 'ES256', kid: 'b1' })
    .setIssuer(issuer)
    .setAudience('guard-aws')
    .setSubject('bench@example.com')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(keys.privateKey);
  return {
    broker,
    moto,
    dir,
    token,
    core,
    stsClient,
    async close() {
      await broker.close();
      await moto.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
