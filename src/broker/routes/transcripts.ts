import type { Context, Hono } from 'hono';
import { Readable } from 'node:stream';
import { ingestTranscript } from '../../audit/ingest.js';
import type { BodyUploads } from '../../audit/bodies/uploads.js';
import { publicKeysDocument } from '../../audit/broker-key.js';
import type { AuditService } from '../../audit/service.js';
import type { Caller } from '../../policy/types.js';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';
import { isGuardError } from '../../errors.js';
import { readJsonBody } from '../middleware/validate.js';

/**
 * POST /v1/transcripts — a client uploads the signed transcript of one run (TranscriptEnvelope).
 *   201 {status:"recorded", id, seq}           appended to the audit log
 *   200 {status:"already_recorded", id, seq}   the very same envelope was recorded before (a retry)
 *   400 bad_request                            not a transcript envelope
 *   403 forbidden                              the grant belongs to someone else
 *   403 transcript_signature_invalid           not signed with the key bound into the grant
 *   403 transcript_mismatch                    grant id / caller / target / argv / decision / rule / approval differ
 *   404 not_found                              no such grant (older brokers: grant_not_found)
 *   409 transcript_conflict                    a different transcript is already recorded for the grant
 *   409 transcript_body_missing                the body it names is not (completely) uploaded
 * GET /v1/transcripts/{grant}/body?sha256=&size=               {offset}: bytes of the body the broker has
 * PUT /v1/transcripts/{grant}/body?sha256=&size=&offset=       one chunk (≤ 8 MiB, octet-stream) at `offset`;
 *   200 {offset}                               acknowledged: on the broker's disk
 *   409 body_offset {offset}                   the broker has another number of bytes: continue from `offset`
 *   413 payload_too_large                      past the declared size, the chunk limit or transcripts.maxBodyBytes
 * GET /v1/keys — the broker's audit public key (no authentication), to verify exports offline.
 */
export function mountTranscripts(app: Hono<BrokerEnv>, svc: AuditService, uploads?: BodyUploads): void {
  app.get('/v1/keys', (c) => c.json(publicKeysDocument(svc.key, svc.history)));

  app.post('/v1/transcripts', async (c) => {
    const who = requireCaller(c);
    const body = await readJsonBody(c);
    // Refusals are ApiErrors already (their messages name no secret).
    let r: Awaited<ReturnType<typeof ingestTranscript>>;
    try {
      r = await ingestTranscript(body, who, { log: svc.log, getGrant: svc.getGrant, getApproval: svc.getApproval, bodies: uploads });
    } catch (e) {
      // A retired audit key (src/audit/key-guard.ts): 503, nothing recorded; the client keeps the transcript.
      if (isGuardError(e) && e.code === 'audit_key_retired') throw ApiError.fromGuardError(e, {}) ?? e;
      throw e;
    }
    return c.json({ status: r.status, id: r.record.id, seq: r.record.seq }, r.status === 'recorded' ? 201 : 200);
  });

  // The body's owner is the grant's: checked against the broker's grant record before a byte is staged.
  const owned = async (c: Context<BrokerEnv>) => {
    const who = requireCaller(c);
    const grantId = c.req.param('grant') ?? '';
    if (!uploads) throw new ApiError('not_found', 'this broker keeps no transcript bodies');
    const g = /^[A-Za-z0-9_-]{1,128}$/.test(grantId) ? await svc.getGrant(grantId) : undefined;
    if (!g) throw new ApiError('not_found', `transcript: no grant ${grantId.slice(0, 128)}`);
    if (g.subject !== who.subject) throw new ApiError('forbidden', `transcript: grant ${grantId} belongs to another caller`);
    return { grantId, subject: who.subject, uploads };
  };

  app.get('/v1/transcripts/:grant/body', async (c) => {
    const o = await owned(c);
    return c.json({ offset: await o.uploads.offset(o.grantId, o.subject, c.req.query()) });
  });

  app.put('/v1/transcripts/:grant/body', async (c) => {
    const o = await owned(c);
    const raw = c.req.raw.body;
    const body = raw ? Readable.fromWeb(raw as import('node:stream/web').ReadableStream<Uint8Array>) : Readable.from([]);
    return c.json({ offset: await o.uploads.append(o.grantId, o.subject, c.req.query(), body) });
  });
}

export function requireCaller(c: Context<BrokerEnv>): Caller {
  const who = c.get('caller');
  // Fail closed if mounted without the bearer-auth middleware in front.
  if (!who) throw new ApiError('unauthorized', 'a bearer token is required; run `guard-aws login`');
  return who;
}
