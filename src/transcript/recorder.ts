import { closeSync, mkdirSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { maskArgv } from '../masking/argv.js';
import { privateKeyToPem, signTranscript } from './sign.js';
import { checkGrantId, ensurePrivateDir, openPrivateAppend, writePrivateFileAtomic } from './spool-dir.js';
import { TRANSCRIPT_VERSION, type Transcript, type TranscriptCaller, type TranscriptChunk, type TranscriptEnvelope } from './types.js';

/**
 * Default cap on recorded output: bytes before base64 plus CHUNK_COST per chunk (so many tiny chunks are bounded
 * too). Beyond it the rest is dropped and the transcript marked truncated. 160 KiB keeps the signed envelope
 * (base64 is 4/3 larger) under the broker's default 256 KiB request-body limit.
 */
export const DEFAULT_MAX_OUTPUT_BYTES = 160 * 1024;
/** What one chunk's JSON framing ({"t":…,"s":"o","d":""}) costs against the cap. */
export const CHUNK_COST = 24;

/** File names inside one spool entry (`<spool>/<grantId>/`). */
export const ENTRY_FILES = {
  header: 'header.json',
  key: 'key.pem',
  owner: 'owner.json',
  chunks: 'chunks.jsonl',
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

/** The owner record lets recovery tell a live run from one that was killed. */
export interface SpoolOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export type TranscriptHeader = Omit<Transcript, 'endedAt' | 'exitCode' | 'status' | 'truncated' | 'outputBytes' | 'chunks'>;

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
  private readonly max: number;
  private readonly chunks: TranscriptChunk[] = [];
  private readonly privateKey: KeyObject;
  private fd: number | null;
  private bytes = 0;
  private used = 0;
  private truncated = false;
  private finished: TranscriptEnvelope | null = null;

  constructor(o: RecorderOptions) {
    this.clock = o.clock ?? Date.now;
    this.startMs = this.clock();
    this.max = o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
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
    ensurePrivateDir(o.spoolDir);
    this.entryDir = join(o.spoolDir, o.grantId);
    // mkdir without `recursive` fails if the entry exists: one recorder per grant, never two writers.
    mkdirSync(this.entryDir, { mode: 0o700 });
    ensurePrivateDir(this.entryDir);
    // Key first: an entry with a header always has the key needed to sign its recovery.
    writePrivateFileAtomic(join(this.entryDir, ENTRY_FILES.key), privateKeyToPem(o.privateKey));
    const owner: SpoolOwner = { pid: process.pid, host: hostname(), startedAt: this.header.startedAt };
    writePrivateFileAtomic(join(this.entryDir, ENTRY_FILES.owner), JSON.stringify(owner));
    writePrivateFileAtomic(join(this.entryDir, ENTRY_FILES.header), JSON.stringify(this.header));
    this.fd = openPrivateAppend(join(this.entryDir, ENTRY_FILES.chunks));
  }

  /**
   * One piece of (already masked) output — the runner's `onChunk(stream, maskedChunk, atMs)` callback.
   * `atMs` is milliseconds since the run started (runAws measures from spawning aws); omitted = measured
   * here from the recorder's start. Written to the spool before returning, so it survives a kill right after.
   */
  onChunk(stream: StreamName, chunk: Buffer | Uint8Array | string, atMs?: number): void {
    if (this.finished) throw new Error('transcript recorder: chunk after finish');
    if (this.truncated) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return;
    const s: 'o' | 'e' = stream === 'stdout' || stream === 'o' ? 'o' : 'e';
    const t = Math.max(0, Math.round(atMs ?? this.clock() - this.startMs));
    let part = buf;
    const room = this.max - this.used - CHUNK_COST;
    if (buf.length > room) {
      part = buf.subarray(0, Math.max(0, room));
      this.truncated = true;
    }
    if (part.length) {
      const c: TranscriptChunk = { t, s, d: part.toString('base64') };
      this.chunks.push(c);
      this.bytes += part.length;
      this.used += part.length + CHUNK_COST;
      this.append(JSON.stringify(c));
    }
    if (this.truncated) this.append(JSON.stringify({ truncated: true }));
  }

  private append(line: string): void {
    if (this.fd === null) return;
    writeSync(this.fd, `${line}\n`);
  }

  /** Signs the complete transcript, leaves only the signed envelope in the spool entry, and returns it. */
  finish(exitCode: number): TranscriptEnvelope {
    if (this.finished) return this.finished;
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    const t: Transcript = {
      ...this.header,
      endedAt: new Date(this.clock()).toISOString(),
      exitCode,
      status: 'complete',
      truncated: this.truncated,
      outputBytes: this.bytes,
      chunks: this.chunks,
    };
    const env = signTranscript(t, this.privateKey);
    writePrivateFileAtomic(join(this.entryDir, ENTRY_FILES.envelope), JSON.stringify(env), true);
    for (const f of [ENTRY_FILES.key, ENTRY_FILES.chunks, ENTRY_FILES.header, ENTRY_FILES.owner]) {
      rmSync(join(this.entryDir, f), { force: true });
    }
    this.finished = env;
    return env;
  }
}
