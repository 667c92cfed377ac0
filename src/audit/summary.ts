import type { TranscriptEnvelope } from '../transcript/types.js';
import type { GrantFacts } from './ingest.js';
import type { AuditLog } from './store.js';
import type { AuditRecord } from './types.js';

/** One line of `audit list`: what an auditor scans for. */
export interface AuditSummary {
  seq: number;
  id: string;
  kind: string;
  at: string;
  grantId: string | null;
  subject: string | null;
  /** Undefined too when an `unreported` record's grant lacks them (summaries are made of whatever parses). */
  target?: string | undefined;
  argv?: string[] | undefined;
  decision?: string | undefined;
  rule?: string | null;
  status?: 'complete' | 'partial';
  exitCode?: number | null;
  startedAt?: string;
  endedAt?: string | null;
  truncated?: boolean;
}

export function summarize(r: AuditRecord): AuditSummary {
  const base: AuditSummary = { seq: r.seq, id: r.id, kind: r.kind, at: r.at, grantId: r.grantId, subject: r.subject };
  try {
    const body = JSON.parse(r.body) as { envelope?: TranscriptEnvelope; grant?: Partial<GrantFacts> };
    const t = body.envelope?.transcript;
    if (t) {
      return {
        ...base,
        target: t.target,
        argv: t.argv,
        decision: t.decision,
        rule: t.rule,
        status: t.status,
        exitCode: t.exitCode,
        startedAt: t.startedAt,
        endedAt: t.endedAt,
        truncated: t.truncated,
      };
    }
    if (body.grant) return { ...base, target: body.grant.target, argv: body.grant.argv, decision: body.grant.decision, rule: body.grant.rule ?? null };
  } catch {
    // A body that does not parse is shown bare; `audit verify` says what is wrong with it.
  }
  return base;
}

/** A grant whose transcript has not arrived. */
export interface UnreportedGrant {
  grantId: string;
  subject: string;
  target: string;
  argv: string[];
  createdAt: string;
  expiresAt: string;
}

/** After the session expired plus this, a missing transcript counts as unreported (the run is surely over). */
export const UNREPORTED_GRACE_MS = 5 * 60_000;

/** Grants among `grants` that expired (plus grace) with no transcript in the log. */
export async function findUnreported(grants: readonly GrantFacts[], log: AuditLog, now: number, graceMs = UNREPORTED_GRACE_MS): Promise<UnreportedGrant[]> {
  const due = grants.filter((g) => Date.parse(g.expiresAt) + graceMs <= now);
  const reported = await log.reportedGrants(due.map((g) => g.id));
  return due
    .filter((g) => !reported.has(g.id))
    .map((g) => ({ grantId: g.id, subject: g.subject, target: g.target, argv: g.argv, createdAt: g.createdAt, expiresAt: g.expiresAt }));
}

/**
 * Appends an `unreported` record for each such grant not noted yet, so the log itself says which runs never
 * reported (a transcript arriving later is still appended). Returns how many were added.
 */
export async function recordUnreported(grants: readonly GrantFacts[], log: AuditLog, now: number, graceMs = UNREPORTED_GRACE_MS): Promise<number> {
  let n = 0;
  for (const g of await findUnreported(grants, log, now, graceMs)) {
    if (await log.getByGrant(g.grantId, 'unreported')) continue;
    // Batched append: it judges "one per grant and kind" under the chain lock, so two brokers sweeping at the same
    // time record each unreported grant once (the second finds the first's record: existed).
    const { existed } = await log.appendBatched({ kind: 'unreported', grantId: g.grantId, subject: g.subject, body: { grant: g, reason: 'no transcript by session expiry' } });
    if (!existed) n++;
  }
  return n;
}
