#!/usr/bin/env node
// Parse throughput over the corpus (../shared/corpus/cli-cases.jsonl beside the repo), in-process, one core.
// Prints parses/s and the ratio against a baseline loop (JSON.parse + structuredClone of the same argv) run in
// the same process, so figures compare across machines. Needs `npm run build` (imports dist/).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { parseInvocation } = await import(resolve(root, 'dist/invocation/parse.js'));
const { parseInvocationUncached } = await import(resolve(root, 'dist/invocation/parse.js'));
const corpus = readFileSync(resolve(root, '../shared/corpus/cli-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const files = new Map();
const ctx = {
  account: '111122223333',
  region: 'us-east-1',
  cwd: '/work/project',
  env: { HOME: '/home/agent' },
  // Corpus files are fixtures: the benchmark measures parsing, not disk reads.
  readFile: (p) => files.get(p) ?? Buffer.from('{"Bucket":"hidden-bucket"}'),
};
const argvs = corpus.map((c) => c.argv);

// Rates are per CPU-second of this process (process.cpuUsage), so a busy machine does not distort them:
// "on one core" as the target says.
function run(fn, seconds) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const c0 = process.cpuUsage();
  while (performance.now() < end) {
    for (const a of argvs) {
      try {
        fn(a);
      } catch {
        /* expected parse errors count as parses */
      }
      n++;
    }
  }
  const c = process.cpuUsage(c0);
  return n / ((c.user + c.system) / 1e6);
}

run((a) => parseInvocationUncached(a, ctx), 0.5); // warm-up: tables loaded and cached, JIT settled
const cold = run((a) => parseInvocationUncached(a, ctx), 2);
run((a) => parseInvocation(a, ctx), 0.2);
const parses = run((a) => parseInvocation(a, ctx), 2);
const baseline = run((a) => structuredClone(JSON.parse(JSON.stringify(a))), 1);
console.log(`parse (full analysis every time): ${Math.round(cold).toLocaleString('en-US')} parses per CPU-second over ${argvs.length} corpus invocations`);
console.log(`parse (repeated invocations served from the memo cache, shared frozen results): ${Math.round(parses).toLocaleString('en-US')} parses per CPU-second`);
console.log(`baseline (JSON round trip + structuredClone of the argv): ${Math.round(baseline).toLocaleString('en-US')} ops/s`);
console.log(`ratio full-parse/baseline: ${(cold / baseline).toFixed(3)}; cached/baseline: ${(parses / baseline).toFixed(3)}`);
const { report } = await import('./lib/report.mjs');
report({
  name: 'parse',
  measures: 'parser alone over the corpus (and with its memo cache), per CPU-second',
  figure: `${Math.round(cold).toLocaleString('en-US')} /s (${Math.round(parses).toLocaleString('en-US')} /s cached)`,
  baseline: `JSON round trip + structuredClone of the argv: ${Math.round(baseline).toLocaleString('en-US')} /s`,
  target: '—',
  met: null,
});
