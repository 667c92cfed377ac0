import { closeSync, existsSync, openSync, readSync } from 'node:fs';
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
  /** Bytes per body chunk (default 4 MiB). */
  chunkBytes?: number;
}

/** Bytes of a transcript body sent per request: each is acknowledged (fsynced by the broker) before the next. */
export const BODY_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Sends a body in acknowledged chunks, resuming from the offset the broker has: first asks it (GET), then sends
 * from there; a `body_offset` answer (another process or an earlier, broken attempt moved it) is followed too. A
 * killed client leaves the body in its spool entry; the next flush resumes where the broker's acknowledgements
 * stopped. Memory: one chunk.
 */
async function uploadBody(
  client: BrokerClient,
  token: string,
  grantId: string,
  body: { sha256: string; size: number },
  path: string | undefined,
  chunkBytes: number,
): Promise<void> {
  const base = `v1/transcripts/${encodeURIComponent(grantId)}/body?sha256=${body.sha256}&size=${body.size}`;
  const failed = (status: number, b: unknown): never => {
    const err = (b as ErrorResponse)?.error;
    if (status === 429 || status === 408) throw new TranscriptRetry(`broker busy (${status})`);
    throw new TranscriptRejected(err?.code ?? `http_${status}`, String(err?.message ?? `broker answered ${status}`).slice(0, 300));
  };
  // A body that fits one chunk (most calls) is sent straight away: a broker that has some or all of it already
  // answers body_offset with its offset, followed below. A larger one asks first, so a resumed upload does not
  // send a chunk it would only refuse.
  let offset = 0;
  if (body.size > chunkBytes || !path || !existsSync(path)) {
    const first = await client.request<{ offset: number } | ErrorResponse>('GET', base, token);
    if (first.status !== 200) failed(first.status, first.body);
    offset = (first.body as { offset: number }).offset;
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > body.size) throw new TranscriptRetry('the broker answered an invalid body offset');
  if (offset === body.size) return;
  // The broker has it already (a retry after the record was made): nothing to send, so no file is needed.
  if (!path || !existsSync(path)) throw new TranscriptRejected('damaged', 'the transcript names a body that is not in the spool');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(1, body.size)));
    let stalls = 0;
    while (offset < body.size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, body.size - offset), offset);
      if (n <= 0) throw new TranscriptRejected('damaged', `the spooled body is shorter than its ${body.size} bytes`);
      const r = await client.request<{ offset: number } | ErrorResponse>('PUT', `${base}&offset=${offset}`, token, undefined, buf.subarray(0, n));
      if (r.status === 200) {
        offset = (r.body as { offset: number }).offset;
        stalls = 0;
        continue;
      }
      const err = (r.body as ErrorResponse)?.error;
      if (r.status === 409 && err?.code === 'body_offset' && typeof err.offset === 'number' && ++stalls < 5) {
        offset = err.offset;
        continue;
      }
      failed(r.status, r.body);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The `upload` function flushSpool needs: sends one envelope, resolves when the broker has it (now or
 * before), throws TranscriptRejected when it never will, and a GuardError (broker_unreachable,
 * auth_*) when it should be retried later.
 */
export function createTranscriptUploader(o: UploaderOptions): (env: TranscriptEnvelope, bodyPath?: string) => Promise<UploadOutcome> {
  const client = new BrokerClient(o.brokerUrl, o.fetch, o.timeoutMs ?? Math.min(15_000, brokerDeadlineMs()));
  return async (env, bodyPath) => {
    const token = await o.getToken();
    if (env.transcript.body) {
      await uploadBody(client, token, env.transcript.grantId, env.transcript.body, bodyPath, o.chunkBytes ?? BODY_CHUNK_BYTES);
    }
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
