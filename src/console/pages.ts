import type { ApprovalSummary } from '../api/types.js';
import type { AuditSummary } from '../audit/summary.js';
import type { Caller } from '../policy/types.js';
import { html, jsonIsland, visibleText, type Html } from './html.js';

/**
 * The console's pages: server-rendered HTML, one stylesheet and one script (both served by the broker from
 * /ui/assets/), no inline script or style (the Content-Security-Policy forbids them). Every value from a request,
 * the database or a transcript goes through `html`'s escaping and, where a terminal might see it, `visibleText`.
 */

export interface Layout {
  title: string;
  caller?: Caller | undefined;
  csrf?: string | undefined;
  isAuditor?: boolean;
  assets: { js: string; css: string };
  /** The `<main>`'s page name, for the script (`data-page`). */
  page: string;
}

export function layout(l: Layout, body: Html): Html {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${l.title} · guard-aws console</title>
<link rel="stylesheet" href="${l.assets.css}">
<script src="${l.assets.js}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Main">
<a class="brand" href="/ui/">guard-aws</a>
${l.caller ? html`<a href="/ui/">Approvals</a>${l.isAuditor ? html`<a href="/ui/audit">Audit log</a>` : ''}` : ''}
</nav>
${l.caller && l.csrf
  ? html`<form class="who" method="post" action="/ui/logout">
<span id="whoami" title="${l.caller.groups.join(', ')}">${visibleText(l.caller.name ?? l.caller.subject)}</span>
<input type="hidden" name="csrf" value="${l.csrf}">
<button type="submit">Sign out</button>
</form>`
  : ''}
</header>
<main id="main" data-page="${l.page}" tabindex="-1">
${body}
</main>
</body>
</html>`;
}

/** The argv as one shell line: quoted where needed, controls visible. */
export function shellLine(argv: readonly string[]): string {
  return ['aws', ...argv].map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).map(visibleText).join(' ');
}

const v = visibleText;

function when(iso: string | undefined | null): Html {
  return iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`—`;
}

function statusBadge(s: ApprovalSummary['status']): Html {
  return html`<span class="badge st-${s}">${s}</span>`;
}

function approvalRow(a: ApprovalSummary): Html {
  return html`<li class="card">
<a class="card-link" href="/ui/approvals/${encodeURIComponent(a.id)}"><code class="argv">${shellLine(a.argv)}</code></a>
<div class="meta">${statusBadge(a.status)} <span>by <strong>${v(a.requesterName ?? a.requester)}</strong></span>
<span>target <strong>${v(a.target)}</strong> (${v(a.region)})</span>
${a.risks.length ? html`<span class="risks">${a.risks.map((r) => html`<span class="risk">${v(r)}</span>`)}</span>` : ''}
${a.status === 'pending' ? html`<span>expires <time class="countdown" datetime="${a.expiresAt}">${a.expiresAt}</time></span>` : ''}</div>
${a.reason ? html`<p class="reason">“${v(a.reason)}”</p>` : ''}
</li>`;
}

/** The lists of the home page (also served alone as a fragment for live updates). */
export function approvalLists(o: { waiting: ApprovalSummary[]; mine: ApprovalSummary[]; others: ApprovalSummary[] }): Html {
  const list = (items: ApprovalSummary[], empty: string, id: string) =>
    items.length ? html`<ul class="cards" id="${id}">${items.map(approvalRow)}</ul>` : html`<p class="empty" id="${id}">${empty}</p>`;
  return html`<section aria-labelledby="h-waiting">
<h2 id="h-waiting">Waiting for me <span class="count">${o.waiting.length}</span></h2>
${list(o.waiting, 'Nothing is waiting for your decision.', 'waiting')}
</section>
<section aria-labelledby="h-mine">
<h2 id="h-mine">My requests</h2>
${list(o.mine, 'You have no approval requests.', 'mine')}
</section>
${o.others.length ? html`<section aria-labelledby="h-others"><h2 id="h-others">Other recent requests</h2>${list(o.others, '', 'others')}</section>` : ''}`;
}

export function homePage(lists: Html): Html {
  return html`<h1>Approvals</h1>
<p class="live" role="status" aria-live="polite" id="live-status">Live updates are off until the page script runs.</p>
<div id="approval-lists" data-fragment="/ui/fragments/approvals">${lists}</div>`;
}

function dl(rows: [string, Html | string][]): Html {
  return html`<dl class="facts">${rows.map(([k, val]) => html`<dt>${k}</dt><dd>${val}</dd>`)}</dl>`;
}

export interface TargetFacts {
  name: string;
  account: string;
  region: string;
}

/** Everything an approver needs to decide, and the decision form when the caller may decide. */
export function approvalPage(a: ApprovalSummary, o: { caller: Caller; canDecide: boolean; csrf: string; target?: TargetFacts | undefined; notice?: string | undefined; error?: string | undefined }): Html {
  const params = (a as ApprovalSummary & { parameters?: unknown }).parameters;
  const self = a.requester === o.caller.subject;
  return html`<h1>Approval request <code>${a.id}</code></h1>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<div class="status-line" id="status" data-approval="${a.id}">${statusBadge(a.status)}
${a.status === 'pending' ? html` <span>${a.approvals.length} of ${a.required} approval${a.required > 1 ? 's' : ''}; expires <time class="countdown" datetime="${a.expiresAt}">${a.expiresAt}</time></span>` : ''}
${a.status === 'approved' ? html` <span>approved; must be used before <time class="countdown" datetime="${a.expiresAt}">${a.expiresAt}</time></span>` : ''}</div>
<section aria-labelledby="h-call">
<h2 id="h-call">The call</h2>
<pre class="argv" id="argv">${shellLine(a.argv)}</pre>
${dl([
  ['Where', html`target <strong>${v(a.target)}</strong>${o.target ? html`, account <code>${o.target.account}</code>` : ''}, region <strong>${v(a.region)}</strong>`],
  ['Operation', html`${v(a.service ?? '?')} ${v(a.operation ?? '?')}`],
  ['Risks', a.risks.length ? html`${a.risks.map((r) => html`<span class="risk">${v(r)}</span> `)}` : html`none named`],
])}
${params !== undefined ? html`<h3>Parameters</h3><pre class="params" id="params">${v(JSON.stringify(params, null, 2))}</pre>` : ''}
<h3>IAM actions and resources</h3>
<div class="scroll"><table class="perms stack"><thead><tr><th scope="col">Action</th><th scope="col">Resources</th></tr></thead>
<tbody>${a.permissions.map((p) => html`<tr><td data-label="Action"><code>${v(p.action)}</code></td><td data-label="Resources">${p.resources.map((r) => html`<code>${v(r)}</code><br>`)}</td></tr>`)}</tbody></table></div>
</section>
<section aria-labelledby="h-why">
<h2 id="h-why">Why it needs approval</h2>
${dl([
  ['Rule', html`<code>${v(a.rule ?? '(default)')}</code>${a.ruleSource ? html` <span class="muted">(${v(a.ruleSource)})</span>` : ''}`],
  ['Rule reason', v(a.ruleReason)],
  ['Needs', a.requirements ? a.requirements.map((q) => `${q.count} from ${q.groups.join(' or ')}`).join(' and ') : `${a.required} from ${a.approverGroups.join(' or ')}`],
  ['Requester', html`<strong>${v(a.requesterName ?? a.requester)}</strong>${a.requesterName ? html` <span class="muted">(${v(a.requester)})</span>` : ''}`],
  ['Their reason', a.reason ? html`<q id="req-reason">${v(a.reason)}</q>` : html`<span class="muted">none given</span>`],
  ['Asked', when(a.createdAt)],
])}
</section>
<section aria-labelledby="h-votes">
<h2 id="h-votes">Decisions so far</h2>
${a.approvals.length || a.denial
  ? html`<ul class="votes">${a.approvals.map((x) => html`<li>approved by <strong>${v(x.by)}</strong> ${when(x.at)}${x.comment ? html`: <q>${v(x.comment)}</q>` : ''}</li>`)}
${a.denial ? html`<li>denied by <strong>${v(a.denial.by)}</strong> ${when(a.denial.at)}${a.denial.comment ? html`: <q>${v(a.denial.comment)}</q>` : ''}</li>` : ''}</ul>`
  : html`<p class="empty">None yet.</p>`}
</section>
${o.canDecide
  ? html`<section aria-labelledby="h-decide">
<h2 id="h-decide">Your decision</h2>
<form method="post" action="/ui/approvals/${a.id}/decide" class="decide">
<input type="hidden" name="csrf" value="${o.csrf}">
<label for="comment">Comment (shown to the requester)</label>
<textarea id="comment" name="comment" rows="3" maxlength="1000"></textarea>
<div class="buttons">
<button type="submit" name="verb" value="approve" class="approve">Approve…</button>
<button type="submit" name="verb" value="deny" class="deny">Deny…</button>
</div>
</form>
</section>`
  : self && (a.status === 'pending' || a.status === 'approved')
    ? html`<section aria-labelledby="h-decide"><h2 id="h-decide">Your request</h2>
<p>You cannot approve your own request. You may withdraw it.</p>
<form method="post" action="/ui/approvals/${a.id}/decide"><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit" name="verb" value="withdraw">Withdraw…</button></form></section>`
    : a.status === 'pending'
      ? html`<p class="muted" id="cannot-decide">You cannot decide this request.</p>`
      : ''}
<p class="muted">Binding <code>${a.bindingHash.slice(0, 16)}…</code>${a.grantId ? html` · grant <code>${a.grantId}</code>` : ''}</p>`;
}

/** The second step of a decision: the call again, and one button that really does it. */
export function confirmPage(a: ApprovalSummary, verb: 'approve' | 'deny' | 'withdraw', comment: string, csrf: string): Html {
  const label = verb === 'approve' ? 'Approve' : verb === 'deny' ? 'Deny' : 'Withdraw';
  return html`<h1>${label} this call?</h1>
<pre class="argv" id="argv">${shellLine(a.argv)}</pre>
<p>Target <strong>${v(a.target)}</strong>, region <strong>${v(a.region)}</strong>, requested by <strong>${v(a.requesterName ?? a.requester)}</strong>.</p>
${comment ? html`<p>Your comment: <q>${v(comment)}</q></p>` : html`<p class="muted">No comment.</p>`}
<form method="post" action="/ui/approvals/${a.id}/${verb}" class="confirm">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="comment" value="${comment}">
<input type="hidden" name="confirm" value="yes">
<div class="buttons">
<button type="submit" id="confirm" class="${verb === 'approve' ? 'approve' : 'deny'}">Yes, ${label.toLowerCase()}</button>
<a class="button" href="/ui/approvals/${a.id}">Cancel</a>
</div>
</form>`;
}

export interface AuditFilters {
  user?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  decision?: string | undefined;
  target?: string | undefined;
  service?: string | undefined;
}

export function auditPage(records: AuditSummary[], f: AuditFilters, o: { targets: string[]; scanned: number; limit: number }): Html {
  const input = (name: keyof AuditFilters, label: string, type = 'text') =>
    html`<div class="field"><label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" type="${type}" value="${f[name] ?? ''}"></div>`;
  return html`<h1>Audit log</h1>
<p class="sub"><a href="/ui/audit/verify">Verify the chain</a> · <a href="/ui/audit/unreported">Grants without a transcript</a></p>
<form method="get" action="/ui/audit" class="filters" role="search" aria-label="Filter the audit log">
${input('user', 'Person (subject)')}
${input('since', 'From (UTC)', 'datetime-local')}
${input('until', 'To (UTC)', 'datetime-local')}
<div class="field"><label for="f-decision">Decision</label><select id="f-decision" name="decision">
${['', 'allow', 'approve'].map((d) => html`<option value="${d}"${d === (f.decision ?? '') ? html` selected` : ''}>${d || 'any'}</option>`)}</select></div>
<div class="field"><label for="f-target">Target</label><select id="f-target" name="target">
${['', ...o.targets].map((t) => html`<option value="${t}"${t === (f.target ?? '') ? html` selected` : ''}>${t || 'any'}</option>`)}</select></div>
${input('service', 'Service (s3, ec2, sts…)')}
<div class="buttons"><button type="submit">Filter</button> <a class="button" href="/ui/audit">Clear</a></div>
</form>
<p class="muted" id="result-count">${records.length} record${records.length === 1 ? '' : 's'}${o.scanned >= o.limit ? ` (newest ${o.limit} searched; narrow the person or time to see older ones)` : ''}</p>
<div class="scroll"><table class="records stack" id="records">
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">Call</th><th scope="col">Target</th><th scope="col">Decision</th><th scope="col">Exit</th></tr></thead>
<tbody>${records.map((r) => html`<tr>
<td data-label="#"><a href="/ui/audit/records/${encodeURIComponent(r.id)}">${r.seq}</a></td><td data-label="When">${when(r.at)}</td><td data-label="Who">${v(r.subject ?? '—')}</td>
<td data-label="Call"><a href="/ui/audit/records/${encodeURIComponent(r.id)}"><code>${r.argv ? shellLine(r.argv) : r.kind}</code></a>${r.kind !== 'transcript' ? html` <span class="badge">${r.kind}</span>` : ''}</td>
<td data-label="Target">${v(r.target ?? '—')}</td><td data-label="Decision">${v(r.decision ?? '—')}</td><td data-label="Exit">${r.exitCode ?? (r.status === 'partial' ? 'partial' : '—')}</td></tr>`)}</tbody>
</table></div>`;
}

export interface ReplayData {
  chunks: { t: number; s: 'o' | 'e'; d: string }[];
  /** Set when only the start of a large output is in the page (`guard-aws audit replay` plays all of it). */
  cut?: { shown: number; total: number };
}

export function recordPage(r: AuditSummary, o: { body: unknown; replay?: ReplayData | undefined; hash: string; prevHash: string; uploadedBy?: string | undefined }): Html {
  return html`<h1>Audit record ${r.seq}</h1>
${dl([
  ['Kind', r.kind],
  ['When', when(r.at)],
  ['Who', v(r.subject ?? '—')],
  ['Call', r.argv ? html`<code id="argv">${shellLine(r.argv)}</code>` : '—'],
  ['Target', v(r.target ?? '—')],
  ['Decision', html`${v(r.decision ?? '—')}${r.rule ? html` (rule <code>${v(r.rule)}</code>)` : ''}`],
  ['Ran', r.startedAt ? html`${when(r.startedAt)} → ${when(r.endedAt)}` : '—'],
  ['Exit code', r.exitCode === undefined || r.exitCode === null ? '—' : String(r.exitCode)],
  ['Status', `${r.status ?? '—'}${r.truncated ? ' (output truncated)' : ''}`],
  ['Grant', r.grantId ? html`<code>${r.grantId}</code>` : '—'],
  ['Hash', html`<code class="hash">${o.hash}</code>`],
  ['Previous', html`<code class="hash">${o.prevHash}</code>`],
])}
${o.replay
  ? html`<section aria-labelledby="h-replay">
<h2 id="h-replay">Transcript</h2>
<div class="replay-controls" role="group" aria-label="Replay controls">
<button type="button" id="replay-play">Play</button>
<button type="button" id="replay-all">Show all</button>
<label for="replay-speed">Speed</label>
<select id="replay-speed"><option value="0.5">0.5×</option><option value="1" selected>1×</option><option value="2">2×</option><option value="5">5×</option><option value="20">20×</option></select>
<span id="replay-clock" aria-live="off">0.0 s</span>
</div>
<pre class="terminal" id="terminal" tabindex="0" aria-label="Transcript output" aria-live="off"></pre>
${o.replay.cut ? html`<p class="muted" id="replay-cut">The first ${o.replay.cut.shown} of ${o.replay.cut.total} bytes of output are shown here; <code>guard-aws audit replay ${r.grantId ?? r.id}</code> plays all of it.</p>` : ''}
${jsonIsland('replay-data', o.replay)}
<noscript><p>The replay needs the page script; the raw record is below.</p></noscript>
</section>`
  : ''}
<details><summary>Raw record body</summary><pre class="raw">${v(JSON.stringify(o.body, null, 2))}</pre></details>`;
}

export function verifyPage(r: { ok: boolean; count: number; firstBroken?: { seq: number; reason: string } | undefined; kid: string }): Html {
  return html`<h1>Chain verification</h1>
<p id="chain-status" class="${r.ok ? 'notice' : 'error'}" role="status">${r.ok
    ? `The chain verifies: ${r.count} record${r.count === 1 ? '' : 's'}, every link and signature checked, head signed.`
    : `The chain is BROKEN at record ${r.firstBroken?.seq ?? '?'}: ${r.firstBroken?.reason ?? 'unknown'} (${r.count} record${r.count === 1 ? '' : 's'} verified before it).`}</p>
<p class="muted">Signing key <code>${r.kid}</code>. Checked just now, by the broker.</p>`;
}

export function unreportedPage(rows: { grantId: string; subject: string; target: string; argv: string[]; createdAt: string; expiresAt: string }[]): Html {
  return html`<h1>Grants without a transcript</h1>
<p class="muted">Credentials were issued, the session has expired, and no transcript ever arrived.</p>
${rows.length
  ? html`<div class="scroll"><table id="unreported" class="stack"><thead><tr><th scope="col">Grant</th><th scope="col">Who</th><th scope="col">Call</th><th scope="col">Target</th><th scope="col">Issued</th></tr></thead>
<tbody>${rows.map((g) => html`<tr><td data-label="Grant"><code>${g.grantId}</code></td><td data-label="Who">${v(g.subject)}</td><td data-label="Call"><code>${shellLine(g.argv)}</code></td><td data-label="Target">${v(g.target)}</td><td data-label="Issued">${when(g.createdAt)}</td></tr>`)}</tbody></table></div>`
  : html`<p class="empty" id="unreported">None: every expired grant reported its transcript.</p>`}`;
}

export function messagePage(title: string, text: string, link?: { href: string; label: string }): Html {
  return html`<h1>${title}</h1><p id="message">${text}</p>${link ? html`<p><a href="${link.href}">${link.label}</a></p>` : ''}`;
}
