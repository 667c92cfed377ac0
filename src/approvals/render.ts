import type { ApprovalSummary } from '../api/types.js';

/**
 * Text views of approval requests for `guard-aws approvals`. Everything a requester controls (argv, reason,
 * comments, names) passes through `visible()`: a terminal escape sequence in an argv could otherwise redraw the
 * line and show an approver a different command from the one they approve.
 */
export function visible(s: string): string {
  // C0 and C1 controls (ESC, CSI, CR, BS…) and bidi overrides/isolates (Trojan Source, CVE-2021-42574).
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The argv as a shell would need it, quoted only where needed, controls made visible. */
export function shellWords(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).map(visible).join(' ');
}

export function relative(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  const unit = abs >= 86_400_000 ? [86_400_000, 'd'] : abs >= 3_600_000 ? [3_600_000, 'h'] : abs >= 60_000 ? [60_000, 'm'] : [1000, 's'];
  const n = Math.floor(abs / (unit[0] as number));
  return ms >= 0 ? `in ${n}${unit[1]}` : `${n}${unit[1]} ago`;
}

function statusLine(a: ApprovalSummary): string {
  if (a.status === 'pending') return `pending (${a.approvals.length} of ${a.required} approval${a.required > 1 ? 's' : ''})`;
  return a.status;
}

export function renderApproval(a: ApprovalSummary, now: number): string {
  const who = a.requesterName ? `${visible(a.requesterName)} (${visible(a.requester)})` : visible(a.requester);
  const lines = [
    `Request     ${visible(a.id)}  ${statusLine(a)}`,
    `Requester   ${who}`,
    `Reason      ${a.reason ? visible(a.reason) : '(none given)'}`,
    `Command     aws ${shellWords(a.argv)}`,
    `Target      ${visible(a.target)} (${visible(a.region)})`,
    `Operation   ${a.service ?? '-'} ${a.operation ?? ''}`.trimEnd(),
    'Permissions',
    ...(a.permissions.length
      ? a.permissions.map((p) => `  ${visible(p.action)}  ${p.resources.map(visible).join(', ')}`)
      : ['  (none: the call needs no IAM permission)']),
    `Risks       ${a.risks.length ? a.risks.join(', ') : '(none)'}`,
    `Rule        ${a.rule ?? '(default)'}${a.ruleSource ? ` (${a.ruleSource})` : ''}: ${visible(a.ruleReason)}`,
    a.requirements
      ? `Approvers   ${a.requirements.map((q) => `${q.count} from ${q.groups.map(visible).join(' or ')}`).join(' and ')}; ${a.approvals.length} so far`
      : `Approvers   ${a.approverGroups.map(visible).join(', ')}; ${a.required} needed, ${a.approvals.length} so far`,
    ...a.approvals.map((x) => `  approved by ${visible(x.by)} at ${x.at}${x.comment ? `: ${visible(x.comment)}` : ''}`),
  ];
  if (a.denial) lines.push(`Denied      by ${visible(a.denial.by)} at ${a.denial.at}${a.denial.comment ? `: ${visible(a.denial.comment)}` : ''}`);
  if (a.withdrawnAt) lines.push(`Withdrawn   at ${a.withdrawnAt}`);
  if (a.usedAt) lines.push(`Used        at ${a.usedAt}${a.grantId ? ` (grant ${visible(a.grantId)})` : ''}`);
  lines.push(`Created     ${a.createdAt}`);
  if (a.status === 'pending' || a.status === 'approved' || a.status === 'expired') {
    lines.push(`Expires     ${a.expiresAt} (${relative(a.expiresAt, now)})`);
  }
  lines.push(`Binding     sha256:${a.bindingHash}`);
  if (a.canDecide) lines.push('', `You can decide: guard-aws approvals approve ${a.id} [--comment TEXT]  |  guard-aws approvals deny ${a.id} --comment TEXT`);
  return lines.join('\n');
}

export function renderApprovalList(list: readonly ApprovalSummary[], now: number): string {
  if (list.length === 0) return 'No approval requests.';
  const rows = list.map((a) => [
    visible(a.id),
    a.status === 'pending' ? `pending ${a.approvals.length}/${a.required}` : a.status,
    visible(a.requester),
    visible(a.target),
    a.status === 'pending' || a.status === 'approved' ? relative(a.expiresAt, now) : '',
    (a.canDecide ? '* ' : '') + truncate(`aws ${shellWords(a.argv)}`, 70),
  ]);
  const head = ['ID', 'STATUS', 'REQUESTER', 'TARGET', 'EXPIRES', 'COMMAND'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [fmt(head), ...rows.map(fmt)];
  if (list.some((a) => a.canDecide)) out.push('', '* you can approve or deny this one: guard-aws approvals show ID');
  return out.join('\n');
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
