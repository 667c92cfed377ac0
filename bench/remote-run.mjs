#!/usr/bin/env node
// Remote runs (issue 7): the broker runs aws itself and streams the masked output back.
//  1. `guard-aws sts get-caller-identity` run on the broker vs the same call run locally (credentials handed to the
//     client), whole CLI process each, alternating; target ratio ≤ 1.3.
//  2. Streaming BENCH_MB (default 500) MB through a remote `s3 cp s3://…/big -` (stdout frames, backpressure to
//     the caller) and a remote `s3 cp s3://…/big FILE` download (file frames); MB/s (target ≥ 50) and the
//     broker's peak RSS above its idle RSS (the broker runs in this process).
//  3. Runs per second with 20 concurrent callers (POST /v1/runs + start over HTTP, workload token).
// Two embedded stacks (broker, IdP, moto) as `guard-aws dev` runs them: one with every call local, one with
// every call on the broker.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startEmbedded } = await import(join(root, 'dist/dev/embedded.js'));
const { mintWorkloadToken } = await import(join(root, 'dist/idp/workload.js'));
const { defaultPolicyPath } = await import(join(root, 'dist/policy/paths.js'));
const { report } = await import('./lib/report.mjs');

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const MB = Number(process.env.BENCH_MB ?? 500);
const CONCURRENT = 20;
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-bench-remote-'));
const quiet = { info() {}, warn() {}, error() {}, result() {}, status() {}, interactive: false, color: false };

async function stack(name, execution) {
  const e = await startEmbedded({
    host: quiet,
    dataDir: join(dir, name),
    policies: [defaultPolicyPath()],
    brokerPort: 0,
    idpPort: 0,
    startMoto: true,
    roleArn: 'arn:aws:iam::123456789012:role/bench',
    region: 'us-east-1',
    execution: { people: execution, workloads: execution, maxConcurrent: 64 },
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

function timed(args, env, o = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [join(root, 'bin/guard-aws.js'), ...args], { env, cwd: o.cwd ?? dir, stdio: ['ignore', o.sink ? 'pipe' : 'ignore', 'pipe'] });
    let err = '';
    let bytes = 0;
    c.stderr.on('data', (b) => (err += b));
    c.stdout?.on('data', (b) => (bytes += b.length));
    c.on('error', reject);
    c.on('close', (code) => {
      if (code !== 0) reject(new Error(`guard-aws ${args.join(' ')} exited ${code}: ${err.trim()}`));
      else resolve({ ms: performance.now() - t0, bytes });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const local = await stack('local', 'local');
const remote = await stack('remote', 'broker');
try {
  // 1. Latency of one call.
  const args = ['sts', 'get-caller-identity'];
  await timed(args, local.env);
  await timed(args, remote.env);
  const l = [];
  const r = [];
  for (let i = 0; i < RUNS; i++) {
    l.push((await timed(args, local.env)).ms);
    r.push((await timed(args, remote.env)).ms);
  }
  const ml = median(l);
  const mr = median(r);
  console.log(`sts get-caller-identity, ${RUNS} runs each, alternating: local guarded ${ml.toFixed(0)} ms, remote ${mr.toFixed(0)} ms, ratio ${(mr / ml).toFixed(3)} (target ≤ 1.3)`);
  report({
    name: 'remote-run',
    measures: '`sts get-caller-identity` run on the broker vs run locally (both guarded), whole process, alternating',
    figure: `${(mr / ml).toFixed(2)} (${mr.toFixed(0)} ms)`,
    baseline: `local guarded run: ${ml.toFixed(0)} ms`,
    target: '≤ 1.3',
    met: mr / ml <= 1.3,
  });

  // 2. Streaming throughput and the broker's memory.
  const plainEnv = { PATH: process.env.PATH, HOME: join(dir, 'plain'), AWS_ACCESS_KEY_ID: 'AKIABENCHEXAMPLE0001', AWS_SECRET_ACCESS_KEY: 'x', AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const ep = ['--endpoint-url', remote.e.awsEndpoint];
  const big = join(dir, 'big.bin');
  spawnSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', `count=${MB}`], { stdio: 'ignore' });
  const mk = spawnSync('aws', [...ep, 's3', 'mb', 's3://bench-remote'], { env: plainEnv, encoding: 'utf8' });
  const put = spawnSync('aws', [...ep, 's3', 'cp', big, 's3://bench-remote/big.bin'], { env: plainEnv, encoding: 'utf8' });
  if (mk.status !== 0 || put.status !== 0) throw new Error(`fixture upload failed: ${mk.stderr}${put.stderr}`);
  rmSync(big);
  const stream = async (label, a, o) => {
    global.gc?.();
    const idle = process.memoryUsage().rss;
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const t = await timed(a, remote.env, o);
    clearInterval(sampler);
    const bytes = o.file ? statSync(o.file).size : t.bytes;
    const mbs = bytes / 2 ** 20 / (t.ms / 1000);
    const extra = (peak - idle) / 2 ** 20;
    console.log(`${label}: ${(bytes / 2 ** 20).toFixed(0)} MB in ${(t.ms / 1000).toFixed(1)} s = ${mbs.toFixed(0)} MB/s; broker RSS +${extra.toFixed(0)} MB over idle (${(idle / 2 ** 20).toFixed(0)} MB)`);
    return { mbs, extra, bytes };
  };
  // Baseline: plain aws reading the same object from the same moto, straight to a pipe.
  const p0 = performance.now();
  const plainRead = spawnSync('aws', [...ep, 's3', 'cp', 's3://bench-remote/big.bin', '-'], { env: plainEnv, maxBuffer: 2 * MB * 2 ** 20 });
  const plainMbs = (plainRead.stdout?.length ?? 0) / 2 ** 20 / ((performance.now() - p0) / 1000);
  console.log(`plain aws s3 cp … - from the same moto: ${plainMbs.toFixed(0)} MB/s`);
  const s1 = await stream(`remote s3 cp … - (stdout frames)`, ['s3', 'cp', 's3://bench-remote/big.bin', '-'], { sink: true });
  const s2 = await stream(`remote s3 cp … FILE (file frames)`, ['s3', 'cp', 's3://bench-remote/big.bin', 'down.bin'], { file: join(dir, 'down.bin') });
  rmSync(join(dir, 'down.bin'), { force: true });
  report({
    name: 'remote-run-stream',
    measures: `${MB} MB through a remote \`s3 cp\` download (to stdout; to a file); broker RSS above idle`,
    figure: `${s1.mbs.toFixed(0)} MB/s stdout, ${s2.mbs.toFixed(0)} MB/s file; RSS +${Math.max(s1.extra, s2.extra).toFixed(0)} MB`,
    baseline: `plain aws from the same moto: ${plainMbs.toFixed(0)} MB/s; RSS: the same process idle`,
    target: '≥ 50 MB/s, RSS bounded',
    met: Math.min(s1.mbs, s2.mbs) >= 50,
  });

  // 3. Runs per second with 20 concurrent callers (HTTP API, no client process).
  const { streamRun } = await import(join(root, 'dist/api/run-client.js'));
  const { Writable } = await import('node:stream');
  const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });
  const one = async () => {
    const res = await fetch(`${remote.e.brokerUrl}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${remote.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ argv: ['sts', 'get-caller-identity'] }) });
    const a = await res.json();
    if (res.status !== 201) throw new Error(`POST /v1/runs: ${res.status} ${JSON.stringify(a)}`);
    const x = await streamRun({ baseUrl: remote.e.brokerUrl, token: remote.token, runId: a.runId, stdout: sink(), stderr: sink() });
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
  const rps = TOTAL / ((performance.now() - t0) / 1000);
  console.log(`${TOTAL} remote runs, ${CONCURRENT} at a time: ${rps.toFixed(1)} runs/s`);
  report({
    name: 'remote-run-concurrent',
    measures: `remote \`sts get-caller-identity\` runs, ${CONCURRENT} concurrent callers (HTTP API)`,
    figure: `${rps.toFixed(1)} runs/s`,
    baseline: `one run alone: ${mr.toFixed(0)} ms whole process`,
    target: '— (reported)',
    met: null,
  });
} finally {
  await local.e.close();
  await remote.e.close();
  rmSync(dir, { recursive: true, force: true });
}
