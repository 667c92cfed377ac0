#!/usr/bin/env node
// Warm CLI pool (issue 16): calls the broker runs, forked from a supervisor that imported the CLI once.
//  1. A guarded remote `guard-aws sts get-caller-identity` (the real client process, real broker over HTTP, real
//     OIDC token, the warm pool) vs plain local `aws sts get-caller-identity` against the same moto, whole process
//     each, alternating; target ≤ 0.6. The same guarded call without the pool is printed alongside.
//  2. Remote runs per second with 20 concurrent callers (HTTP API), with and without the pool.
// Three embedded stacks as `guard-aws dev` runs them: calls on the broker without the pool, with it; the plain aws
// is pointed at the first one's moto.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startEmbedded } = await import(join(root, 'dist/dev/embedded.js'));
const { mintWorkloadToken } = await import(join(root, 'dist/idp/workload.js'));
const { defaultPolicyPath } = await import(join(root, 'dist/policy/paths.js'));
const { report } = await import('./lib/report.mjs');

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const CONCURRENT = 20;
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-bench-warm-'));
const quiet = { info() {}, warn() {}, error() {}, result() {}, status() {}, interactive: false, color: false };

async function stack(name, warm) {
  const e = await startEmbedded({
    host: quiet,
    dataDir: join(dir, name),
    policies: [defaultPolicyPath()],
    brokerPort: 0,
    idpPort: 0,
    startMoto: true,
    roleArn: 'arn:aws:iam::123456789012:role/bench',
    region: 'us-east-1',
    execution: { people: 'broker', workloads: 'broker', maxConcurrent: 64, warmPool: { enabled: warm, size: 1 } },
  });
  const { accessToken } = await mintWorkloadToken({
    tokenEndpoint: e.workload.tokenEndpoint,
    clientId: e.workload.clientId,
    clientSecret: e.workload.clientSecret,
    audience: e.workload.audience,
  });
  const env = {
    PATH: process.env.PATH,
    HOME: join(dir, name, 'home'),
    XDG_CONFIG_HOME: join(dir, name, 'config'),
    XDG_STATE_HOME: join(dir, name, 'state'),
    XDG_CACHE_HOME: join(dir, name, 'cache'),
    GUARD_AWS_BROKER: e.brokerUrl,
    GUARD_AWS_TOKEN: accessToken,
    CI: 'true',
  };
  return { e, token: accessToken, env };
}

function timed(command, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(command, args, { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b) => (err += b));
    c.on('error', reject);
    c.on('close', (code) => {
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.trim()}`));
      else resolve(performance.now() - t0);
    });
  });
}
const guarded = (s) => timed(process.execPath, [join(root, 'bin/guard-aws.js'), 'sts', 'get-caller-identity'], s.env);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function throughput(s) {
  const { streamRun } = await import(join(root, 'dist/api/run-client.js'));
  const { Writable } = await import('node:stream');
  const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });
  const one = async () => {
    const res = await fetch(`${s.e.brokerUrl}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ argv: ['sts', 'get-caller-identity'] }) });
    const a = await res.json();
    if (res.status !== 201) throw new Error(`POST /v1/runs: ${res.status} ${JSON.stringify(a)}`);
    const x = await streamRun({ baseUrl: s.e.brokerUrl, token: s.token, runId: a.runId, stdout: sink(), stderr: sink() });
    if (x.exitCode !== 0) throw new Error(`exit ${x.exitCode}`);
  };
  const TOTAL = CONCURRENT * 3;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT }, async () => {
    while (next < TOTAL) {
      next++;
      await one();
    }
  }));
  return TOTAL / ((performance.now() - t0) / 1000);
}

const fresh = await stack('fresh', false);
const warm = await stack('warm', true);
try {
  const plainEnv = {
    PATH: process.env.PATH,
    HOME: join(dir, 'plain'),
    AWS_ACCESS_KEY_ID: 'AKIABENCHEXAMPLE0001',
    AWS_SECRET_ACCESS_KEY: 'x',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  const plain = () => timed('aws', ['--endpoint-url', fresh.e.awsEndpoint, 'sts', 'get-caller-identity'], plainEnv);
  // Warm-up: page cache, the pool's supervisor ready, token caches.
  for (let i = 0; i < 3; i++) {
    await plain();
    await guarded(fresh);
    await guarded(warm);
  }
  const p = [];
  const w = [];
  const f = [];
  for (let i = 0; i < RUNS; i++) {
    p.push(await plain());
    w.push(await guarded(warm));
    f.push(await guarded(fresh));
  }
  const [mp, mw, mf] = [median(p), median(w), median(f)];
  console.log(`sts get-caller-identity, ${RUNS} runs each, alternating: plain local aws ${mp.toFixed(0)} ms; guarded remote with the warm pool ${mw.toFixed(0)} ms (${(mw / mp).toFixed(2)}×), without ${mf.toFixed(0)} ms (${(mf / mp).toFixed(2)}×)`);
  report({
    name: 'warm-pool',
    measures: 'guarded remote `sts get-caller-identity` with the warm pool (client process, HTTP, broker) vs plain local `aws`, whole process, alternating',
    figure: `${(mw / mp).toFixed(2)} (${mw.toFixed(0)} ms; without the pool ${(mf / mp).toFixed(2)}, ${mf.toFixed(0)} ms)`,
    baseline: `plain local aws: ${mp.toFixed(0)} ms`,
    target: '≤ 0.6',
    met: mw / mp <= 0.6,
  });

  const rf = await throughput(fresh);
  const rw = await throughput(warm);
  console.log(`${CONCURRENT * 3} remote runs, ${CONCURRENT} at a time: ${rw.toFixed(1)} runs/s with the pool, ${rf.toFixed(1)} runs/s without (${(rw / rf).toFixed(2)}×)`);
  report({
    name: 'warm-pool-concurrent',
    measures: `remote \`sts get-caller-identity\` runs/s, ${CONCURRENT} concurrent callers (HTTP API), with the warm pool`,
    figure: `${rw.toFixed(1)} runs/s (${(rw / rf).toFixed(2)}×)`,
    baseline: `without the pool: ${rf.toFixed(1)} runs/s`,
    target: '— (reported)',
    met: null,
  });
} finally {
  await fresh.e.close();
  await warm.e.close();
  rmSync(dir, { recursive: true, force: true });
}
