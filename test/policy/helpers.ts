import { loadPolicies, loadPoliciesDetailed } from '../../src/policy/load.js';
import type { PolicySet } from '../../src/policy/compiled.js';

/** Loads policy text through the real loader, as file `name` (default `p.yaml`). */
export function fromText(text: string, name = 'p.yaml'): PolicySet {
  return loadPolicies([name], { readFile: () => text });
}

export function fromFiles(files: Record<string, string>): PolicySet {
  return loadPolicies(Object.keys(files), { readFile: (p) => files[p]! });
}

export function diagnosticsOf(text: string, name = 'p.yaml'): string[] {
  return loadPoliciesDetailed([name], { readFile: () => text }).diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
}

/** A one-rule policy document. */
export function rule(effect: 'deny' | 'approve' | 'allow', match: string, opts: { id?: string; def?: string } = {}): string {
  const approval = effect === 'approve' ? '\n    approval: { groups: [approvers], count: 1 }' : '';
  return `version: 1
default: ${opts.def ?? 'deny'}
rules:
  - id: ${opts.id ?? 'r1'}
    effect: ${effect}
    reason: test rule${approval}
    match: ${match}
`;
}
