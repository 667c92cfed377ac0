#!/usr/bin/env node
// Runs every benchmark in sequence (one at a time: the machine has two cores) and prints their figures.
// Each benchmark measures against a baseline in the same run and prints a ratio; see the README.
// Usage: npm run bench [-- name…]   (names: file names without .mjs)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ALL = ['decisions', 'startup', 'parse', 'masking', 'grants', 'passthrough', 'audit-verify', 'transcript-cost', 'soak'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
let failed = 0;
for (const name of wanted) {
  const file = join(here, `${name}.mjs`);
  if (!existsSync(file)) {
    console.log(`\n== ${name}: not present`);
    continue;
  }
  console.log(`\n== ${name}`);
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`== ${name}: exited ${r.status ?? r.signal}`);
  }
}
process.exitCode = failed ? 1 : 0;
