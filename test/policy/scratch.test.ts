import { test } from 'vitest';
import { checkPolicies } from '../../src/policy/check.js';
import { formatDiagnostic } from '../../src/policy/source.js';
test('scratch', () => {
  const r = checkPolicies(['policies/default.yaml']);
  console.log(r.diagnostics.map(formatDiagnostic).join('\n'), r.errors, r.warnings);
});
