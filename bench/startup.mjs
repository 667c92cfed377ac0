#!/usr/bin/env node
// Cold start of the whole process: `guard-aws explain -- s3 ls` against `node -e 0`, alternating in the same
// run, medians of N runs each; prints the ratio (target ≤ 3× node's own start-up). Needs `npm run build`.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { report } from './lib/report.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin/guard-aws.js');
const N = Number(process.env.BENCH_STARTUP_RUNS ?? 21);
const env = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' };

function time(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const node = [];
const guard = [];
const version = [];
time(['-e', '0']);
time([bin, 'explain', '--', 's3', 'ls']); // fill the OS page cache (and the policy cache) once; every measured run is a new process
for (let i = 0; i < N; i++) {
  node.push(time(['-e', '0']));
  guard.push(time([bin, 'explain', '--', 's3', 'ls']));
  version.push(time([bin, '--version']));
}
const n = median(node);
const g = median(guard);
const v = median(version);
console.log(`node -e 0: median ${n.toFixed(1)} ms   guard-aws explain -- s3 ls: median ${g.toFixed(1)} ms   (${N} runs each, alternating)`);
// Breakdown: `--version` is the dispatcher alone (bin + main.ts and what it imports statically).
console.log(`  of which the dispatcher alone (guard-aws --version): ${(v - n).toFixed(1)} ms over node; explain (parser, policy, decision, output): ${(g - v).toFixed(1)} ms`);
console.log(`ratio ${(g / n).toFixed(2)}× node's start-up; target ≤ 3×: ${g / n <= 3 ? 'met' : 'MISSED'}`);
report({
  name: 'startup',
  measures: '`guard-aws explain -- s3 ls`, whole process, cold, vs `node -e 0`',
  figure: `${(g / n).toFixed(2)}× (${g.toFixed(0)} ms)`,
  baseline: `node -e 0: ${n.toFixed(0)} ms (${N} alternating runs, medians)`,
  target: '≤ 3×',
  met: g / n <= 3,
});
