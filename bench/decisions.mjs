#!/usr/bin/env node
// Decisions per second, in-process, one core: parse + decide over the corpus (../shared/corpus/cli-cases.jsonl
// beside the repo) against a generated policy of 1,000 rules merged with the shipped default policy.
// Prints parse+decide/s, decide-only/s and parse-only/s measured in the same run (so the cost of deciding is a
// ratio, comparable across machines) and the 50,000/s target. Needs `npm run build` (imports dist/).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { report } from './lib/report.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { parseInvocation } = await import(resolve(root, 'dist/invocation/parse.js'));
const { loadPolicies, decide } = await import(resolve(root, 'dist/policy/index.js'));

const corpus = readFileSync(resolve(root, '../shared/corpus/cli-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

// A deterministic 1,000-rule policy in the shape real ones take: per-service action rules, resource-scoped
// allows, group- and target-scoped rules, parameter conditions and risk rules, for ~40 services.
const SERVICES = ['s3', 'ec2', 'iam', 'lambda', 'dynamodb', 'rds', 'sqs', 'sns', 'kms', 'ssm', 'secretsmanager', 'logs', 'cloudformation', 'ecr', 'sts', 'ecs', 'eks', 'elasticloadbalancing', 'autoscaling', 'cloudwatch', 'route53', 'states', 'events', 'glue', 'athena', 'kinesis', 'firehose', 'apigateway', 'codebuild', 'codedeploy', 'codepipeline', 'elasticache', 'es', 'redshift', 'sagemaker', 'bedrock', 'cognito-idp', 'acm', 'waf', 'backup'];
const VERBS = ['Get', 'List', 'Describe', 'Put', 'Create', 'Delete', 'Update', 'Tag'];
function generatePolicy(n) {
  const lines = ['version: 1', 'rules:'];
  for (let i = 0; i < n; i++) {
    const svc = SERVICES[i % SERVICES.length];
    const verb = VERBS[(i >> 3) % VERBS.length];
    const effect = ['allow', 'allow', 'approve', 'deny'][i % 4];
    const approval = effect === 'approve' ? `\n    approval: { groups: [team-${i % 7}], count: ${1 + (i % 2)} }` : '';
    let match;
    switch (i % 6) {
      case 0: match = `{ actions: ['${svc}:${verb}*'], resources: ['arn:aws:${svc}:*:111122223333:thing-${i}/*'] }`; break;
      case 1: match = `{ actions: ['${svc}:${verb}*'], groups: [team-${i % 13}], targets: ['env-${i % 5}'] }`; break;
      case 2: match = `{ actions: ['${svc}:${verb}Thing${i}'], access: [Write] }`; break;
      case 3: match = `{ actions: ['${svc}:*'], params: [{ path: '**.Name${i}', equals: 'v${i}' }] }`; break;
      case 4: match = `{ actions: ['${svc}:${verb}*'], subjects: ['user-${i}@example.com'] }`; break;
      default: match = `{ actions: ['${svc}:${verb}*'], commands: ['${svc} ${verb.toLowerCase()}-thing-${i}'] }`;
    }
    lines.push(`  - id: gen-${i}`, `    effect: ${effect}`, `    reason: generated rule ${i}${approval}`, `    match: ${match}`);
  }
  return lines.join('\n') + '\n';
}
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-bench-'));
const generated = join(dir, 'generated.yaml');
writeFileSync(generated, generatePolicy(1000));
const set = loadPolicies([generated, resolve(root, 'policies/default.yaml')]);

const ctx = {
  account: '111122223333',
  region: 'us-east-1',
  cwd: '/work/project',
  env: { HOME: '/home/agent' },
  readFile: () => Buffer.from('{"Version":"2012-10-17","Statement":[]}'),
};
const caller = { subject: 'agent-1', groups: ['agents', 'team-3'] };
const target = { name: 'env-3', account: '111122223333' };
const argvs = corpus.map((c) => c.argv);
const parsed = [];
for (const a of argvs) {
  try {
    parsed.push(parseInvocation(a, ctx));
  } catch {
    /* refused invocations never reach decide */
  }
}

// Rates are per CPU-second of this process (process.cpuUsage): "on one core", whatever else the machine runs.
function run(items, fn, seconds) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const c0 = process.cpuUsage();
  while (performance.now() < end) {
    for (const x of items) {
      try {
        fn(x);
      } catch {
        /* a refusal is a decision too (fail closed) */
      }
      n++;
    }
  }
  const c = process.cpuUsage(c0);
  return n / ((c.user + c.system) / 1e6);
}

const full = (a) => decide(set, { invocation: parseInvocation(a, ctx), caller, target });
const parseFn = (a) => parseInvocation(a, ctx);
const decideFn = (inv) => decide(set, { invocation: inv, caller, target });
run(argvs, full, 0.5); // warm-up
run(parsed, decideFn, 0.3);
// Interleaved rounds, medians: other processes on the machine then disturb all three figures alike.
const rounds = { full: [], parse: [], decide: [] };
for (let i = 0; i < 7; i++) {
  rounds.full.push(run(argvs, full, 0.4));
  rounds.parse.push(run(argvs, parseFn, 0.4));
  rounds.decide.push(run(parsed, decideFn, 0.4));
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const parseDecide = med(rounds.full);
const parseOnly = med(rounds.parse);
const decideOnly = med(rounds.decide);
const fmt = (x) => Math.round(x).toLocaleString('en-US');
console.log(`policy: ${set.rules.length} rules (1,000 generated + the default policy), ${argvs.length} corpus invocations`);
console.log(`parse+decide: ${fmt(parseDecide)}/s   parse only: ${fmt(parseOnly)}/s   decide only: ${fmt(decideOnly)}/s`);
console.log(`decide costs ${((parseOnly / parseDecide - 1) * 100).toFixed(1)}% on top of parsing (ratio parse+decide/parse = ${(parseDecide / parseOnly).toFixed(3)})`);
console.log(`target ≥ 50,000 parse+decide/s: ${parseDecide >= 50000 ? 'met' : 'MISSED'} (${(parseDecide / 50000).toFixed(2)}× the target)`);
report({
  name: 'decisions',
  measures: `parse + decide over the corpus (${argvs.length} invocations) with a ${set.rules.length.toLocaleString('en-US')}-rule policy, per CPU-second`,
  figure: `${fmt(parseDecide)} /s`,
  baseline: `parse alone ${fmt(parseOnly)} /s, decide alone ${fmt(decideOnly)} /s`,
  target: '≥ 50,000 /s',
  met: parseDecide >= 50000,
});
