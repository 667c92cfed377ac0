import type { ApprovalParameter, ApprovalSummary } from '../api/types.js';
import { shellWords, visible, visibleText } from '../terminal-text.js';

/**
 * Text views of approval requests for `guard-aws approvals`. Everything a requester controls (argv, reason,
 * comments, names, decoded parameters) passes through `visible()`/`visibleText()` (src/terminal-text.ts): a
 * terminal escape sequence in an argv could otherwise redraw the line and show an approver a different command
 * from the one they approve.
 */
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
    ...parameterLines(a.parameters),
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

/**
 * The decoded parameters, one block each: name, how it was decoded, where it came from, its size; then the
 * value, every line prefixed with `│` so a value cannot pass for another field. Multi-line text keeps its line
 * breaks and tabs; every other control character is shown as an escape.
 */
export function parameterLines(parameters: readonly ApprovalParameter[] | undefined): string[] {
  if (!parameters) return [];
  if (parameters.length === 0) return ['Parameters  (none)'];
  const lines = ['Parameters  (decoded as AWS will receive them; secret-typed values masked)'];
  for (const p of parameters) {
    const meta = [p.encoding, p.source ? `from ${p.source}` : undefined, `${p.bytes} bytes`, p.masked ? 'secret: not shown' : undefined, p.secretsMasked ? 'secrets inside masked' : undefined];
    lines.push(`  ${visible(p.name)}  (${meta.filter(Boolean).map((m) => visible(m!)).join(', ')})`);
    if (!p.masked) for (const line of visibleText(p.value).split('\n')) lines.push(`    │ ${line}`);
    if (p.truncated) lines.push(`    … cut: the first ${p.value.length} characters of ${p.bytes} bytes are shown; the whole value has sha256 ${p.sha256}`);
  }
  return lines;
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
