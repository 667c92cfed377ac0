#!/usr/bin/env node
// Broker grants per second with 50 concurrent callers, against direct STS AssumeRole calls to the same moto_server
// at the same concurrency (the baseline: what the broker adds on top of STS itself). Target ratio ≥ 0.8.
//
// Everything real and on loopback: moto_server as STS, the broker (hono on @hono/node-server) with SQLite, real
// ES256 tokens verified against a key set, the real parser and policies when they are built into dist/.
// Bounded: a fixed number of requests per round (GRANTS_BENCH_N, default 600), three alternating rounds, and a
// hard time limit. Usage: npm run build && node bench/grants.mjs
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { dist, loadCore, root } from './lib/core.mjs';
const N = Number(process.env.GRANTS_BENCH_N ?? 600);
const CONCURRENCY = 50;
const ROUNDS = 3;
const HARD_LIMIT_MS = 180_000;
const ACCOUNT = '123456789012';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/guard-bench`;

const hardStop = setTimeout(() => {
  console.error('grants bench: hard time limit reached');
  process.exit(2);
}, HARD_LIMIT_MS);
hardStop.unref();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startMoto() {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).status < 500) break;
    } catch {}
    if (Date.now() > deadline) throw new Error('moto_server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { endpoint, stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))) };
}

/** Runs `task` N times with CONCURRENCY workers; returns operations per second. */
async function run(task, n = N) {
  let next = 0;
  let failures = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        try {
          await task();
        } catch (e) {
          failures++;
          if (failures === 1) console.error(`grants bench: a request failed: ${e?.message ?? e}`);
        }
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  if (failures) throw new Error(`${failures} of ${n} requests failed`);
  return n / secs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const { SignJWT, exportJWK, generateKeyPair } = await import('jose');
  const { startBroker } = await dist('broker/server.js');
  const { brokerConfigFrom } = await dist('broker/config.js');
  const { openSqliteStore } = await dist('store/sqlite.js');
  const { createTokenVerifier } = await dist('auth/verify.js');
  const { cachingVerifier } = await dist('broker/verify-cache.js');
  const { buildSessionPolicy } = await dist('broker/session-policy.js');
  const { silentLog } = await dist('broker/log.js');

  const { parse, decide, core } = await loadCore();

  const dir = mkdtempSync(join(tmpdir(), 'guard-grants-bench-'));
  const moto = await startMoto();
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'b1', alg: 'ES256' };
  const issuer = 'https://idp.bench.invalid';
  const config = brokerConfigFrom({
    listen: { host: '127.0.0.1', port: 0 },
    issuer,
    audience: 'guard-aws',
    clientId: 'guard-aws-cli',
    policies: [join(root, 'policies/default.yaml')],
    storage: { sqlite: join(dir, 'broker.db') },
    targets: [{ name: 'bench', roleArn: ROLE_ARN, region: 'us-east-1', endpoint: moto.endpoint }],
  });
  const stsFactory = () => new STSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
  const broker = await startBroker(config, {
    store: openSqliteStore({ path: config.storage.sqlite }),
    // As in production (src/broker/wiring.ts): the real verifier behind the short verification cache.
    verify: cachingVerifier(createTokenVerifier({ issuer, audience: 'guard-aws', jwks: { keys: [jwk] }, algorithms: ['ES256'] })),
    parse,
    decide,
    createStsClient: stsFactory,
    log: silentLog,
  });
  const token = await new SignJWT({ groups: ['developers'] })
    .setProtectedHeader({ alg: 'ES256', kid: 'b1' })
    .setIssuer(issuer)
    .setAudience('guard-aws')
    .setSubject('bench@example.com')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(keys.privateKey);
  const argv = ['sts', 'get-caller-identity'];
  const body = JSON.stringify({ argv, transcriptKey: Buffer.alloc(32, 1).toString('base64url') });
  // Callers: plain node:http with keep-alive, one connection per caller (what 50 guard-aws processes would do).
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const url = new URL(`${broker.url}/v1/grants`);
  const grant = () =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`broker answered ${res.statusCode}: ${Buffer.concat(chunks)}`))));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // The baseline sends what the broker sends: same role, policy, names, tags, duration.
  const direct = stsFactory();
  const policy = buildSessionPolicy(parse(argv, { account: ACCOUNT, region: 'us-east-1' }).permissions, { resourceAccounts: [ACCOUNT] });
  let i = 0;
  const assume = async () => {
    const id = `grt_${String(i++).padStart(22, '0')}`;
    await direct.send(
      new AssumeRoleCommand({
        RoleArn: ROLE_ARN,
        RoleSessionName: `bench@example.com.${id}`,
        SourceIdentity: 'bench@example.com',
        Policy: policy,
        DurationSeconds: 900,
        Tags: [{ Key: 'guard-aws:grant', Value: id }],
      }),
    );
  };

  try {
    // Warm both paths at full concurrency (JIT, connection pools, SQLite page cache, moto's first-call imports).
    await run(assume, 200);
    await run(grant, 200);
    const base = [];
    const guarded = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await run(assume));
      guarded.push(await run(grant));
    }
    const b = median(base);
    const g = median(guarded);
    console.log(`core: ${core}`);
    console.log(`concurrency ${CONCURRENCY}, ${N} requests per round, ${ROUNDS} rounds (median shown)`);
    console.log(`direct AssumeRole to moto : ${b.toFixed(1)} /s   (rounds: ${base.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`broker grants             : ${g.toFixed(1)} /s   (rounds: ${guarded.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`ratio broker/direct       : ${(g / b).toFixed(3)} (target >= 0.8) ${g / b >= 0.8 ? 'OK' : 'BELOW TARGET'}`);
  } finally {
    direct.destroy();
    agent.destroy();
    await broker.close();
    await moto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`grants bench failed: ${e?.stack ?? e}`);
  process.exitCode = 1;
});
