import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GuardError } from '../errors.js';
import { currentProcessStamp, stampToken, type ProcessStamp } from '../io/liveness.js';
import { maskArgv } from '../masking/argv.js';
import { BodyWriter, DEFAULT_MAX_BODY_BYTES } from './body.js';
import { privateKeyToPem, signTranscript } from './sign.js';
import { checkGrantId, ensurePrivateDir, writePrivateFileAtomic } from './spool-dir.js';
import { TRANSCRIPT_VERSION, type Transcript, type TranscriptCaller, type TranscriptEnvelope } from './types.js';

/**
 * Default limit of output kept whole (1 GiB); beyond it the body keeps head and tail around a marked gap and the
 * transcript the digest and size of the whole output (src/transcript/body.ts). The body is uploaded in chunks
 * (src/transcript/upload.ts), so no request-size limit applies to it.
 */
export const DEFAULT_MAX_OUTPUT_BYTES = DEFAULT_MAX_BODY_BYTES;

/** File names inside one spool entry (`<spool>/<grantId>/`). */
export const ENTRY_FILES = {
  header: 'header.json',
  key: 'key.pem',
  owner: 'owner.json',
  /** v1 entries (earlier releases): the inline chunk log. */
  chunks: 'chunks.jsonl',
  /** The body (src/transcript/body.ts), written as output arrives; kept until the broker has it. */
  body: 'body.bin',
  envelope: 'envelope.json',
} as const;

export interface RecorderOptions {
  grantId: string;
  caller: TranscriptCaller;
  target: string;
  /** The argv that runs; masked here (maskArgv) before it is stored anywhere. */
  argv: readonly string[];
  decision: string;
  rule: string | null;
  approvalId?: string | null;
  /** The private half of createTranscriptKey() whose public half went into the grant request. */
  privateKey: KeyObject;
  /** Spool directory (defaultSpoolDir(env)); the entry is written there as the run goes. */
  spoolDir: string;
  /** Milliseconds since the epoch; injected so tests can freeze time. */
  clock?: () => number;
  maxOutputBytes?: number;
}

export type StreamName = 'stdout' | 'stderr' | 'o' | 'e';

/**
 * The owner record lets recovery tell a live run from one that was killed: host, boot id, pid and the pid's start
 * time (src/io/liveness.ts), so a reused pid or a reboot is not mistaken for the run.
 */
export interface SpoolOwner extends ProcessStamp {
  startedAt: string;
}

/**
 * Prefix of an entry being built: `<spool>/.new.<owner stamp>.<grantId>`. The entry is filled there (key, owner,
 * header, chunk log) and renamed to `<spool>/<grantId>` in one step, so a flush running in another process never
 * sees an entry without its owner record (issue 12: a half-made entry of a live run was taken for a dead run's).
 */
export const STAGING_PREFIX = '.new.';

/** A disk error (read-only, full, I/O) as what it is — exit 74 naming the file — rather than a bug. */
export function spoolIoError(e: unknown, what: string): GuardError | unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && /^(EROFS|ENOSPC|EDQUOT|EIO|EACCES|EPERM|EMFILE|ENFILE|ENOTDIR|ELOOP|ENAMETOOLONG)$/.test(code)) {
    const why: Record<string, string> = { EROFS: 'read-only file system', ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded' };
    return new GuardError('local_io', `transcript spool: cannot write ${what} (${code}${why[code] ? `: ${why[code]}` : ''}); free space or set GUARD_AWS_STATE_DIR to a writable directory`, {
      cause: e,
    });
  }
  return e;
}

export type TranscriptHeader = Omit<Transcript, 'endedAt' | 'exitCode' | 'status' | 'truncated' | 'outputBytes' | 'chunks' | 'body'>;

/**
 * Records one run. The header, the signing key (0600) and every chunk are written to the spool entry as they
 * arrive, so a run killed at any point leaves enough behind for `flushSpool` to recover and sign a partial
 * transcript. `finish` signs the complete transcript, writes it as the entry's envelope and removes the key.
 *
 * The recorder stores exactly the bytes it is given: masking the output is the runner's job (it passes the
 * masker's output), masking the argv is done here.
 */
export class TranscriptRecorder {
  readonly entryDir: string;
  private readonly header: TranscriptHeader;
  private readonly clock: () => number;
  private readonly startMs: number;
  private readonly privateKey: KeyObject;
  private readonly writer: BodyWriter;
  private finished: TranscriptEnvelope | null = null;

  constructor(o: RecorderOptions) {
    this.clock = o.clock ?? Date.now;
    this.startMs = this.clock();
    this.privateKey = o.privateKey;
    this.header = {
      v: TRANSCRIPT_VERSION,
      grantId: checkGrantId(o.grantId),
      caller: { ...o.caller, ...(o.caller.groups ? { groups: [...o.caller.groups] } : {}) },
      target: o.target,
      argv: maskArgv(o.argv),
      decision: o.decision,
      rule: o.rule,
      approvalId: o.approvalId ?? null,
      startedAt: new Date(this.startMs).toISOString(),
    };
    try {
      ensurePrivateDir(o.spoolDir);
    } catch (e) {
      throw spoolIoError(e, o.spoolDir);
    }
    this.entryDir = join(o.spoolDir, o.grantId);
    // One recorder per grant, never two writers. (rename() would also replace an empty directory: check first.)
    if (existsSync(this.entryDir)) throw new GuardError('internal', `spool: an entry for grant ${o.grantId} exists already (EEXIST)`);
    const staging = join(o.spoolDir, `${STAGING_PREFIX}${stampToken()}.${o.grantId}`);
    try {
      mkdirSync(staging, { mode: 0o700 });
      ensurePrivateDir(staging);
      // Key first: an entry with a header always has the key needed to sign its recovery.
      writePrivateFileAtomic(join(staging, ENTRY_FILES.key), privateKeyToPem(o.privateKey));
      const owner: SpoolOwner = { ...currentProcessStamp(), startedAt: this.header.startedAt };
      writePrivateFileAtomic(join(staging, ENTRY_FILES.owner), JSON.stringify(owner));
      writePrivateFileAtomic(join(staging, ENTRY_FILES.header), JSON.stringify(this.header));
      renameSync(staging, this.entryDir);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw spoolIoError(e, staging);
    }
    // Killed before this: recovery finds no body and records a partial run with empty output.
    try {
      this.writer = new BodyWriter(join(this.entryDir, ENTRY_FILES.body), { maxBytes: o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES });
    } catch (e) {
      throw spoolIoError(e, join(this.entryDir, ENTRY_FILES.body));
    }
  }

  /**
   * One piece of (already masked) output — the runner's `onChunk(stream, maskedChunk, atMs)` callback.
   * `atMs` is milliseconds since the run started (runAws measures from spawning aws); omitted = measured
   * here from the recorder's start. Written to the spool before returning, so it survives a kill right after.
   */
  onChunk(stream: StreamName, chunk: Buffer | Uint8Array | string, atMs?: number): void {
    if (this.finished) throw new Error('transcript recorder: chunk after finish');
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return;
    const s: 'o' | 'e' = stream === 'stdout' || stream === 'o' ? 'o' : 'e';
    const t = Math.max(0, Math.round(atMs ?? this.clock() - this.startMs));
    try {
      this.writer.write(s, buf, t);
    } catch (e) {
      throw spoolIoError(e, join(this.entryDir, ENTRY_FILES.body));
    }
  }

  /** Signs the complete transcript, leaves only the signed envelope and the body in the spool entry, and returns it. */
  finish(exitCode: number): TranscriptEnvelope {
    if (this.finished) return this.finished;
    let body;
    try {
      body = this.writer.finish();
    } catch (e) {
      throw spoolIoError(e, join(this.entryDir, ENTRY_FILES.body));
    }
    const t: Transcript = {
      ...this.header,
      endedAt: new Date(this.clock()).toISOString(),
      exitCode,
      status: 'complete',
      truncated: body.gapBytes !== 0,
      outputBytes: body.outputBytes,
      chunks: [],
      body,
    };
    const env = signTranscript(t, this.privateKey);
    try {
      writePrivateFileAtomic(join(this.entryDir, ENTRY_FILES.envelope), JSON.stringify(env), true);
    } catch (e) {
      // The chunk log, header and key stay: a later flush recovers the run as a partial transcript.
      throw spoolIoError(e, join(this.entryDir, ENTRY_FILES.envelope));
    }
    for (const f of [ENTRY_FILES.key, ENTRY_FILES.chunks, ENTRY_FILES.header, ENTRY_FILES.owner]) {
      rmSync(join(this.entryDir, f), { force: true });
    }
    this.finished = env;
    return env;
  }
}
