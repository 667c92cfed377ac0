import type { AccessLevel, ParsedInvocation, Permission } from '../invocation/types.js';
import { evalCondition, type Scratch } from './conditions.js';
import { bucketForAction, EFFECT_RANK, riskMask, type CompiledRule, type GlobSet, type PolicySet } from './compiled.js';
import { globCovers, globsIntersect, hasWildcard, MAX_MATCH_INPUT } from './glob.js';
import type { ApprovalRequirement, Decision, DecisionInput, Effect } from './types.js';

/**
 * The decision: every permission the call needs gets the effect of the strongest rule that matches it
 * (deny > approve > allow), or the default effect when none does; the call gets the strongest effect over
 * its permissions. So one denied permission denies the call, and the call is allowed only when every
 * permission is allowed — anything not covered falls to the default, which is never weaker than what a
 * rule would have said (docs/policies.md, "How a decision is made").
 */

function test(gs: GlobSet, s: string, overLong: boolean): boolean {
  // Pathologically long inputs never reach a RegExp; the answer is the fail-closed one for the caller.
  if (s.length > MAX_MATCH_INPUT) return overLong;
  return gs.re.test(s);
}

function anyTest(gs: GlobSet, values: readonly string[], overLong: boolean): boolean {
  for (let i = 0; i < values.length; i++) if (test(gs, values[i]!, overLong)) return true;
  return false;
}

/**
 * The state of one decision, passed down and dropped at its end: nothing of a decision outlives it in this module,
 * so `decide` is reentrant. (The policy set's generation-stamped memo is the one reuse; a decision never runs
 * code that could start another on the same set.)
 */
interface DecisionRun {
  set: PolicySet;
  input: DecisionInput;
  /** Risk signals of the invocation, as a bit mask. */
  risks: number;
  /** Parsed JSON parameters and key indexes, shared by the conditions of this decision only. */
  scratch: Scratch;
}

/** Invocation-level conditions: command, kind, risks, params, globals, caller and target. */
function matchInvocation(r: CompiledRule, run: DecisionRun): boolean {
  const { input, risks, scratch } = run;
  const inv = input.invocation;
  const loose = r.loose;
  if (r.kinds && !r.kinds.has(inv.kind)) return false;
  if (r.commands) {
    const cmd = inv.subcommand ? `${inv.command} ${inv.subcommand}` : inv.command;
    if (!test(r.commands, cmd, loose)) return false;
  }
  if (r.risks !== undefined && (risks & r.risks) === 0) return false;
  if (r.risksAll !== undefined && (risks & r.risksAll) !== r.risksAll) return false;
  if (r.subjects && !test(r.subjects, input.caller.subject, loose)) return false;
  if (r.notSubjects && test(r.notSubjects, input.caller.subject, !loose)) return false;
  if (r.groups && !anyTest(r.groups, input.caller.groups, loose)) return false;
  if (r.notGroups && anyTest(r.notGroups, input.caller.groups, !loose)) return false;
  if (r.accounts && !test(r.accounts, input.target.account, loose)) return false;
  if (r.targets && !test(r.targets, input.target.name, loose)) return false;
  if (r.regions && !test(r.regions, inv.region, loose)) return false;
  if (r.crossAccount !== undefined && crossAccount(input) !== r.crossAccount) return false;
  if (r.params) for (const c of r.params) if (!evalCondition(c, inv.params, loose, scratch)) return false;
  if (r.globals) for (const c of r.globals) if (!evalCondition(c, inv.globals, loose, scratch)) return false;
  return true;
}

/** Does any resource ARN name an account (field 5, `arn:partition:service:region:account:…`) other than the target's? */
export function crossAccount(input: DecisionInput): boolean {
  const own = input.target.account;
  for (const arn of input.invocation.resources) {
    const parts = arn.split(':', 6);
    const account = parts[4];
    if (parts[0] === 'arn' && account && /^\d{12}$/.test(account) && account !== own) return true;
  }
  return false;
}

function memoInvocation(r: CompiledRule, run: DecisionRun): boolean {
  const set = run.set;
  if (set.memoStamp[r.index] === set.generation) return set.memoValue[r.index] === 1;
  const v = matchInvocation(r, run);
  set.memoStamp[r.index] = set.generation;
  set.memoValue[r.index] = v ? 1 : 0;
  return v;
}

function matchResources(r: CompiledRule, gs: GlobSet, p: Permission): boolean {
  const res = p.resources;
  if (r.resourcesAny) return true;
  if (!p.derived) {
    // Resources the parser could not derive could be anything: a restrictive rule must assume they are its
    // resources, an allow rule that is scoped to resources must not cover them.
    return r.loose;
  }
  if (res.length === 0) return false;
  if (res.length === 1 && res[0] === '*') {
    // Derived `*`: the action supports no resource scoping (IAM requires `"Resource": "*"` for it), so a
    // resource-scoped rule does not apply to it — as in IAM itself.
    return false;
  }
  if (r.loose) {
    for (const arn of res) {
      // A literal match settles it; otherwise a wildcard ARN may still overlap the glob.
      if (test(gs, arn, true) || (hasWildcard(arn) && gs.globs.some((g) => globsIntersect(g, arn, true)))) return true;
    }
    return false;
  }
  for (const arn of res) {
    // Covering a wildcard ARN implies matching it read literally, so the RegExp is a cheap first filter.
    if (!test(gs, arn, false)) return false;
    if (hasWildcard(arn) && !gs.globs.some((g) => globCovers(g, arn, false))) return false;
  }
  return true;
}

/** Rules reach here from bucketForAction, which has already checked actions, notActions and access. */
export function matchPermission(r: CompiledRule, p: Permission): boolean {
  return !r.resources || matchResources(r, r.resources, p);
}

function firstMatch(run: DecisionRun, rules: CompiledRule[], p: Permission | null): CompiledRule | null {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (p === null ? r.perPermission : !matchPermission(r, p)) continue;
    if (memoInvocation(r, run)) return r;
  }
  return null;
}

const prefixes = new Map<string, string>();
/** Lower-cased service prefix of an action, memoised (a pure function's cache; actions come from a finite catalog). */
function prefixOf(action: string): string {
  let p = prefixes.get(action);
  if (p === undefined) {
    const colon = action.indexOf(':');
    p = (colon < 0 ? action : action.slice(0, colon)).toLowerCase();
    if (prefixes.size < 65536) prefixes.set(action, p);
  }
  return p;
}

/** What decided one permission (for `explain`). */
export interface PermissionDecision {
  action: string;
  resources: string[];
  derived: boolean;
  accessLevel: AccessLevel | null;
  decision: Effect;
  rule: string | null;
}

export interface DetailedDecision extends Decision {
  permissions: PermissionDecision[];
}

/**
 * Strictest combination of approval requirements: every requirement must hold. The single `{groups, count}`
 * that expresses it is the intersection of the groups with the largest count; when the groups do not
 * intersect, `groups` is empty (no approver qualifies for a consumer that reads only `groups`/`count`, which
 * fails closed) and `requirements` lists each one for consumers that check them all.
 */
function sameRequirement(a: ApprovalRequirement, b: ApprovalRequirement): boolean {
  if (a === b) return true;
  if (a.count !== b.count || a.groups.length !== b.groups.length) return false;
  return a.groups.every((g) => b.groups.includes(g)) && b.groups.every((g) => a.groups.includes(g));
}

export function combineApprovals(reqs: ApprovalRequirement[]): ApprovalRequirement {
  const distinct: ApprovalRequirement[] = [];
  for (const r of reqs) if (!distinct.some((d) => sameRequirement(d, r))) distinct.push(r);
  if (distinct.length === 1) return { groups: [...distinct[0]!.groups], count: distinct[0]!.count };
  let groups = distinct[0]!.groups;
  for (const d of distinct.slice(1)) groups = groups.filter((g) => d.groups.includes(g));
  const count = Math.max(...distinct.map((d) => d.count));
  return { groups: [...new Set(groups)], count, requirements: distinct.map((d) => ({ groups: [...d.groups], count: d.count })) };
}

function decideInternal(set: PolicySet, input: DecisionInput, details: PermissionDecision[] | null): Decision {
  const inv: ParsedInvocation = input.invocation;
  set.generation = (set.generation + 1) >>> 0 || 1;
  const run: DecisionRun = { set, input, risks: riskMask(inv.risks), scratch: {} };
  const def = set.default;
  const perms = inv.permissions;

  if (perms.length === 0) {
    if (inv.kind === 'api' || inv.kind === 'custom') {
      // A call to AWS for which no IAM action was derived is not understood: never allowed.
      return { decision: 'deny', rule: null, reason: 'no IAM action could be derived for this call (fail closed)' };
    }
    // help, skeletons, configure…: only rules without per-permission conditions can apply.
    for (const eff of ['deny', 'approve', 'allow'] as const) {
      const r = firstMatch(run, set.global[eff], null);
      if (r) return ruleDecision(r, r.approval ? [r.approval] : []);
    }
    return defaultDecision(set);
  }

  let worstRank = 0;
  let worstRule: CompiledRule | null = null;
  let worstAction = '';
  let approvals: ApprovalRequirement[] | null = null;

  for (let i = 0; i < perms.length; i++) {
    const p = perms[i]!;
    const access = inv.accessLevels[p.action] as AccessLevel | undefined;
    const bucket = bucketForAction(set, prefixOf(p.action), p.action, access);
    let rule = firstMatch(run, bucket.deny, p);
    if (!rule) {
      rule = firstMatch(run, bucket.approve, p);
      if (rule) {
        approvals ??= [];
        // Every approve rule that matches contributes its requirement (strictest wins, see combineApprovals).
        for (const r of bucket.approve) {
          if (r.index >= rule.index && matchPermission(r, p) && memoInvocation(r, run)) approvals.push(r.approval!);
        }
      } else {
        rule = firstMatch(run, bucket.allow, p);
      }
    }
    const effect: Effect = rule ? rule.effect : def.effect;
    if (!rule) {
      if (def.effect === 'approve') (approvals ??= []).push(def.approval!);
    }
    const rank = EFFECT_RANK[effect];
    if (details) {
      details.push({
        action: p.action,
        resources: p.resources,
        derived: p.derived,
        accessLevel: access ?? null,
        decision: effect,
        rule: rule ? rule.id : null,
      });
    }
    // The reported rule is the first that reached the strongest effect; a rule explains better than the default.
    if (rank > worstRank || (rank === worstRank && worstRule === null && rule !== null)) {
      worstRank = rank;
      worstRule = rule;
      worstAction = p.action;
    }
    if (rank === 3 && !details) break; // a deny cannot be outranked
  }

  const effect: Effect = worstRank === 3 ? 'deny' : worstRank === 2 ? 'approve' : 'allow';
  let d: Decision;
  if (worstRule) d = ruleDecision(worstRule, []);
  else d = defaultDecision(set);
  d.decision = effect;
  d.action = worstAction;
  if (effect === 'approve') d.approval = combineApprovals(approvals ?? []);
  else delete d.approval;
  return d;
}

function ruleDecision(r: CompiledRule, approvals: ApprovalRequirement[]): Decision {
  const d: Decision = { decision: r.effect, rule: r.id, reason: r.reason, source: r.source };
  if (r.effect === 'approve') d.approval = combineApprovals(approvals.length ? approvals : [r.approval!]);
  return d;
}

function defaultDecision(set: PolicySet): Decision {
  const def = set.default;
  const d: Decision = { decision: def.effect, rule: null, reason: def.reason };
  if (def.source) d.source = def.source;
  if (def.effect === 'approve') d.approval = combineApprovals([def.approval!]);
  return d;
}

/** Decides one invocation. Reentrant, pure apart from the set's reusable memo; safe to call at a high rate. */
export function decide(set: PolicySet, input: DecisionInput): Decision {
  return decideInternal(set, input, null);
}

/** `decide` plus what decided each permission, for `explain` and `policy test` reports. */
export function explainDecision(set: PolicySet, input: DecisionInput): DetailedDecision {
  const permissions: PermissionDecision[] = [];
  const d = decideInternal(set, input, permissions);
  return { ...d, permissions };
}
