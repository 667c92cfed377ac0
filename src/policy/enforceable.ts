import { RISK_SIGNALS, type AccessLevel, type ParsedInvocation, type Permission, type RiskSignal } from '../invocation/types.js';
import { bucketForAction, EFFECT_RANK, riskMask, type CompiledRule, type GlobSet, type PolicySet } from './compiled.js';
import { evalCondition, type CompiledCondition } from './conditions.js';
import { crossAccount, explainDecision, matchPermission } from './decide.js';
import { MAX_MATCH_INPUT } from './glob.js';
import { paramPins, regionPinned, type ParamPin } from './session-pins.js';
import type { Caller, Effect, TargetInfo } from './types.js';

/**
 * Does the grant's session policy enforce everything its decision depended on? (issue 7, "The broker chooses where
 * a call runs": `auto` hands credentials out only then; otherwise the call runs on the broker.)
 *
 * Credentials handed out can sign ANY request the session policy allows, from any client — not only the decided
 * argv. So the question is whether every such request would have been decided no more strictly than the decided
 * call, and needing no other approvers. For each permission of the call (an action on its resources) every rule
 * that can apply to it is classified against the requests the session policy allows:
 *  - facts the same for every such request are evaluated on the decided call: the action and resources (the
 *    policy's Action/Resource), resource accounts (ARNs, `aws:ResourceAccount`), the caller and the target (the
 *    session is theirs), the region where `aws:RequestedRegion` or `kms:ViaService` pins it, and parameters pinned
 *    to a condition key (src/policy/session-pins.ts `paramPins`: evaluated over every value the pin admits);
 *  - everything else may differ: other parameters, the CLI command and kind, risk signals (the parser derives them
 *    from parameters, files and commands), the region of a global service. A rule that depends on one of these is
 *    assumed to match some permitted requests and not others.
 * Not enforceable when such a rule could make a permitted request stricter than the decided call: a deny or
 * approve above the permission's decided effect, or an allow the decided permission relied on whose absence leaves
 * a stricter default. Nor when the call needs approval: an approval covers one exact call once, and credentials
 * can repeat it or change its unpinned parameters for the session's lifetime.
 *
 * Two facts are evaluated on the decided call although a holder of the credentials chooses them: global options
 * (`--endpoint-url`, `--profile`, `--debug`…) and the signals derived from them (endpoint_override,
 * credential_override). They say how the local CLI would send or reveal the session, not what AWS lets the session
 * do; once the credentials are handed out the holder picks the client anyway, and the session policy bounds them
 * whatever the client. `--region` among the global options is the region, treated as above.
 */

export interface EnforceabilityInput {
  /** The compiled policy set `decide()` uses. */
  policy: PolicySet;
  invocation: ParsedInvocation;
  caller: Caller;
  target: TargetInfo;
}

export interface Enforceability {
  enforceable: boolean;
  /** Why not, one human-readable line per rule and permission (empty when enforceable). */
  reasons: string[];
}

/** Signals the parser derives only from global options (src/invocation/risks.ts): see the module comment. */
const LOCAL_SIGNALS: readonly RiskSignal[] = ['endpoint_override', 'credential_override'];
const LOCAL_MASK = riskMask(LOCAL_SIGNALS);

type State = 'never' | 'always' | 'maybe';

interface Classified {
  state: State;
  /** Whether the rule's invocation-level conditions hold for the decided call. */
  decided: boolean;
  /** What it depends on that the session policy cannot enforce (for a `maybe`). */
  depends: string[];
}

function globTest(gs: GlobSet, s: string, overLong: boolean): boolean {
  if (s.length > MAX_MATCH_INPUT) return overLong;
  return gs.re.test(s);
}

/**
 * The pin that holds every value a condition's path can reach: only a path that IS the pinned top-level member
 * (`ACL`). `**.ACL` also reaches members nested anywhere, JSON documents inside strings included (conditions.ts),
 * which no condition key pins.
 */
function pinFor(c: CompiledCondition, pins: ParamPin[]): ParamPin | undefined {
  if (c.segments.length !== 1) return undefined;
  return pins.find((p) => p.pin.param.toLowerCase() === c.segments[0]);
}

function classify(r: CompiledRule, p: Permission, input: EnforceabilityInput, pins: ParamPin[], crossFixed: boolean): Classified {
  const inv = input.invocation;
  const loose = r.loose;
  const depends: string[] = [];
  let decided = true;
  let never = false;
  /** One condition: its value for the decided call and whether permitted requests can differ. */
  const cond = (value: boolean, variable: string | null) => {
    decided &&= value;
    if (variable !== null) depends.push(variable);
    else if (!value) never = true;
  };

  if (r.kinds) {
    // Requests signed with the session are API calls, whichever client (or CLI customization) sends them.
    const api = r.kinds.has('api');
    const custom = r.kinds.has('custom');
    if (!api && !custom) cond(false, null);
    else cond(r.kinds.has(inv.kind), api && custom ? null : 'the kind of call (api or custom command)');
  }
  if (r.commands) {
    const cmd = inv.subcommand ? `${inv.command} ${inv.subcommand}` : inv.command;
    cond(globTest(r.commands, cmd, loose), `the CLI command (${r.commands.globs.join(', ')})`);
  }
  const risks = riskMask(inv.risks);
  if (r.risks !== undefined) {
    const hit = (risks & r.risks) !== 0;
    if ((risks & r.risks & LOCAL_MASK) !== 0) cond(true, null);
    else if ((r.risks & ~LOCAL_MASK) === 0) cond(hit, null);
    else cond(hit, `risk signal ${names(r.risks & ~LOCAL_MASK)}`);
  }
  if (r.risksAll !== undefined) {
    const all = (risks & r.risksAll) === r.risksAll;
    if ((r.risksAll & LOCAL_MASK & ~risks) !== 0) cond(false, null);
    else if ((r.risksAll & ~LOCAL_MASK) === 0) cond(all, null);
    else cond(all, `risk signals ${names(r.risksAll & ~LOCAL_MASK)}`);
  }
  // The session belongs to this caller in this target: fixed for every request it signs.
  if (r.subjects) cond(globTest(r.subjects, input.caller.subject, loose), null);
  if (r.notSubjects) cond(!globTest(r.notSubjects, input.caller.subject, !loose), null);
  if (r.groups) cond(input.caller.groups.some((g) => globTest(r.groups!, g, loose)), null);
  if (r.notGroups) cond(!input.caller.groups.some((g) => globTest(r.notGroups!, g, !loose)), null);
  if (r.accounts) cond(globTest(r.accounts, input.target.account, loose), null);
  if (r.targets) cond(globTest(r.targets, input.target.name, loose), null);
  const pinnedRegion = regionPinned(p, p.region ?? inv.region) && (p.region ?? inv.region) === inv.region;
  const regionDepends = `the region (${p.action} is not held to ${inv.region} by the session policy${p.viaService ? '' : ': a global service, where aws:RequestedRegion is us-east-1'})`;
  if (r.regions) cond(globTest(r.regions, inv.region, loose), pinnedRegion ? null : regionDepends);
  if (r.crossAccount !== undefined) {
    cond(crossAccount({ invocation: inv, caller: input.caller, target: input.target }) === r.crossAccount, crossFixed ? null : 'which of its resources a request names (some are in another account)');
  }
  if (r.params) {
    for (const c of r.params) {
      const value = evalCondition(c, inv.params, loose, {});
      const pin = pinFor(c, pins);
      if (!pin) {
        cond(value, `parameter ${c.spec.path}`);
        continue;
      }
      // Pinned: a permitted request carries one of the pin's values, and nothing else reaches this path.
      const outcomes = new Set(pin.variants.map((v) => evalCondition(c, v === undefined ? {} : { [pin.pin.param]: v }, loose, {})));
      if (outcomes.size === 1) cond([...outcomes][0]!, null);
      else cond(value, `parameter ${c.spec.path} beyond what ${pin.pin.key} pins`);
    }
  }
  if (r.globals) {
    for (const c of r.globals) {
      const value = evalCondition(c, inv.globals, loose, {});
      const region = c.segments[0] === 'region';
      cond(value, region && !pinnedRegion ? regionDepends : null);
    }
  }
  return { state: never ? 'never' : depends.length ? 'maybe' : 'always', decided: decided && !never, depends };
}

function names(mask: number): string {
  return RISK_SIGNALS.filter((s) => (mask & riskMask([s])) !== 0).join(', ');
}

const VERB: Record<Effect, string> = { deny: 'deny', approve: 'require approval for', allow: 'allow' };

/** See the module comment. Exact export shape shared with the `runs` branch (issue 7). */
export function sessionPolicyEnforces(args: EnforceabilityInput): Enforceability {
  const { policy, invocation: inv } = args;
  const perms = inv.permissions;
  if (perms.length === 0) {
    // No permission: the session policy denies everything (DENY_ALL); only permissionless calls remain.
    return { enforceable: true, reasons: [] };
  }
  const decision = explainDecision(policy, { invocation: inv, caller: args.caller, target: args.target });
  if (decision.decision === 'deny') return { enforceable: false, reasons: [`the call is denied (${decision.reason}): no session is issued`] };
  const reasons = new Set<string>();
  if (decision.decision === 'approve') {
    // An approval is bound to this exact call — its canonical argv and decoded parameters — and lets it run once
    // (README, "Approvals"). Credentials outlive that: for the session's lifetime they could repeat the call, or
    // vary whatever parameter the session policy does not pin, all under an approval given for one call.
    const by = decision.rule ? `rule ${decision.rule}${decision.source ? ` (${decision.source})` : ''}` : `the default${decision.source ? ` (${decision.source})` : ''}`;
    reasons.add(`the call needs approval (${by}): an approval covers this exact call once, which a session cannot enforce — its credentials could repeat it or change its unpinned parameters`);
  }

  // crossAccount (decide.ts: some resource ARN names an account other than the target's) is fixed when no resource
  // names another account (S3 ARNs name none, and aws:ResourceAccount holds them to the target), or when every
  // resource names the same other account — and no resource is `*` or wildcards its account, through which a
  // permitted request could name any account.
  const accountOf = (arn: string) => /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1];
  const open = perms.some((p) => p.resources.some((arn) => arn === '*' || /[*?]/.test(arn.split(':', 5)[4] ?? '')));
  const foreign = inv.resources.some((arn) => (accountOf(arn) ?? args.target.account) !== args.target.account);
  const firstForeign = inv.resources.map(accountOf).find((a) => a !== undefined && a !== args.target.account);
  const crossFixed = !open && (!foreign || perms.every((p) => p.resources.every((arn) => accountOf(arn) === firstForeign)));

  const def = policy.default;
  for (let i = 0; i < perms.length; i++) {
    const p = perms[i]!;
    const decided = decision.permissions[i]!.decision;
    const rank = EFFECT_RANK[decided];
    const access = inv.accessLevels[p.action] as AccessLevel | undefined;
    const prefix = p.action.slice(0, p.action.indexOf(':')).toLowerCase();
    const bucket = bucketForAction(policy, prefix, p.action, access);
    const pins = paramPins(p.action, inv);
    const rules: { r: CompiledRule; c: Classified }[] = [];
    for (const eff of ['deny', 'approve', 'allow'] as const) {
      for (const r of bucket[eff]) {
        if (!matchPermission(r, p)) continue;
        const c = classify(r, p, args, pins, crossFixed);
        if (c.state !== 'never') rules.push({ r, c });
      }
    }
    const anyAlways = rules.some(({ c }) => c.state === 'always');
    const where = (r: CompiledRule) => `rule ${r.id} (${r.source})`;
    for (const { r, c } of rules) {
      if (c.state === 'always' && EFFECT_RANK[r.effect] > rank) {
        // Cannot happen while this analysis and decide() agree; if they ever do not, say so rather than guess.
        reasons.add(`${where(r)} applies to requests the session policy permits but did not decide this call: it could ${VERB[r.effect]} ${p.action}`);
      }
      if (c.state !== 'maybe') continue;
      if (EFFECT_RANK[r.effect] > rank) {
        reasons.add(`${where(r)} depends on ${c.depends.join(' and ')}, which the session policy cannot enforce: it could ${VERB[r.effect]} ${p.action}`);
      }
    }
    // A stricter default behind an allow the permission relied on that permitted requests need not meet.
    if (!anyAlways && EFFECT_RANK[def.effect] > rank) {
      const before = reasons.size;
      for (const { r, c } of rules) {
        if (r.effect === 'allow' && c.decided) {
          reasons.add(`${where(r)} allows ${p.action} only on ${c.depends.join(' and ')}, which the session policy cannot enforce: without it the default (${def.effect}) applies`);
        }
      }
      // Fail closed should the decided allow not be found among the rules (the analysis and decide() disagree).
      if (reasons.size === before) reasons.add(`a permitted request for ${p.action} could fall to the default (${def.effect})`);
    }
  }
  return { enforceable: reasons.size === 0, reasons: [...reasons] };
}
