import { createHash } from 'node:crypto';
import type { ParsedInvocation, Permission } from '../invocation/types.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';

/** Version of the binding layout; part of the hashed value so a layout change can never match an old hash. */
export const BINDING_VERSION = 1;

export interface BindingInput {
  requester: string;
  target: string;
  invocation: Pick<ParsedInvocation, 'canonicalArgv' | 'region' | 'actions' | 'permissions' | 'params'> & { files?: ParsedInvocation['files'] };
}

/**
 * What an approval is bound to: the exact call. The canonical argv alone is not enough — `file://` arguments
 * and `--cli-input-json` bring in content the argv does not show — so the decoded API parameters (which include
 * that content) are hashed too. Changing the file after approval, asking for another target, another region
 * (the target's default region is not in the argv) or another person makes the hash differ.
 */
export function bindingValue(b: BindingInput): unknown {
  return {
    v: BINDING_VERSION,
    argv: b.invocation.canonicalArgv,
    target: b.target,
    region: b.invocation.region,
    requester: b.requester,
    actions: [...new Set(b.invocation.actions)].sort(),
    resources: sortPermissions(b.invocation.permissions),
    params: b.invocation.params ?? {},
    // Blobs the broker saw only as their digest (request `blobs`): bound by digest wherever they go, also when
    // the argument is not an API member (create-function's --zip-file lives in cliArgs). Absent otherwise, so
    // every hash stored before stays what it was.
    ...blobsOf(b.invocation.files),
  };
}

function blobsOf(files: ParsedInvocation['files'] | undefined): { blobs?: { argument: string; path: string; sha256: string; size: number }[] } {
  const blobs = (files ?? []).flatMap((f) => (f.digest ? [{ argument: f.argument, path: f.path, sha256: f.digest.sha256, size: f.digest.size }] : []));
  return blobs.length ? { blobs } : {};
}

/**
 * Params decoded from `--cli-input-yaml` may hold bytes (`!!binary`) and dates (`!!timestamp`): bytes are tagged
 * so they never equal a string of the same text, dates hashed as their ISO text (as every stored hash was).
 */
const BINDING_JSON = { bytes: 'tagged', dates: 'iso' } as const;

/** SHA-256 (hex) of the canonical JSON of `bindingValue`. */
export function bindingHash(b: BindingInput): string {
  return createHash('sha256').update(canonicalJson(bindingValue(b), BINDING_JSON), 'utf8').digest('hex');
}

/** Permissions in a stable order, each with sorted unique resources; `derived` does not change what is allowed. */
export function sortPermissions(perms: readonly Permission[]): { action: string; resources: string[] }[] {
  return perms
    .map((p) => ({ action: p.action, resources: [...new Set(p.resources)].sort() }))
    .sort((a, b) => cmp(a.action, b.action) || cmp(a.resources.join('\n'), b.resources.join('\n')));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
