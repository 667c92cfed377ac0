import type { ParsedInvocation } from '../invocation/types.js';
import { visible } from '../terminal-text.js';
import type { DetailedDecision } from './decide.js';
import type { Caller, TargetInfo } from './types.js';

/** What `guard-aws explain` shows, as data (`--json`) and as text. Parameter values are never included. */
export interface Explanation {
  argv: string[];
  kind: ParsedInvocation['kind'];
  command: string;
  subcommand: string | null;
  service: string | null;
  operation: string | null;
  apiCalls: string[];
  region: string;
  account: string;
  target: string;
  caller: { subject: string; groups: string[] };
  actions: string[];
  resources: string[];
  permissions: DetailedDecision['permissions'];
  risks: string[];
  files: ParsedInvocation['files'];
  notes: string[];
  decision: DetailedDecision['decision'];
  rule: string | null;
  reason: string;
  source: string | null;
  approval: DetailedDecision['approval'] | null;
  defaults: string[];
}

export function explanation(inv: ParsedInvocation, d: DetailedDecision, caller: Caller, target: TargetInfo, defaults: string[]): Explanation {
  return {
    argv: inv.argv,
    kind: inv.kind,
    command: inv.command,
    subcommand: inv.subcommand,
    service: inv.service,
    operation: inv.operation,
    apiCalls: inv.apiCalls,
    region: inv.region,
    account: target.account,
    target: target.name,
    caller: { subject: caller.subject, groups: caller.groups },
    actions: inv.actions,
    resources: inv.resources,
    permissions: d.permissions,
    risks: inv.risks,
    files: inv.files,
    notes: inv.notes,
    decision: d.decision,
    rule: d.rule,
    reason: d.reason,
    source: d.source ?? null,
    approval: d.approval ?? null,
    defaults,
  };
}

const COLORS = { allow: '\x1b[32m', approve: '\x1b[33m', deny: '\x1b[31m' } as const;

/**
 * The text view. The argv, file paths, notes, resources and the caller's name come from the call (or a token the
 * caller holds): every such field goes through `visible()` (src/terminal-text.ts), so a token with an escape
 * sequence or a bidi override cannot repaint the decision shown.
 */
export function renderExplanation(e: Explanation, color: boolean): string {
  const v = visible;
  const paint = (s: string, c: string) => (color ? `${c}${s}\x1b[0m` : s);
  const bold = (s: string) => paint(s, '\x1b[1m');
  const dflt = (k: string) => (e.defaults.includes(k) ? ' (default)' : '');
  const lines: string[] = [];
  lines.push(bold(`aws ${e.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : v(JSON.stringify(a)))).join(' ')}`));
  const cmd = e.subcommand ? `${e.command} ${e.subcommand}` : e.command;
  lines.push(`  command     ${v(cmd)}  [${e.kind}]`);
  if (e.service) lines.push(`  operation   ${e.service} ${e.operation}${e.apiCalls.length > 1 ? `  (may call ${e.apiCalls.join(', ')})` : ''}`);
  lines.push(`  context     account ${v(e.account)}${dflt('account')}, region ${v(e.region)}${dflt('region')}, target ${v(e.target)}${dflt('target')}`);
  lines.push(`  caller      ${v(e.caller.subject)}${dflt('subject')}, groups ${e.caller.groups.length ? e.caller.groups.map(v).join(', ') : '(none)'}`);
  if (e.permissions.length) {
    lines.push('  permissions');
    const w = Math.max(...e.permissions.map((p) => p.action.length));
    for (const p of e.permissions) {
      // Not derived: the request names no resource guard-aws could read, so the grant is on any resource.
      const res = p.derived ? p.resources.map(v).join(', ') : `${p.resources.map(v).join(', ')} (any resource: not named in the call)`;
      lines.push(`    ${p.action.padEnd(w)}  ${(p.accessLevel ?? '?').padEnd(22)}  ${res}`);
      lines.push(`    ${''.padEnd(w)}  → ${paint(p.decision, COLORS[p.decision])} by ${p.rule ?? 'the default'}`);
    }
  } else {
    lines.push('  permissions (none: no AWS call)');
  }
  lines.push(`  risks       ${e.risks.length ? e.risks.join(', ') : '(none)'}`);
  for (const f of e.files) lines.push(`  file        ${f.mode} ${v(f.path)}  (${v(f.argument)})`);
  for (const n of e.notes) lines.push(`  note        ${v(n)}`);
  lines.push(`  decision    ${bold(paint(e.decision.toUpperCase(), COLORS[e.decision]))}  rule ${e.rule ?? '(default)'}${e.source ? `  ${e.source}` : ''}`);
  lines.push(`  reason      ${v(e.reason)}`);
  if (e.approval) {
    lines.push(`  approval    ${e.approval.count} approval${e.approval.count > 1 ? 's' : ''} from ${e.approval.groups.length ? e.approval.groups.join(' or ') : '(no common group)'}`);
    for (const r of e.approval.requirements ?? []) lines.push(`              and ${r.count} from ${r.groups.join(' or ')}`);
  }
  return lines.join('\n');
}
