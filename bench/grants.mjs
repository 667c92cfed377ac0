#!/usr/bin/env node
// Broker grants per second with 50 concurrent callers, against direct STS AssumeRole calls to the same moto_server
// at the same concurrency (the baseline: what the broker adds on top of STS itself). Target ratio ≥ 0.8.
//
// Everything real and on loopback: moto_server as STS, the broker (hono on @hono/node-server) with SQLite, real
// ES256 tokens verified against a key set, the real parser and policies when they are built into dist/.
// Bounded: a fixed number of requests per round (GRANTS_BENCH_N, default 600), three alternating rounds, and a
// hard time limit. Usage: npm run build && node bench/grants.mjs
import { Agent, request } from 'node:http';

import { dist, loadCore } from './lib/core.mjs';
import { ACCOUNT, ROLE_ARN, startBenchBroker } from './lib/stack.mjs';
const N = Number(process.env.GRANTS_BENCH_N ?? 600);
const CONCURRENCY = 50;
const ROUNDS = 3;
const HARD_LIMIT_MS = 180_000;

const hardStop = setTimeout(() => {
  console.error('grants bench: hard time limit reached');
  process.exit(2);
}, HARD_LIMIT_MS);
hardStop.unref();

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
  const { AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const { buildSessionPolicy } = await dist('broker/session-policy.js');
  const { parse } = await loadCore();
  const { broker, token, core, stsClient, close } = await startBenchBroker({ name: 'grants', cachingVerify: true });
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
  const direct = stsClient();
  const invocation = parse(argv, { account: ACCOUNT, region: 'us-east-1' });
  const policy = buildSessionPolicy(invocation.permissions, { resourceAccounts: [ACCOUNT], invocation });
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
    // CPU of this process (broker, its STS client, and the callers' HTTP) per request, for both paths: the
    // difference is what the broker's own work costs per grant (moto runs in another process, counted in neither).
    let cpuBase = 0;
    let cpuGrant = 0;
    for (let r = 0; r < ROUNDS; r++) {
      let c0 = process.cpuUsage();
      base.push(await run(assume));
      let c = process.cpuUsage(c0);
      cpuBase += c.user + c.system;
      c0 = process.cpuUsage();
      guarded.push(await run(grant));
      c = process.cpuUsage(c0);
      cpuGrant += c.user + c.system;
    }
    const perBase = cpuBase / 1000 / (ROUNDS * N);
    const perGrant = cpuGrant / 1000 / (ROUNDS * N);
    const b = median(base);
    const g = median(guarded);
    console.log(`core: ${core}`);
    console.log(`concurrency ${CONCURRENCY}, ${N} requests per round, ${ROUNDS} rounds (median shown)`);
    console.log(`direct AssumeRole to moto : ${b.toFixed(1)} /s   (rounds: ${base.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`broker grants             : ${g.toFixed(1)} /s   (rounds: ${guarded.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`ratio broker/direct       : ${(g / b).toFixed(3)} (target >= 0.8) ${g / b >= 0.8 ? 'OK' : 'BELOW TARGET'}`);
    console.log(`CPU per request (this process): grant ${perGrant.toFixed(2)} ms, direct AssumeRole ${perBase.toFixed(2)} ms; the broker's own work ≈ ${(perGrant - perBase).toFixed(2)} ms per grant`);
    const { report } = await import('./lib/report.mjs');
    report({
      name: 'grants',
      measures: `broker grants vs direct AssumeRole, ${CONCURRENCY} concurrent callers, same moto`,
      figure: `${(g / b).toFixed(2)} (${g.toFixed(0)} grants/s; ${perGrant.toFixed(2)} CPU-ms per grant)`,
      baseline: `direct AssumeRole: ${b.toFixed(0)} /s (${perBase.toFixed(2)} CPU-ms each)`,
      target: '≥ 0.8',
      met: g / b >= 0.8,
    });
  } finally {
    direct.destroy();
    agent.destroy();
    await close();
  }
}

main().catch((e) => {
  console.error(`grants bench failed: ${e?.stack ?? e}`);
  process.exitCode = 1;
});
