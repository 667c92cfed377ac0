/**
 * A transcript: what one run did, signed by the client with the Ed25519 key it made for that grant (the public
 * half was bound into the grant by the broker). Everything here is already masked: secret argv values by
 * maskArgv, stdout/stderr by the runner's masker before they reach the recorder.
 */
export const TRANSCRIPT_VERSION = 1;

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
  v: typeof TRANSCRIPT_VERSION;
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
  /** True when output exceeded the recorder's cap and the rest was dropped. */
  truncated: boolean;
  /** Bytes of output recorded (before base64). */
  outputBytes: number;
  chunks: TranscriptChunk[];
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
