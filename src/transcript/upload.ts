import { BrokerClient, brokerDeadlineMs, type FetchLike } from '../api/broker-client.js';
import type { ErrorResponse } from '../api/types.js';
import { TranscriptRejected, type UploadOutcome } from './spool.js';
import type { TranscriptEnvelope } from './types.js';

/** POST /v1/transcripts answer (201 recorded, 200 already recorded). */
export interface TranscriptUploadResponse {
  status: UploadOutcome;
  /** Audit record id and position in the chain. */
  id: string;
  seq: number;
}

export interface UploaderOptions {
  brokerUrl: string;
  /** Bearer token of the caller (the grant's owner); called per upload so a refreshed token is used. */
  getToken: () => Promise<string>;
  fetch?: FetchLike;
  timeoutMs?: number;
}

/**
 * The `upload` function flushSpool needs: sends one envelope, resolves when the broker has it (now or
 * before), throws TranscriptRejected when it never will, and a GuardError (broker_unreachable,
 * auth_*) when it should be retried later.
 */
export function createTranscriptUploader(o: UploaderOptions): (env: TranscriptEnvelope) => Promise<UploadOutcome> {
  const client = new BrokerClient(o.brokerUrl, o.fetch, o.timeoutMs ?? Math.min(15_000, brokerDeadlineMs()));
  return async (env) => {
    const token = await o.getToken();
    const r = await client.request<TranscriptUploadResponse | ErrorResponse>('POST', 'v1/transcripts', token, env);
    if (r.status === 201 || r.status === 200) {
      const b = r.body as TranscriptUploadResponse;
      return b.status === 'already_recorded' ? 'already_recorded' : 'recorded';
    }
    const err = (r.body as ErrorResponse)?.error;
    if (r.status === 429 || r.status === 408) {
      throw new TranscriptRetry(`broker busy (${r.status})`);
    }
    throw new TranscriptRejected(err?.code ?? `http_${r.status}`, String(err?.message ?? `broker answered ${r.status}`).slice(0, 300));
  };
}

/** A transient refusal (rate limit): kept in the spool and retried. */
export class TranscriptRetry extends Error {}
