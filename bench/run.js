#!/usr/bin/env node
// Runs every benchmark in sequence (one at a time: the machine has two cores) and prints their figures.
// Each benchmark measures against a baseline in the same run and prints a ratio; see the README.
// Usage: npm run bench [-- name…]   (names: file names without .mjs)
// At the end it prints one markdown table (every figure against its target, the machine and the load average
// before and after): paste it into README.md's Benchmarks section as it is.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MARK } from './lib/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ALL = ['decisions', 'startup', 'parse', 'masking', 'grants', 'passthrough', 'remote-run', 'audit-verify', 'audit-append', 'transcript-cost', 'transcript-bodies', 'isolation', 'soak', 'console', 'store', 'approvals', 'warm-pool', 'ha'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
let failed = 0;
const rows = [];
const loadBefore = os.loadavg();
const started = new Date();
for (const name of wanted) {
  const file = join(here, `${name}.mjs`);
  if (!existsSync(file)) {
    console.log(`\n== ${name}: not present`);
    continue;
  }
  console.log(`\n== ${name}`);
  // The AWS SDK's multi-line Node-22 notice (README, "Two commands") says nothing about a benchmark: off, as in the tests.
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...process.env };
  const r = spawnSync(process.execPath, [file], { env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20 });
  for (const line of (r.stdout ?? '').split('\n')) {
    if (line.startsWith(MARK)) rows.push(JSON.parse(line.slice(MARK.length)));
    else if (line) console.log(line);
  }
  if (!rows.some((row) => row.name === name)) rows.push({ name, measures: '(no result: see its output above)', figure: '—', baseline: '—', target: '—', met: false });
  if (r.status !== 0) {
    failed++;
    console.log(`== ${name}: exited ${r.status ?? r.signal}`);
  }
}
const loadAfter = os.loadavg();
const cpus = os.cpus();
const cell = (s) => String(s).replace(/\|/g, '\\|');
console.log('\n## Benchmarks (paste into README.md)\n');
console.log(`${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${os.platform()} ${os.release()}; load average ${loadBefore[0].toFixed(1)} before, ${loadAfter[0].toFixed(1)} after.\n`);
console.log('| benchmark | what it measures | figure | baseline in the same run | target | met |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) {
  const met = row.met === null ? '—' : row.met ? 'yes' : '**no**';
  console.log(`| \`${row.name}\` | ${cell(row.measures)} | ${cell(row.figure)} | ${cell(row.baseline)} | ${cell(row.target)} | ${met} |`);
}
process.exitCode = failed ? 1 : 0;
