import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const corpusPath = resolve(repoRoot, '../shared/corpus/cli-cases.jsonl');

interface Case {
  argv: string[];
  actions: string[];
  resources: string[];
  expect?: 'api_call' | 'no_api_call' | 'cli_error';
  cli_version?: 'v2';
}

// Files the corpus refers to, as they would exist on the caller's machine (fixture contents; the corpus only
// names them). Read through ctx.readFile like any other file.
const FILES: Record<string, string> = {
  'input.json': '{"Bucket":"hidden-bucket","Prefix":"x/"}',
  'policy.json': '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}',
  'trust.json': '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
  'secret-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'key-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'repo-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'secret.enc': 'ciphertext',
  'function.zip': 'PK',
  'credentials': '[default]\naws_access_key_id = AKIAEXAMPLE\n',
};

function ctxFor(c: Case) {
  return {
    account: '111122223333',
    region: 'us-east-1',
    cwd: '/work/project',
    env: { HOME: '/home/agent' },
    readFile: (p: string) => {
      const base = p.split('/').pop()!;
      if (FILES[base] === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return Buffer.from(FILES[base]!);
    },
    ...(c.cli_version === 'v2' ? { cliVersion: 'v2' as const } : {}),
  };
}

const cases: Case[] = readFileSync(corpusPath, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

describe('corpus accuracy (../shared/corpus/cli-cases.jsonl)', () => {
  it('gives exactly the listed actions for at least 98% of cases; no-call and error cases come out that way', () => {
    const misses: string[] = [];
    let actionHits = 0;
    let resourceHits = 0;
    let resourceTotal = 0;
    for (const c of cases) {
      const label = c.argv.join(' ').slice(0, 120);
      let r;
      try {
        r = parseInvocation(c.argv, ctxFor(c));
      } catch (e) {
        if (c.expect === 'cli_error' && e instanceof GuardError && e.code === 'parse') {
          actionHits++;
          continue;
        }
        misses.push(`${label}: threw ${(e as Error).message}`);
        continue;
      }
      if (c.expect === 'cli_error') {
        misses.push(`${label}: expected a parse error, got ${r.kind} ${r.actions.join(',')}`);
        continue;
      }
      if (c.expect === 'no_api_call') {
        // configure/history are kind 'local': they make no API call either.
        if (r.kind === 'no_api_call' || r.kind === 'local') actionHits++;
        else misses.push(`${label}: expected no API call, got ${r.kind}`);
        continue;
      }
      const want = [...c.actions].sort();
      if (JSON.stringify(r.actions) === JSON.stringify(want)) actionHits++;
      else misses.push(`${label}: actions ${JSON.stringify(r.actions)} != ${JSON.stringify(want)}`);
      resourceTotal++;
      if (JSON.stringify(r.resources) === JSON.stringify([...c.resources].sort())) resourceHits++;
      else console.log(`resource difference: ${label}: ${JSON.stringify(r.resources)} != ${JSON.stringify([...c.resources].sort())}`);
    }
    const accuracy = actionHits / cases.length;
    console.log(`corpus actions: ${actionHits}/${cases.length} = ${(accuracy * 100).toFixed(1)}%`);
    console.log(`corpus resources: ${resourceHits}/${resourceTotal} = ${((resourceHits / resourceTotal) * 100).toFixed(1)}%`);
    for (const m of misses) console.log(`MISS ${m}`);
    expect(accuracy).toBeGreaterThanOrEqual(0.98);
    expect(resourceHits / resourceTotal).toBeGreaterThanOrEqual(0.85);
  });
});
