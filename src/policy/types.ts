import type { ParsedInvocation } from '../invocation/types.js';

export type Effect = 'allow' | 'approve' | 'deny';

export interface Caller {
  subject: string;
  groups: string[];
  /** Display name / email when the token carries one. */
  name?: string;
}

export interface TargetInfo {
  /** Target name from the broker config (`--profile NAME` picks it). */
  name: string;
  account: string;
  region?: string;
}

export interface DecisionInput {
  invocation: ParsedInvocation;
  caller: Caller;
  target: TargetInfo;
}

export interface ApprovalRequirement {
  /** Groups whose members may approve. */
  groups: string[];
  /** How many distinct approvers are needed. */
  count: number;
  /**
   * Present when several rules asked for approval with different requirements: ALL of them must be met.
   * `groups`/`count` above are then the strictest single requirement (groups common to all, largest count);
   * `groups` is empty when no group is common, so a consumer reading only `groups` fails closed.
   */
  requirements?: { groups: string[]; count: number }[];
}

export interface Decision {
  decision: Effect;
  /** Id of the rule that decided, or null when the default effect applied. */
  rule: string | null;
  reason: string;
  /** Source of the rule (`policies/default.yaml:42`), for explanations. */
  source?: string;
  /** The IAM action whose effect decided the call (absent for calls without actions). */
  action?: string;
  /** Present when decision is `approve`. */
  approval?: ApprovalRequirement;
}

/** Masking rules from policy files, applied by the runner on top of the built-in ones. */
export interface MaskingRules {
  /** JSON/YAML/text keys whose values are secret (case-insensitive). */
  fields: string[];
  /** Regular expression sources; each match is masked. */
  patterns: string[];
}
