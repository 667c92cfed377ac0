export { loadPolicies, loadPoliciesDetailed, BUILTIN_DEFAULT, type LoadOptions, type LoadResult } from './load.js';
export { decide, explainDecision, combineApprovals, type DetailedDecision, type PermissionDecision } from './decide.js';
export type { PolicySet, CompiledRule, DefaultEffect } from './compiled.js';
export { formatDiagnostic, type Diagnostic } from './diagnostics.js';
export { loadPoliciesCached, policyCacheDir, type CachedLoadOptions } from './load-cached.js';
export type * from './types.js';
