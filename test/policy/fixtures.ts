import type { AccessLevel, ParsedInvocation, Permission, RiskSignal } from '../../src/invocation/types.js';
import type { Caller, DecisionInput, TargetInfo } from '../../src/policy/types.js';

/** Hand-built invocations for engine tests (the parser has its own tests; here the input is controlled). */
export function inv(p: {
  command?: string;
  subcommand?: string | null;
  kind?: ParsedInvocation['kind'];
  perms?: (Permission | [string, string[]?, boolean?])[];
  access?: Record<string, AccessLevel>;
  risks?: RiskSignal[];
  params?: Record<string, unknown>;
  globals?: Record<string, string | boolean>;
  region?: string;
}): ParsedInvocation {
  const permissions: Permission[] = (p.perms ?? []).map((x) =>
    Array.isArray(x) ? { action: x[0], resources: x[1] ?? ['*'], derived: x[2] ?? x[1] !== undefined } : x,
  );
  const resources = [...new Set(permissions.flatMap((q) => q.resources.filter((r) => r !== '*')))].sort();
  return {
    argv: [],
    canonicalArgv: [],
    kind: p.kind ?? 'api',
    command: p.command ?? 'x',
    subcommand: p.subcommand === undefined ? 'y' : p.subcommand,
    service: null,
    operation: null,
    apiCalls: [],
    params: p.params ?? {},
    globals: p.globals ?? {},
    region: p.region ?? 'us-east-1',
    permissions,
    actions: [...new Set(permissions.map((q) => q.action))].sort(),
    resources,
    accessLevels: p.access ?? {},
    risks: p.risks ?? [],
    files: [],
    notes: [],
  };
}

export const agent: Caller = { subject: 'agent-1', groups: ['agents'] };
export const devTarget: TargetInfo = { name: 'dev', account: '111122223333' };

export function input(invocation: ParsedInvocation, caller: Caller = agent, target: TargetInfo = devTarget): DecisionInput {
  return { invocation, caller, target };
}

/** A policy file from text, through the real loader. */
export function policyText(text: string): Record<string, string> {
  return { 'p.yaml': text };
}
