#!/usr/bin/env node
// What the confinement of broker runs costs (src/runner/isolation.ts): runAws `sts get-caller-identity` against
// the same moto_server, confined by bubblewrap vs the sealed run alone, alternating, one fresh run directory each
// (as the broker makes one). Prints both medians and the ratio. The target (≤ 1.10) leaves the remote-run budget of
// issue 7 (≤ 1.3 against a local guarded run) to the network and the broker.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runAws } = await import(join(root, 'dist/runner/run-aws.js'));
const { createIsolation, bwrapAvailable } = await import(join(root, 'dist/runner/isolation.js'));
const { report } = await import('./lib/report.mjs');

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
if (!bwrapAvailable()) {
  console.log('bubblewrap is not installed: nothing to measure');
  report({ name: 'isolation', measures: 'confined vs sealed runAws', figure: '—', baseline: '—', target: '≤ 1.10', met: null });
  process.exit(0);
}
const awsPath = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' }).stdout?.trim();
const aws = { path: awsPath, major: 1 };
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-bench-iso-'));
const port = 18000 + Math.floor(Math.random() * 2000);
const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
const endpoint = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${endpoint}/moto-api/`)).status < 500) break;
  } catch {
    /* not up yet */
  }
  if (i > 300) throw new Error('moto_server did not start');
  await new Promise((r) => setTimeout(r, 100));
}

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
const credentials = { accessKeyId: 'AKIABENCHEXAMPLE0001', secretAccessKey: 'bench-secret', sessionToken: 'bench-token' };
async function once(confined) {
  const run = mkdtempSync(join(dir, 'run-'));
  const t0 = performance.now();
  const r = await runAws({
    aws,
    argv: ['sts', 'get-caller-identity'],
    credentials,
    region: 'us-east-1',
    endpoint,
    stdin: null,
    stdout: sink(),
    stderr: sink(),
    cwd: run,
    tmpRoot: run,
    ...(confined ? { isolation: createIsolation({ mode: 'bwrap' }, aws) } : {}),
  });
  const ms = performance.now() - t0;
  rmSync(run, { recursive: true, force: true });
  if (r.exitCode !== 0) throw new Error(`aws exited ${r.exitCode}`);
  return ms;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  await once(true); // warm-up (and the one-time bwrap probe)
  await once(false);
  const c = [];
  const s = [];
  for (let i = 0; i < RUNS; i++) {
    c.push(await once(true));
    s.push(await once(false));
  }
  const mc = median(c);
  const ms = median(s);
  console.log(`runs: ${RUNS} each, alternating`);
  console.log(`sealed run: median ${ms.toFixed(0)} ms; confined (bwrap${process.getuid?.() === 0 ? ' + setpriv' : ', user namespace'}): median ${mc.toFixed(0)} ms`);
  console.log(`ratio: ${(mc / ms).toFixed(3)} (target ≤ 1.10), adds ${(mc - ms).toFixed(0)} ms`);
  report({
    name: 'isolation',
    measures: 'runAws `sts get-caller-identity` confined by bubblewrap vs the sealed run alone, alternating',
    figure: `${(mc / ms).toFixed(2)} (adds ${(mc - ms).toFixed(0)} ms)`,
    baseline: `sealed run: ${ms.toFixed(0)} ms`,
    target: '≤ 1.10',
    met: mc / ms <= 1.1,
  });
} finally {
  moto.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
