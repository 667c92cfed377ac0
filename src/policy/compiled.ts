import { RISK_SIGNALS, type AccessLevel, type RiskSignal } from '../invocation/types.js';
import { compileCondition, type CompiledCondition } from './conditions.js';
import { compileGlobs, hasWildcard } from './glob.js';
import type { RuleSpec } from './schema.js';
import type { ApprovalRequirement, Effect, MaskingRules } from './types.js';

/** Strength of an effect: deny beats approve beats allow (docs/policies.md, "Precedence"). */
export const EFFECT_RANK: Record<Effect, number> = { allow: 1, approve: 2, deny: 3 };

/** Globs and their RegExp, compiled on first use (a command deciding one call touches few of them). */
export class GlobSet {
  #re: RegExp | undefined;
  constructor(
    readonly globs: string[],
    private readonly caseInsensitive: boolean,
  ) {}
  get re(): RegExp {
    return (this.#re ??= compileGlobs(this.globs, this.caseInsensitive));
  }
}

/** A rule ready for the hot path: every glob is one anchored RegExp, every list a Set. */
export interface CompiledRule {
  /** Position in the merged rule list (file order, then rule order). */
  index: number;
  id: string;
  effect: Effect;
  reason: string;
  /** `file:line` of the rule. */
  source: string;
  file: string;
  /** Index of the rule in its file's `rules` list. */
  srcIndex: number;
  line: number;
  col: number;
  approval?: ApprovalRequirement;
  /** Restrictive rules (deny, approve) match loosely, allow rules strictly; see docs/policies.md. */
  loose: boolean;
  spec: RuleSpec;
  /** Matchers: undefined (or absent) means the rule does not constrain that part of the call. */
  actions?: GlobSet | undefined;
  notActions?: GlobSet | undefined;
  access?: Set<AccessLevel> | undefined;
  resources?: GlobSet | undefined;
  /** True when some resource glob is `*`, which also matches resources that could not be derived. */
  resourcesAny: boolean;
  commands?: GlobSet | undefined;
  kinds?: Set<string> | undefined;
  /** Bit masks over RISK_SIGNALS (see riskMask). */
  risks?: number | undefined;
  risksAll?: number | undefined;
  params?: CompiledCondition[] | undefined;
  globals?: CompiledCondition[] | undefined;
  subjects?: GlobSet | undefined;
  notSubjects?: GlobSet | undefined;
  groups?: GlobSet | undefined;
  notGroups?: GlobSet | undefined;
  accounts?: GlobSet | undefined;
  targets?: GlobSet | undefined;
  regions?: GlobSet | undefined;
  /** true: some resource ARN names an account other than the target's; false: none does. */
  crossAccount?: boolean | undefined;
  /** Has per-permission conditions (actions, notActions, access, resources). */
  perPermission: boolean;
  /** Lower-cased service prefixes this rule can match, or null for any (used to index rules). */
  prefixes: string[] | null;
}

export interface DefaultEffect {
  effect: Effect;
  reason: string;
  approval?: ApprovalRequirement;
  /** `file:line` where it was set, absent for the built-in default. */
  source?: string;
}

/** Rules of one effect that can apply to a service prefix, in rule order. */
export interface Bucket {
  deny: CompiledRule[];
  approve: CompiledRule[];
  allow: CompiledRule[];
}

export interface PolicySet {
  files: string[];
  rules: CompiledRule[];
  default: DefaultEffect;
  masking: MaskingRules;
  /** Rules that apply to every prefix, split by effect. */
  global: Bucket;
  byPrefix: Map<string, CompiledRule[]>;
  /** Lazily merged global + prefix buckets. */
  bucketCache: Map<string, Bucket>;
  /** action → access level → the rules whose action and access conditions hold for that pair. */
  actionCache: Map<string, Map<string, Bucket>>;
  /** Per-decision memo of invocation-level rule matches (generation-stamped, so no reset per call). */
  memoStamp: Uint32Array;
  memoValue: Uint8Array;
  generation: number;
}

const RISK_BIT = new Map<string, number>(RISK_SIGNALS.map((r, i) => [r, 1 << i]));

/** Risk signals as a bit mask (RISK_SIGNALS has fewer than 31 names); unknown names contribute nothing. */
export function riskMask(risks: readonly (RiskSignal | string)[]): number {
  let m = 0;
  for (let i = 0; i < risks.length; i++) m |= RISK_BIT.get(risks[i]!) ?? 0;
  return m;
}

function globSet(globs: string[] | undefined, ci: boolean): GlobSet | undefined {
  return globs === undefined ? undefined : new GlobSet(globs, ci);
}

function prefixesOf(actions: string[] | undefined): string[] | null {
  if (actions === undefined) return null;
  const out = new Set<string>();
  for (const a of actions) {
    const colon = a.indexOf(':');
    if (colon < 0) return null; // `*`
    const p = a.slice(0, colon);
    if (hasWildcard(p)) return null;
    out.add(p.toLowerCase());
  }
  return [...out];
}

export function compileRule(
  spec: RuleSpec,
  index: number,
  where: { file: string; line: number; col: number },
  srcIndex = index,
): CompiledRule {
  const loose = spec.effect !== 'allow';
  const m = spec.match;
  // Exclusions (not_*) use the opposite strictness: a deny's exclusion must be hard to hit, an allow's easy.
  const rule: CompiledRule = {
    index,
    id: spec.id,
    effect: spec.effect,
    reason: spec.reason,
    source: `${where.file}:${where.line}`,
    file: where.file,
    srcIndex,
    line: where.line,
    col: where.col,
    loose,
    spec,
    // IAM compares action names case-insensitively, whatever the effect.
    actions: globSet(m.actions, true),
    notActions: globSet(m.notActions, true),
    access: m.access ? new Set(m.access) : undefined,
    resources: globSet(m.resources, loose),
    resourcesAny: (m.resources ?? []).includes('*'),
    commands: globSet(m.commands, loose),
    kinds: m.kinds ? new Set(m.kinds) : undefined,
    risks: m.risks ? riskMask(m.risks) : undefined,
    risksAll: m.risksAll ? riskMask(m.risksAll) : undefined,
    params: m.params?.map((c) => compileCondition(c, loose)),
    globals: m.globals?.map((c) => compileCondition(c, loose)),
    subjects: globSet(m.subjects, loose),
    notSubjects: globSet(m.notSubjects, !loose),
    groups: globSet(m.groups, loose),
    notGroups: globSet(m.notGroups, !loose),
    accounts: globSet(m.accounts, false),
    targets: globSet(m.targets, loose),
    regions: globSet(m.regions, loose),
    crossAccount: m.crossAccount,
    perPermission: !!(m.actions || m.notActions || m.access || m.resources),
    prefixes: prefixesOf(m.actions),
  };
  if (spec.approval) rule.approval = { groups: spec.approval.groups, count: spec.approval.count };
  return rule;
}

export function emptyBucket(): Bucket {
  return { deny: [], approve: [], allow: [] };
}

export function buildSet(files: string[], rules: CompiledRule[], def: DefaultEffect, masking: MaskingRules): PolicySet {
  const global = emptyBucket();
  const byPrefix = new Map<string, CompiledRule[]>();
  for (const r of rules) {
    if (r.prefixes === null) global[r.effect].push(r);
    else
      for (const p of r.prefixes) {
        let list = byPrefix.get(p);
        if (!list) byPrefix.set(p, (list = []));
        list.push(r);
      }
  }
  return {
    files,
    rules,
    default: def,
    masking,
    global,
    byPrefix,
    bucketCache: new Map(),
    actionCache: new Map(),
    memoStamp: new Uint32Array(rules.length),
    memoValue: new Uint8Array(rules.length),
    generation: 0,
  };
}

/** Global rules merged with the prefix's own rules, kept in rule order (the first match is the one reported). */
export function bucketFor(set: PolicySet, prefix: string): Bucket {
  let b = set.bucketCache.get(prefix);
  if (b) return b;
  const own = set.byPrefix.get(prefix);
  if (!own) {
    b = set.global;
  } else {
    b = emptyBucket();
    for (const eff of ['deny', 'approve', 'allow'] as const) {
      b[eff] = [...set.global[eff], ...own.filter((r) => r.effect === eff)].sort((x, y) => x.index - y.index);
    }
  }
  // Bound the cache: prefixes come from parsed input; a hostile stream of unknown prefixes must not grow it.
  if (set.bucketCache.size < 4096) set.bucketCache.set(prefix, b);
  return b;
}

/** Do a rule's action and access-level conditions hold for this action (fixed per action, so cached)? */
function actionConditionsHold(r: CompiledRule, action: string, access: AccessLevel | undefined): boolean {
  if (r.actions && !r.actions.re.test(action)) return false;
  if (r.notActions && r.notActions.re.test(action)) return false;
  // An action without a known access level matches restrictive rules and never allow rules.
  if (r.access && (access === undefined ? !r.loose : !r.access.has(access))) return false;
  return true;
}

/**
 * The rules that can apply to a permission with this action and access level, by effect and in rule order:
 * action globs and access levels are settled here once per (action, level), so deciding only checks resources
 * and invocation-level conditions.
 */
export function bucketForAction(set: PolicySet, prefix: string, action: string, access: AccessLevel | undefined): Bucket {
  const levelKey = access ?? '';
  let byLevel = set.actionCache.get(action);
  const hit = byLevel?.get(levelKey);
  if (hit) return hit;
  const base = bucketFor(set, prefix);
  const b: Bucket = {
    deny: base.deny.filter((r) => actionConditionsHold(r, action, access)),
    approve: base.approve.filter((r) => actionConditionsHold(r, action, access)),
    allow: base.allow.filter((r) => actionConditionsHold(r, action, access)),
  };
  // Bounded: actions come from the catalog, but the cache must not grow with hostile input.
  if (set.actionCache.size < 20000) {
    if (!byLevel) set.actionCache.set(action, (byLevel = new Map()));
    byLevel.set(levelKey, b);
  }
  return b;
}
