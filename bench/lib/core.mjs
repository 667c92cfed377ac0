// The decision core the broker runs (real parser, shipped default policy), loaded from dist/ for benchmarks.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const dist = (p) => import(join(root, 'dist', p));

export async function loadCore() {
  const { parseInvocation } = await dist('invocation/parse.js');
  const policy = await dist('policy/index.js');
  const set = policy.loadPolicies([join(root, 'policies/default.yaml')]);
  return { parse: parseInvocation, decide: (input) => policy.decide(set, input), core: 'real parser and policies/default.yaml' };
}
