/**
 * A transcript: what one run did, signed by the client with the Ed25519 key it made for that grant (the public
 * half was bound into the grant by the broker). Everything here is already masked: secret argv values by
 * maskArgv, stdout/stderr by the runner's masker before they reach the recorder.
 */
import type { BodyRef } from './body.js';

/**
 * 2: the output is a body (src/transcript/body.ts) stored beside the log and bound here by digest and size;
 * `chunks` is empty. 1: the output is inline in `chunks` (earlier releases; still verified and replayed).
 */
export const TRANSCRIPT_VERSION = 2;

/** One piece of output: milliseconds since the run started, stream (o = stdout, e = stderr), base64 bytes. */
export interface TranscriptChunk {
  t: number;
  s: 'o' | 'e';
  d: string;
}

export interface TranscriptCaller {
  subject: string;
  groups?: string[];
  name?: string;
}

export interface Transcript {
  v: 1 | 2;
  grantId: string;
  caller: TranscriptCaller;
  target: string;
  /** The argv that ran, secret parameter values masked. */
  argv: string[];
  decision: string;
  rule: string | null;
  approvalId: string | null;
  /** ISO-8601 (UTC, milliseconds). */
  startedAt: string;
  /** null when the run never finished (partial transcript recovered from the spool). */
  endedAt: string | null;
  exitCode: number | null;
  /** `partial`: the run was killed or lost before it finished; recovered from the spool. */
  status: 'complete' | 'partial';
  /** True when output exceeded the limit: v2 keeps head and tail with a gap (body.gapBytes); v1 dropped the rest. */
  truncated: boolean;
  /** Bytes of output in all (v2: the whole output, also beyond the limit; v1: bytes kept, before base64). */
  outputBytes: number;
  /** v1 only: the output inline. Empty in v2. */
  chunks: TranscriptChunk[];
  /** v2: the body holding the output, bound by digest (so the signature covers it). */
  body?: BodyRef;
  /** Broker runs: whether aws was forked from the warm CLI pool or started fresh (src/runner/warm/pool.ts). */
  runner?: 'warm' | 'fresh';
}

/** What is uploaded and stored: the transcript and the client's signature over its canonical JSON. */
export interface TranscriptEnvelope {
  transcript: Transcript;
  alg: 'Ed25519';
  /** base64url Ed25519 signature over SIGNING_PREFIX + canonicalJson(transcript). */
  sig: string;
}
