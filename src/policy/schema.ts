import { z } from 'zod';
import type { KeyRename } from '../config/deprecated-keys.js';
import { ACCESS_LEVELS, RISK_SIGNALS } from '../invocation/types.js';

/**
 * The policy file format (docs/policies.md is the prose version of this file). The schema checks shape only;
 * meaning (unknown actions, rules that can never match, shadowing) is checked by `policy check`.
 */

const nonEmpty = z.string().min(1, { error: 'must not be empty' });
const globList = z.array(nonEmpty).min(1, { error: 'must list at least one pattern' });
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** Parameter path: dot-separated API member names; `*` any one key or element, `**` any depth, `[]` ignored. */
const paramPath = z
  .string()
  .min(1)
  .regex(/^(\*\*|\*|[A-Za-z0-9_:@-]+(\[\])?)(\.(\*\*|\*|[A-Za-z0-9_:@-]+(\[\])?))*$/, {
    error: 'path must be dot-separated names, `*` or `**` (e.g. `IpPermissions.IpRanges.CidrIp`, `**.CidrIp`)',
  });

const OPERATORS = ['equals', 'in', 'glob', 'exists', 'contains', 'cidrPrefixMax', 'lt', 'le', 'gt', 'ge'] as const;

export const conditionSchema = z
  .strictObject({
    path: paramPath,
    equals: scalar.optional(),
    in: z.array(scalar).min(1).optional(),
    glob: globList.optional(),
    exists: z.boolean().optional(),
    contains: nonEmpty.optional(),
    cidrPrefixMax: z.number().int().min(0).max(128).optional(),
    lt: z.number().optional(),
    le: z.number().optional(),
    gt: z.number().optional(),
    ge: z.number().optional(),
  })
  .refine((c) => OPERATORS.filter((op) => c[op] !== undefined).length === 1, {
    error: `a condition needs exactly one operator: ${OPERATORS.join(', ')}`,
  });
export type ConditionSpec = z.infer<typeof conditionSchema>;

const actionGlob = z
  .string()
  .regex(/^(\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+)$/, { error: 'action must be `prefix:Action` (globs allowed) or `*`' });

export const matchSchema = z.strictObject({
  actions: z.array(actionGlob).min(1).optional(),
  notActions: z.array(actionGlob).min(1).optional(),
  access: z.array(z.enum(ACCESS_LEVELS)).min(1).optional(),
  resources: globList.optional(),
  commands: globList.optional(),
  kinds: z.array(z.enum(['api', 'custom', 'no_api_call', 'local'])).min(1).optional(),
  risks: z.array(z.enum(RISK_SIGNALS)).min(1).optional(),
  risksAll: z.array(z.enum(RISK_SIGNALS)).min(1).optional(),
  params: z.array(conditionSchema).min(1).optional(),
  globals: z.array(conditionSchema).min(1).optional(),
  subjects: globList.optional(),
  notSubjects: globList.optional(),
  groups: globList.optional(),
  notGroups: globList.optional(),
  accounts: globList.optional(),
  targets: globList.optional(),
  regions: globList.optional(),
  crossAccount: z.boolean().optional(),
});
export type MatchSpec = z.infer<typeof matchSchema>;

export const approvalSchema = z.strictObject({
  groups: z.array(nonEmpty).min(1, { error: 'approval needs at least one approver group' }),
  count: z.number().int().min(1).max(10).default(1),
});

export const ruleSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, {
      error: 'id must be 1-128 letters, digits, `.`, `_`, `:` or `-`, starting with a letter or digit',
    }),
    effect: z.enum(['deny', 'approve', 'allow']),
    reason: nonEmpty,
    match: matchSchema.default({}),
    approval: approvalSchema.optional(),
  })
  .refine((r) => (r.effect === 'approve') === (r.approval !== undefined), {
    error: 'an `approve` rule needs `approval: {groups, count}`; other effects must not have one',
  });
export type RuleSpec = z.infer<typeof ruleSchema>;

export const defaultSchema = z.union([
  z.enum(['deny', 'allow']),
  z
    .strictObject({
      effect: z.enum(['deny', 'approve', 'allow']),
      reason: nonEmpty.optional(),
      approval: approvalSchema.optional(),
    })
    .refine((d) => (d.effect === 'approve') === (d.approval !== undefined), {
      error: 'a default of `approve` needs `approval: {groups, count}`; other effects must not have one',
    }),
]);

export const maskingSchema = z.strictObject({
  fields: z.array(nonEmpty).optional(),
  patterns: z.array(nonEmpty).optional(),
});

/**
 * Keys spelled in snake_case before policy files took the camelCase of every other guard-aws file: still read,
 * with a warning naming file:line (config/deprecated-keys.ts). Values (risk signals, kinds) keep their spelling.
 */
export const POLICY_KEY_RENAMES: readonly KeyRename[] = [
  ...(
    [
      ['not_actions', 'notActions'],
      ['risks_all', 'risksAll'],
      ['not_subjects', 'notSubjects'],
      ['not_groups', 'notGroups'],
      ['cross_account', 'crossAccount'],
    ] as const
  ).map(([from, to]) => ({ at: ['rules', '*', 'match'], from, to })),
  { at: ['rules', '*', 'match', 'params', '*'], from: 'cidr_prefix_max', to: 'cidrPrefixMax' },
  { at: ['rules', '*', 'match', 'globals', '*'], from: 'cidr_prefix_max', to: 'cidrPrefixMax' },
];

export const policyFileSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1' }),
  description: z.string().optional(),
  default: defaultSchema.optional(),
  rules: z.array(ruleSchema).default([]),
  masking: maskingSchema.optional(),
});
export type PolicyFileSpec = z.infer<typeof policyFileSchema>;
