import { GuardError } from '../errors.js';
import type { Permission } from '../invocation/types.js';

/**
 * Builds the inline session policy passed to STS AssumeRole. The session's effective permissions are the
 * intersection of the role's policies and this one (IAM User Guide, "Session policies"), so this document is
 * what limits a grant to exactly one invocation. It may be narrower than the invocation's permissions (the call
 * then fails at AWS, closed) but never wider.
 */

/** AWS's limit for the plaintext inline session policy (STS AssumeRole API reference, `Policy`). */
export const SESSION_POLICY_MAX_CHARS = 2048;

export interface SessionPolicyOptions {
  /** Accounts resources may belong to where the ARN itself cannot say (default: the target account only). */
  resourceAccounts: string[];
}

export interface PolicyStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface SessionPolicy {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** Allows nothing. Used for calls that need no permission: STS GetCallerIdentity works even under an explicit
 * deny (STS API reference, GetCallerIdentity: "No permissions are required to perform this operation"). */
export const DENY_ALL: SessionPolicy = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Deny', Action: '*', Resource: '*' }],
};

// `service:Action`; the action part may carry the `*` wildcard as IAM allows, nothing else.
const ACTION = /^[a-z0-9-]+:[A-Za-z0-9*]+$/;
// Partition, service, region and account of an ARN (IAM User Guide, "IAM identifiers" / ARN format).
const ARN = /^arn:([a-z-]+):([a-z0-9-]+):([a-z0-9-]*):([0-9]{12}|aws|\*|):(.+)$/;

/**
 * S3 bucket and object ARNs carry no account (`arn:aws:s3:::bucket`), so a statement on them would also match a
 * same-named bucket owned by someone else — the cross-account exfiltration route of the bypass table (vector 22).
 * For those statements we add `aws:ResourceAccount`, which "compares the account of the resource with the
 * account you specify" and is present for S3 requests (IAM User Guide, "AWS global condition context keys",
 * aws:ResourceAccount). ARNs that name an account already pin it; statements on `*` get no condition because
 * many actions that only work on `*` (List*, Describe*) have no resource account in their request context, and
 * a condition on an absent key would deny them.
 */
function needsResourceAccount(resource: string): boolean {
  const m = ARN.exec(resource);
  // Every S3 ARN, access points included: an access point ARN names its own account, and one in someone else's
  // account (whose policy lets anyone write) is as good an exfiltration route as a same-named bucket. Pinning the
  // resource account to the target's makes AWS refuse both.
  return m !== null && m[2] === 's3';
}

function validate(p: Permission, i: number): void {
  if (!ACTION.test(p.action)) {
    throw new GuardError('internal', `session policy: permission ${i} has a malformed action ${JSON.stringify(p.action)}`);
  }
  if (p.resources.length === 0) {
    throw new GuardError('internal', `session policy: permission ${i} (${p.action}) has no resources`);
  }
  for (const r of p.resources) {
    if (r !== '*' && !ARN.test(r)) {
      throw new GuardError('internal', `session policy: permission ${i} (${p.action}) has a malformed resource ${JSON.stringify(r)}`);
    }
  }
}

/**
 * Groups (action, resource) pairs into the fewest statements we can find without adding any pair: first merge
 * actions that share exactly the same resource set, then resource sets that share exactly the same action set.
 * Both steps rewrite A×R1 ∪ A×R2 as A×(R1∪R2) (or the transpose), which is the same set of pairs.
 */
function group(pairs: Map<string, Set<string>>): { actions: string[]; resources: string[] }[] {
  // action → resources, to resource-set → actions
  const byResources = new Map<string, { actions: string[]; resources: string[] }>();
  for (const [action, resSet] of pairs) {
    const resources = [...resSet].sort();
    // A `*` resource already covers every ARN for that action: the pairs with specific ARNs add nothing.
    const effective = resources.includes('*') ? ['*'] : resources;
    const key = effective.join('\n');
    const g = byResources.get(key) ?? { actions: [], resources: effective };
    g.actions.push(action);
    byResources.set(key, g);
  }
  const byActions = new Map<string, { actions: string[]; resources: string[] }>();
  for (const g of byResources.values()) {
    g.actions.sort();
    const key = g.actions.join('\n');
    const h = byActions.get(key);
    if (h) h.resources = [...new Set([...h.resources, ...g.resources])].sort();
    else byActions.set(key, { actions: g.actions, resources: g.resources });
  }
  return [...byActions.values()].sort((a, b) => (a.actions[0]! < b.actions[0]! ? -1 : 1));
}

const one = (xs: string[]): string | string[] => (xs.length === 1 ? xs[0]! : xs);

/** The session policy document for these permissions (not yet serialised). */
export function sessionPolicyFor(permissions: readonly Permission[], options: SessionPolicyOptions): SessionPolicy {
  if (permissions.length === 0) return DENY_ALL;
  permissions.forEach(validate);
  if (options.resourceAccounts.length === 0 || options.resourceAccounts.some((a) => !/^[0-9]{12}$/.test(a))) {
    throw new GuardError('internal', 'session policy: resourceAccounts must be 12-digit account ids');
  }
  // Two classes: resources that need the account condition and those that do not. Merging only within a class
  // keeps the condition from spilling onto (and denying) the other class, or being lost from this one.
  const plain = new Map<string, Set<string>>();
  const accountBound = new Map<string, Set<string>>();
  // Permissions another service exercises for the caller, per service: allowed only through it (kms:ViaService,
  // AWS KMS Developer Guide, "kms:ViaService").
  const via = new Map<string, Map<string, Set<string>>>();
  for (const p of permissions) {
    if (p.viaService !== undefined) {
      if (!/^[a-z0-9-]+\.[a-z0-9-]+\.amazonaws\.com$/.test(p.viaService) || !p.action.startsWith('kms:')) {
        throw new GuardError('internal', `session policy: ${p.action} via ${JSON.stringify(p.viaService)} is not a service-mediated KMS permission`);
      }
      const byAction = via.get(p.viaService) ?? new Map<string, Set<string>>();
      const set = byAction.get(p.action) ?? new Set<string>();
      for (const r of p.resources) set.add(r);
      byAction.set(p.action, set);
      via.set(p.viaService, byAction);
      continue;
    }
    for (const r of p.resources) {
      const into = needsResourceAccount(r) ? accountBound : plain;
      const set = into.get(p.action) ?? new Set<string>();
      set.add(r);
      into.set(p.action, set);
    }
  }
  const statements: PolicyStatement[] = [];
  for (const g of group(plain)) {
    statements.push({ Effect: 'Allow', Action: one(g.actions), Resource: one(g.resources) });
  }
  const accounts = [...new Set(options.resourceAccounts)].sort();
  for (const g of group(accountBound)) {
    statements.push({
      Effect: 'Allow',
      Action: one(g.actions),
      Resource: one(g.resources),
      Condition: { StringEquals: { 'aws:ResourceAccount': one(accounts) } },
    });
  }
  for (const [service, byAction] of [...via].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const g of group(byAction)) {
      statements.push({ Effect: 'Allow', Action: one(g.actions), Resource: one(g.resources), Condition: { StringEquals: { 'kms:ViaService': service } } });
    }
  }
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * The compact JSON sent to STS. Refuses (GuardError `policy_too_large`, HTTP 403) rather than widen when the
 * exact policy does not fit AWS's limit: a broader policy would let the session do more than the call needs.
 */
export function buildSessionPolicy(permissions: readonly Permission[], options: SessionPolicyOptions): string {
  const json = JSON.stringify(sessionPolicyFor(permissions, options));
  if (json.length > SESSION_POLICY_MAX_CHARS) {
    throw new GuardError(
      'policy_too_large',
      `the session policy for this call needs ${json.length} characters, more than AWS's limit of ${SESSION_POLICY_MAX_CHARS}; split the call into smaller ones`,
      { details: { length: json.length, limit: SESSION_POLICY_MAX_CHARS } },
    );
  }
  return json;
}
