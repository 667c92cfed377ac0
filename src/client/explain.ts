import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { cliRelease } from '../invocation/cli-release.js';
import { parseInvocation } from '../invocation/parse.js';
import type { InvocationContext } from '../invocation/types.js';
import { maskArgv } from '../masking/argv.js';
import { explainDecision } from '../policy/decide.js';
import { sessionPolicyEnforces } from '../policy/enforceable.js';
import { loadPoliciesCached } from '../policy/load-cached.js';
import { defaultPolicyPath } from '../policy/paths.js';
import { explanation, type Explanation } from '../policy/render.js';
import type { Caller } from '../policy/types.js';

/** Documented defaults (README, docs/policies.md): a placeholder account nobody owns, the usual region chain. */
export const DEFAULT_ACCOUNT = '000000000000';
export const DEFAULT_REGION = 'us-east-1';

export interface ExplainRequest {
  /** The aws arguments, guard-aws's own options (`--profile NAME`) already taken out. */
  argv: string[];
  /** The AWS CLI release whose command table reads the argv (docs/aws-cli-parsing.md §6.3). */
  cliVersion: string;
  caller: Caller;
  /** The broker target's name, and the account and default region the call is judged in. */
  target: { name: string; account: string; region: string };
  /** Policy files (relative to cwd); none: the shipped default policy. */
  policies: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Which of account, region, subject, target were defaults (shown as such). */
  defaults?: string[];
}

/**
 * How a call would be parsed and decided, without running it: the one implementation behind `guard-aws explain`
 * and the MCP `aws_explain` tool. The argv is echoed with secret parameter values masked, as in transcripts
 * (explanations end up in logs and in a model's context).
 */
/**
 * Where the call would run. explain is local and cannot see the broker's `execution` config, so this is what `auto`
 * (the default for people) would choose with these policies; workloads run on the broker by default, and a
 * broker's config may pin any target or group to `broker` or `local`.
 */
export interface ExecutionExplained {
  mode: 'auto';
  where: 'broker' | 'local';
  reasons: string[];
}

export async function explainInvocation(r: ExplainRequest): Promise<Explanation & { execution: ExecutionExplained }> {
  const policies = r.policies.length ? r.policies : [defaultPolicyPath()];
  const set = await loadPoliciesCached(policies, { readFile: (p) => readFileSync(resolve(r.cwd, p)), env: r.env });
  const cli = cliRelease(r.cliVersion);
  const ctx: InvocationContext = {
    account: r.target.account,
    region: r.target.region,
    cwd: r.cwd,
    env: r.env,
    cliVersion: cli.table,
    ...(cli.exactOptionNames ? { exactOptionNames: true } : {}),
  };
  const inv = parseInvocation(r.argv, ctx);
  const decision = explainDecision(set, { invocation: inv, caller: r.caller, target: r.target });
  const e = explanation(inv, decision, r.caller, r.target, r.defaults ?? []);
  e.argv = maskArgv(inv.argv);
  const enforced = sessionPolicyEnforces({ policy: set, invocation: inv, caller: r.caller, target: r.target });
  const execution: ExecutionExplained = {
    mode: 'auto',
    where: enforced.enforceable ? 'local' : 'broker',
    reasons: [
      "what `execution: auto` (the broker's default for people) would choose; the broker's own config decides (workloads run on the broker by default)",
      ...(enforced.enforceable ? ['the session policy enforces everything the decision depended on'] : enforced.reasons),
    ],
  };
  return { ...e, execution };
}
