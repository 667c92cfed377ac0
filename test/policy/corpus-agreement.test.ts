import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { decide } from '../../src/policy/decide.js';
import { loadPolicies } from '../../src/policy/load.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const corpusPath = resolve(repoRoot, '../shared/corpus/cli-cases.jsonl');

interface Case {
  argv: string[];
  suggested: 'allow' | 'approve' | 'deny';
  cli_version?: 'v2';
}

// Fixture contents for the files the corpus names (the corpus only names them).
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

/**
 * Disagreements with the reviewers' `suggested` decision that the default policy makes on purpose:
 * - `lambda get-function` (suggested allow): GetFunction returns the function's Configuration, environment
 *   variables included — the same secrets `get-function-configuration` (suggested approve) discloses.
 * - `iam create-role` and `emr create-default-roles` (suggested approve): the issue asks for IAM writes to be
 *   denied for agents; creating roles (with trust policies) and attaching policies to them is an IAM write.
 * - `s3api list-objects-v2 --bucket a --bucket b` (suggested deny): the parser resolves the repeated option
 *   exactly as the CLI does (the last one wins), the canonical argv that runs carries only `b`, and the session
 *   policy is scoped to `b`; what is decided is what runs, so the read is allowed like any other listing.
 */
const INTENDED = ['lambda get-function ', 'iam create-role ', 'emr create-default-roles', 's3api list-objects-v2 --bucket allowed-bucket --bucket forbidden-bucket'];

describe('default.yaml against the corpus `suggested` decisions', () => {
  it('agrees on at least 90% of the cases and prints the disagreements', () => {
    const cases: Case[] = readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    const set = loadPolicies([resolve(repoRoot, 'policies/default.yaml')]);
    const disagreements: string[] = [];
    let agree = 0;
    for (const c of cases) {
      let got: string;
      let rule: string | null = null;
      try {
        const inv = parseInvocation(c.argv, {
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
        } as Parameters<typeof parseInvocation>[1]);
        const d = decide(set, { invocation: inv, caller: { subject: 'agent', groups: ['agents'] }, target: { name: 'dev', account: '111122223333' } });
        got = d.decision;
        rule = d.rule;
      } catch (e) {
        if (!isGuardError(e)) throw e;
        // A refused invocation never runs: for the comparison it is a deny.
        got = 'deny';
        rule = `refused: ${e.code}`;
      }
      if (got === c.suggested) agree++;
      else {
        const line = c.argv.join(' ');
        disagreements.push(`${INTENDED.some((k) => line.startsWith(k)) ? '(intended) ' : ''}${c.argv.join(' ').slice(0, 100)}: suggested ${c.suggested}, got ${got} (${rule ?? 'default'})`);
      }
    }
    const rate = agree / cases.length;
    console.log(`default.yaml agrees with the corpus on ${agree}/${cases.length} cases (${(rate * 100).toFixed(1)}%)\n${disagreements.join('\n')}`);
    expect(rate).toBeGreaterThanOrEqual(0.9);
    // Every disagreement that is not a deliberate choice is a regression to look at.
    expect(disagreements.filter((d) => !d.startsWith('(intended)'))).toEqual([]);
  });
});
