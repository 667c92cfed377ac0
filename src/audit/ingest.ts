import { z } from 'zod';
import { ApiError } from '../api/http-error.js';
import type { ApprovalSummary } from '../api/types.js';
import { maskArgv } from '../masking/argv.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import { verifyTranscript } from '../transcript/sign.js';
import type { TranscriptEnvelope } from '../transcript/types.js';
import type { AuditLog } from './store.js';
import type { AuditRecord } from './types.js';

/** What the broker knows about a grant that a transcript must match (a subset of the store's GrantRecord). */
const CLOCK_SKEW_MS = 5 * 60_000;

export interface GrantFacts {
  id: string;
  subject: string;
  argv: string[];
  target: string;
  decision: string;
  rule: string | null;
  approvalId?: string | null;
  transcriptKey: string;
  createdAt: string;
  expiresAt: string;
  /** The caller's groups and name as the broker verified them for the grant. */
  groups?: string[];
  name?: string | null;
}

const chunk = z.object({ t: z.number().int().nonnegative(), s: z.enum(['o', 'e']), d: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/) }).strict();

export const envelopeSchema = z
  .object({
    alg: z.literal('Ed25519'),
    sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
    transcript: z
      .object({
        v: z.literal(1),
        grantId: z.string().min(1).max(128),
        caller: z.object({ subject: z.string().min(1), groups: z.array(z.string()).optional(), name: z.string().optional() }).strict(),
        target: z.string(),
        argv: z.array(z.string()),
        decision: z.string(),
        rule: z.string().nullable(),
        approvalId: z.string().nullable(),
        startedAt: z.iso.datetime(),
        endedAt: z.iso.datetime().nullable(),
        exitCode: z.number().int().nullable(),
        status: z.enum(['complete', 'partial']),
        truncated: z.boolean(),
        outputBytes: z.number().int().nonnegative(),
        chunks: z.array(chunk),
      })
      .strict(),
  })
  .strict();

/** Looks up the approval a grant used (the broker wires this to the approval service). */
export type ApprovalLookup = (id: string) => Promise<ApprovalSummary | undefined> | ApprovalSummary | undefined;

/**
 * What an audit record keeps of the approval its run used: who asked and why, who approved and what they said,
 * the binding hash, and the decoded parameters exactly as the approvers were shown them (ApprovalSummary
 * `parameters`: user-data, file:// contents, --cli-input-json members; secret-typed values masked). So the log
 * itself, signed and chained, says what was approved, whatever later happens to the approvals table.
 */
export interface ApprovedFacts {
  id: string;
  bindingHash: string;
  requester: string;
  reason: string;
  rule: string | null;
  approvals: ApprovalSummary['approvals'];
  parameters?: ApprovalSummary['parameters'];
}

export function approvedFacts(a: ApprovalSummary): ApprovedFacts {
  return {
    id: a.id,
    bindingHash: a.bindingHash,
    requester: a.requester,
    reason: a.reason,
    rule: a.rule,
    approvals: a.approvals,
    ...(a.parameters ? { parameters: a.parameters } : {}),
  };
}

export interface IngestResult {
  status: 'recorded' | 'already_recorded';
  record: AuditRecord;
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  const x = maskArgv(a);
  const y = maskArgv(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Checks an uploaded transcript and appends it to the log, exactly once per grant:
 * - the grant exists and belongs to the uploader;
 * - the Ed25519 signature verifies against the transcript key the broker bound into that grant (so only
 *   the process that asked for the grant can have made it);
 * - grant id, caller, target, argv (compared after masking both), decision, rule and approval match the grant
 *   record, so a valid signature cannot vouch for a run of some other call;
 * - the same envelope again → `already_recorded` (the client's retry after a lost answer); a different one for
 *   the same grant → 409.
 */
export async function ingestTranscript(
  body: unknown,
  uploader: { subject: string },
  deps: { log: AuditLog; getGrant: (id: string) => Promise<GrantFacts | undefined> | GrantFacts | undefined; getApproval?: ApprovalLookup | undefined },
  /**
   * `broker`: the broker ran the call itself and recorded this transcript (signed with the per-run key it kept;
   * the record is signed with the broker's audit key like every other). No caller could have made it.
   */
  attestation: 'caller' | 'broker' = 'caller',
): Promise<IngestResult> {
  const parsed = envelopeSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiError('bad_request', `transcript: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  const env = parsed.data as TranscriptEnvelope;
  const t = env.transcript;
  const grant = await deps.getGrant(t.grantId);
  if (!grant) throw new ApiError('not_found', `transcript: no grant ${t.grantId}`);
  if (grant.subject !== uploader.subject) {
    throw new ApiError('forbidden', `transcript: grant ${t.grantId} belongs to another caller`);
  }
  if (!verifyTranscript(env, grant.transcriptKey)) {
    throw new ApiError('transcript_signature_invalid', `transcript: signature does not verify against the key bound into grant ${t.grantId}`);
  }
  const sameGroups = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((g, i) => g === [...b].sort()[i]);
  const mismatch =
    t.caller.subject !== grant.subject
      ? 'caller'
      : t.caller.groups !== undefined && grant.groups !== undefined && !sameGroups(t.caller.groups, grant.groups)
        ? 'caller groups'
        : t.caller.name !== undefined && grant.name !== undefined && t.caller.name !== grant.name
          ? 'caller name'
      : t.target !== grant.target
        ? 'target'
        : !sameArgv(t.argv, grant.argv)
          ? 'argv'
          : t.decision !== grant.decision
            ? 'decision'
            : t.rule !== grant.rule
              ? 'rule'
              : (t.approvalId ?? null) !== (grant.approvalId ?? null)
                ? 'approvalId'
                : null;
  if (mismatch) throw new ApiError('transcript_mismatch', `transcript: ${mismatch} differs from grant ${t.grantId}`);
  // The run happened while the grant's session could: it cannot start before the grant was issued or after its
  // credentials expired (5 minutes' clock skew allowed), so a client cannot date a run outside its grant.
  const started = Date.parse(t.startedAt);
  if (!(started >= Date.parse(grant.createdAt) - CLOCK_SKEW_MS && started <= Date.parse(grant.expiresAt) + CLOCK_SKEW_MS)) {
    throw new ApiError('transcript_mismatch', `transcript: startedAt ${t.startedAt} is outside grant ${t.grantId}'s lifetime`);
  }
  if (t.endedAt !== null && !(Date.parse(t.endedAt) >= started)) {
    throw new ApiError('transcript_mismatch', `transcript: endedAt ${t.endedAt} is before startedAt`);
  }

  // A repeat (a client's retry after a lost answer): every stored record is under a signed head (records and the
  // head over them are committed together), so it is acknowledged as it is.
  const existing = await deps.log.getByGrant(t.grantId, 'transcript');
  if (existing) return duplicate(existing, env);
  // Stored with the other uploads of this event-loop turn, under one record and one head signature; resolves once
  // committed (AuditLog.appendBatched). Two uploads of one grant in the same turn: the second is judged against
  // the first.
  const approval = grant.approvalId && deps.getApproval ? await deps.getApproval(grant.approvalId) : undefined;
  const { record, existed } = await deps.log.appendBatched({
    kind: 'transcript',
    grantId: t.grantId,
    subject: grant.subject,
    body: {
      envelope: env,
      ...(attestation === 'broker' ? { uploadedBy: 'broker', attestation: 'broker' } : { uploadedBy: uploader.subject }),
      callerVerified: true,
      ...(approval ? { approval: approvedFacts(approval) } : {}),
    },
  });
  if (existed) return duplicate(record, env);
  return { status: 'recorded', record };
}

function duplicate(existing: AuditRecord, env: TranscriptEnvelope): IngestResult {
  const stored = (JSON.parse(existing.body) as { envelope: unknown }).envelope;
  if (canonicalJson(stored) === canonicalJson(env)) return { status: 'already_recorded', record: existing };
  throw new ApiError('transcript_conflict', `transcript: grant ${env.transcript.grantId} already has a different transcript`);
}
