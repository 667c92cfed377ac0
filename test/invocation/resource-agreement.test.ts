/**
 * How tight are the resources, against the shared corpus (../shared/corpus/cli-cases.jsonl: real invocations with
 * the ARNs a reviewer expects): the share of calls whose ARNs equal the expected ones exactly, per service and
 * overall (`npx vitest run test/invocation/resource-agreement.test.ts`). Every CLI operation, generated and checked
 * by the real CLI, is scored by test/invocation/coverage.test.ts.
 *
 * The threshold is the figure measured when this was written, so a change that loosens resources fails here.
 */
import { describe, expect, it } from 'vitest';
import { parseInvocation } from '../../src/invocation/parse.js';
import { corpusCases, corpusContext } from '../helpers/corpus.js';

const pct = (n: number, d: number) => (d ? `${((n / d) * 100).toFixed(1)}%` : 'n/a');

describe('resource agreement with the shared corpus', () => {
  it('prints per-service and overall agreement; at least 98% overall', () => {
    const byService = new Map<string, { hit: number; total: number }>();
    let hit = 0;
    let total = 0;
    for (const c of corpusCases()) {
      if (c.expect === 'cli_error' || c.expect === 'no_api_call') continue;
      let resources: string[];
      try {
        resources = parseInvocation(c.argv, corpusContext(c)).resources;
      } catch {
        resources = ['(refused)'];
      }
      const service = (c as { service?: string | null }).service ?? '(none)';
      const s = byService.get(service) ?? { hit: 0, total: 0 };
      const same = JSON.stringify(resources) === JSON.stringify([...c.resources].sort());
      s.total++;
      total++;
      if (same) {
        s.hit++;
        hit++;
      }
      byService.set(service, s);
    }
    const rows = [...byService.entries()].sort((a, b) => b[1].total - a[1].total);
    for (const [service, s] of rows) console.log(`corpus resources ${service.padEnd(16)} ${s.hit}/${s.total} ${pct(s.hit, s.total)}`);
    // The corpus names 21 services, all of them within the top 30: the top-30 figure is the overall one.
    console.log(`corpus resources overall (= top 30) ${hit}/${total} ${pct(hit, total)}`);
    expect(hit / total).toBeGreaterThanOrEqual(0.98);
  });
});
