import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { decide } from '../../src/policy/decide.js';
import { loadPolicies } from '../../src/policy/load.js';
import { corpusCases, corpusContext, repoRoot, type CorpusCase } from '../helpers/corpus.js';

type Case = CorpusCase;

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
    const cases: Case[] = corpusCases();
    const set = loadPolicies([resolve(repoRoot, 'policies/default.yaml')]);
    const disagreements: string[] = [];
    let agree = 0;
    for (const c of cases) {
      let got: string;
      let rule: string | null = null;
      try {
        const inv = parseInvocation(c.argv, corpusContext(c));
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
