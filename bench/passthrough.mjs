#!/usr/bin/env node
// Whole-call overhead (issue 3): `guard-aws sts get-caller-identity` against plain `aws sts get-caller-identity`,
// same moto_server, whole process each, alternating runs. Prints both medians, the ratio (target ≤ 1.15) and the
// milliseconds guard-aws adds. The broker, identity provider and moto run in this process's embedded setup, as
// `guard-aws dev` runs them; the CLI authenticates with a workload token (client credentials).
//
// Baselines: plain `aws` as a user types it (first on PATH; here a pyenv shim) and the real aws script itself.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startEmbedded } = await import(join(root, 'dist/dev/embedded.js'));
const { mintWorkloadToken } = await import(join(root, 'dist/idp/workload.js'));
const { defaultPolicyPath } = await import(join(root, 'dist/policy/paths.js'));

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-bench-'));
const quiet = { info() {}, warn() {}, error() {}, result() {}, status() {}, interactive: false, color: false };
const e = await startEmbedded({
  host: quiet,
  dataDir: join(dir, 'data'),
  policies: [defaultPolicyPath()],
  brokerPort: 0,
  idpPort: 0,
  startMoto: true,
  roleArn: 'arn:aws:iam::123456789012:role/bench',
  region: 'us-east-1',
  // The local guarded run (credentials to the caller); remote runs are measured by bench/remote-run.mjs.
  execution: { people: 'local', workloads: 'local' },
});
const { accessToken } = await mintWorkloadToken({
  tokenEndpoint: e.workload.tokenEndpoint,
  clientId: e.workload.clientId,
  clientSecret: e.workload.clientSecret,
  audience: e.workload.audience,
});

const realAws = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' }).stdout?.trim() || 'aws';
const guardEnv = {
  PATH: process.env.PATH,
  HOME: join(dir, 'home'),
  XDG_CONFIG_HOME: join(dir, 'config'),
  XDG_STATE_HOME: join(dir, 'state'),
  XDG_CACHE_HOME: join(dir, 'cache'),
  GUARD_AWS_BROKER: e.brokerUrl,
  GUARD_AWS_TOKEN: accessToken,
  CI: 'true',
};
const plainEnv = {
  PATH: process.env.PATH,
  HOME: join(dir, 'plain-home'),
  AWS_ACCESS_KEY_ID: 'AKIABENCHEXAMPLE0001',
  AWS_SECRET_ACCESS_KEY: 'bench-secret',
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
};

function timed(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b) => (err += b));
    c.on('error', reject);
    c.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`));
      else resolve(performance.now() - t0);
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const guard = () => timed(process.execPath, [join(root, 'bin/guard-aws.js'), 'sts', 'get-caller-identity'], guardEnv);
const plain = () => timed('aws', ['--endpoint-url', e.awsEndpoint, 'sts', 'get-caller-identity'], plainEnv);
const script = () => timed(realAws, ['--endpoint-url', e.awsEndpoint, 'sts', 'get-caller-identity'], plainEnv);

try {
  // Warm-up: first runs pay for disk caches and guard-aws's one-time lookup of the real aws.
  await guard();
  await plain();
  await script();
  const g = [];
  const p = [];
  const r = [];
  for (let i = 0; i < RUNS; i++) {
    g.push(await guard());
    p.push(await plain());
    r.push(await script());
  }
  const mg = median(g);
  const mp = median(p);
  const mr = median(r);
  console.log(`runs: ${RUNS} each, alternating`);
  console.log(`plain aws (as typed, ${spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim()}): median ${mp.toFixed(0)} ms`);
  console.log(`plain aws (real script ${realAws}): median ${mr.toFixed(0)} ms`);
  console.log(`guard-aws sts get-caller-identity: median ${mg.toFixed(0)} ms`);
  console.log(`ratio vs aws as typed: ${(mg / mp).toFixed(3)} (target ≤ 1.15), adds ${(mg - mp).toFixed(0)} ms`);
  console.log(`ratio vs the real script: ${(mg / mr).toFixed(3)}, adds ${(mg - mr).toFixed(0)} ms`);
  const { report } = await import('./lib/report.mjs');
  report({
    name: 'passthrough',
    measures: '`guard-aws sts get-caller-identity` vs plain `aws`, whole process, alternating',
    figure: `${(mg / mp).toFixed(2)} (adds ${(mg - mp).toFixed(0)} ms)`,
    baseline: `plain aws: ${mp.toFixed(0)} ms (the real script: ${mr.toFixed(0)} ms)`,
    target: '≤ 1.15',
    met: mg / mp <= 1.15,
  });
} finally {
  await e.close();
  rmSync(dir, { recursive: true, force: true });
}
