import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { corpusCases, corpusContext, type CorpusCase } from '../helpers/corpus.js';

type Case = CorpusCase;
const ctxFor = corpusContext;
const cases: Case[] = corpusCases();

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
