import { warmPoolConfigSchema } from '../runner/warm/config.js';
import type { Caller } from '../policy/types.js';
import type { BrokerConfig, ExecutionConfig, TargetConfig } from './config.js';

export type ExecutionMode = 'broker' | 'local' | 'auto';
export type Where = 'broker' | 'local';

/** Where one decided call runs, and why (the broker's answer and `explain --json` carry it). */
export interface ExecutionChoice {
  /** The configured mode that applied. */
  mode: ExecutionMode;
  /** Where the call runs. */
  where: Where;
  reasons: string[];
}

export const DEFAULT_EXECUTION: ExecutionConfig = {
  isolation: { mode: 'bwrap' },
  warmPool: warmPoolConfigSchema.parse(undefined),
  people: 'auto',
  workloads: 'broker',
  workloadGroups: ['ci', 'agents'],
  groups: {},
  maxConcurrent: 16,
  startWithinSec: 60,
  maxStdinBytes: 1024 ** 3,
  maxInputBytes: 10 * 1024 ** 3,
  maxOutputBytes: 10 * 1024 ** 3,
  maxFileBytes: 128 * 1024,
};

const RANK: Record<ExecutionMode, number> = { local: 0, auto: 1, broker: 2 };

/**
 * A workload identity (an agent, a CI job): a token from the client credentials grant, whose `sub` is the client
 * itself (RFC 9068 §2.2: "the client application"), or a member of one of `execution.workloadGroups`.
 */
export function isWorkload(caller: Caller & { clientId?: string }, cfg: ExecutionConfig): boolean {
  if (caller.clientId !== undefined && caller.clientId === caller.subject) return true;
  return caller.groups.some((g) => cfg.workloadGroups.includes(g));
}

/**
 * The configured mode for this caller and target: the settings that name them (the target's `execution`, the
 * caller's groups in `execution.groups`) replace the default for people or workloads; several of them → the
 * strictest (broker > auto > local), so no single setting can loosen another.
 */
export function configuredMode(config: Pick<BrokerConfig, 'execution'>, caller: Caller, target: Pick<TargetConfig, 'name' | 'execution'>): { mode: ExecutionMode; reasons: string[] } {
  const cfg = config.execution ?? DEFAULT_EXECUTION;
  const named: { mode: ExecutionMode; why: string }[] = [];
  if (target.execution) named.push({ mode: target.execution, why: `target ${target.name} has execution: ${target.execution}` });
  for (const g of caller.groups) {
    const m = Object.hasOwn(cfg.groups, g) ? cfg.groups[g] : undefined;
    if (m) named.push({ mode: m, why: `group ${g} has execution: ${m}` });
  }
  if (named.length) {
    const top = named.reduce((a, b) => (RANK[b.mode] > RANK[a.mode] ? b : a));
    return { mode: top.mode, reasons: [top.why] };
  }
  return isWorkload(caller, cfg)
    ? { mode: cfg.workloads, reasons: [`workload identity: execution.workloads is ${cfg.workloads}`] }
    : { mode: cfg.people, reasons: [`person: execution.people is ${cfg.people}`] };
}

/** Resolves `auto` with the session-policy analysis (src/policy/enforceable.ts). */
export function chooseExecution(
  configured: { mode: ExecutionMode; reasons: string[] },
  enforceable: () => { enforceable: boolean; reasons: string[] },
): ExecutionChoice {
  if (configured.mode !== 'auto') return { mode: configured.mode, where: configured.mode, reasons: configured.reasons };
  const e = enforceable();
  if (e.enforceable) {
    return { mode: 'auto', where: 'local', reasons: [...configured.reasons, 'the session policy enforces everything the decision depended on'] };
  }
  return { mode: 'auto', where: 'broker', reasons: [...configured.reasons, ...e.reasons] };
}
