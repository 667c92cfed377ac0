import type { ParsedInvocation } from '../invocation/types.js';
import type { PolicySet } from './compiled.js';
import type { Caller, TargetInfo } from './types.js';

/**
 * Whether the session policy (actions × resources, src/broker/session-policy.ts) enforces everything a decision
 * on this call depended on — the broker's `execution: auto` hands credentials out only then. If some rule looks
 * at what the session policy cannot express (parameters, command names, risk signals, regions, global options),
 * credentials from an allowed variant would also perform a variant that rule would have decided differently
 * (issue 7), so the call must run on the broker.
 *
 * Deliberately conservative: any such rule anywhere in the policy set counts, whether or not it could match this
 * call. (A finer analysis, per action and with IAM condition keys, replaces this body; the signature stays.)
 */
export function sessionPolicyEnforces(args: {
  policy: PolicySet;
  invocation: ParsedInvocation;
  caller: Caller;
  target: TargetInfo;
}): { enforceable: boolean; reasons: string[] } {
  const reasons: string[] = [];
  for (const r of args.policy.rules) {
    const what = [
      r.params?.length ? 'parameters' : null,
      r.commands ? 'commands' : null,
      r.risks !== undefined || r.risksAll !== undefined ? 'risk signals' : null,
      r.regions ? 'regions' : null,
      r.globals?.length ? 'global options' : null,
      r.kinds ? 'command kinds' : null,
    ].filter((x): x is string => x !== null);
    if (what.length) reasons.push(`rule ${r.id} (${r.source}) depends on ${what.join(', ')}, which the session policy cannot enforce`);
  }
  return { enforceable: reasons.length === 0, reasons };
}
