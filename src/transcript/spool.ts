import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isGuardError } from '../errors.js';
import { processState, stampToken, tokenState } from '../io/liveness.js';
import { BODY_MAGIC, recoverBody } from './body.js';
import { ENTRY_FILES, STAGING_PREFIX, spoolIoError, type SpoolOwner, type TranscriptHeader } from './recorder.js';
import { privateKeyFromPem, signTranscript } from './sign.js';
import { ensurePrivateDir, writePrivateFileAtomic } from './spool-dir.js';
import type { Transcript, TranscriptChunk, TranscriptEnvelope } from './types.js';

/** Where refused transcripts are moved, so they are kept (nothing lost) but not retried on every run. */
export const REJECTED_DIR = 'rejected';

/** Outcome of one upload: recorded now, or the broker already had exactly this transcript. */
export type UploadOutcome = 'recorded' | 'already_recorded';

/**
 * Thrown by an uploader when the broker refuses a transcript for good (bad signature, unknown grant, a
 * different transcript already recorded). Anything else thrown (unreachable, auth) is retried later.
 */
export class TranscriptRejected extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TranscriptRejected';
  }
}

export interface FlushOptions {
  spoolDir: string;
  /**
   * Sends one transcript; `bodyPath` is its body file in the spool (v2 transcripts), uploaded first in acknowledged
   * chunks (src/transcript/upload.ts), resuming from what the broker already has.
   */
  upload: (env: TranscriptEnvelope, bodyPath: string | undefined) => Promise<UploadOutcome>;
  /** Whether the run that owns an unfinished entry is still going. Default: src/io/liveness.ts plus a 12 h limit. */
  isAlive?: (owner: SpoolOwner) => boolean;
  clock?: () => number;
}

export interface FlushResult {
  uploaded: { grantId: string; status: 'complete' | 'partial'; outcome: UploadOutcome }[];
  recovered: string[];
  /** Still spooled: the broker could not be reached, or the run is still going. */
  pending: { grantId: string; reason: string }[];
  /** Refused by the broker, or damaged (code `damaged`); moved to `<spool>/rejected/`. */
  rejected: { grantId: string; code: string; message: string; movedTo: string }[];
}

/**
 * A run older than this is presumed dead whatever its pid says (12 h is the longest STS session: a run cannot
 * outlive its credentials usefully). Covers owners on another host, which cannot be checked.
 */
const OWNER_MAX_AGE_MS = 12 * 3600_000;
/** Prefix of an entry a flush has claimed: `<spool>/.claim.<claimer stamp>.<grantId>`. */
export const CLAIM_PREFIX = '.claim.';

function defaultIsAlive(owner: SpoolOwner, now: number): boolean {
  if (!(now - Date.parse(owner.startedAt) < OWNER_MAX_AGE_MS)) return false;
  // Another host's process cannot be checked from here: alive until the age limit.
  return processState(owner) !== 'dead';
}

/** Splits `.claim.<h>.<b>.<pid>.<start>.<grantId>` / `.new.…` into the stamp and the grant id. */
function splitStamped(name: string, prefix: string): { stamp: string; grantId: string } | undefined {
  const parts = name.slice(prefix.length).split('.');
  if (parts.length < 5) return undefined;
  return { stamp: parts.slice(0, 4).join('.'), grantId: parts.slice(4).join('.') };
}

/** Parses the chunk log, ignoring a torn last line (the process died mid-write). */
function readChunks(path: string): { chunks: TranscriptChunk[]; truncated: boolean; bytes: number } {
  const chunks: TranscriptChunk[] = [];
  let truncated = false;
  let bytes = 0;
  if (!existsSync(path)) return { chunks, truncated, bytes };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    let c: unknown;
    try {
      c = JSON.parse(line);
    } catch {
      break;
    }
    const o = c as Partial<TranscriptChunk> & { truncated?: boolean };
    if (o.truncated === true) {
      truncated = true;
      continue;
    }
    if (typeof o.t !== 'number' || (o.s !== 'o' && o.s !== 'e') || typeof o.d !== 'string') break;
    chunks.push({ t: o.t, s: o.s, d: o.d });
    bytes += Buffer.from(o.d, 'base64').length;
  }
  return { chunks, truncated, bytes };
}

/** Why an entry cannot be used; thrown by the readers below and turned into a move to `rejected/`. */
class Damaged extends Error {}

function readJson<T>(path: string, what: string): T {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Damaged(`${what} is not valid JSON (${text.length} bytes; truncated?)`);
  }
}

function checkEnvelope(env: unknown, grantId: string): TranscriptEnvelope {
  const e = env as Partial<TranscriptEnvelope> | null;
  if (!e || typeof e !== 'object' || !e.transcript || typeof e.transcript !== 'object' || typeof e.transcript.grantId !== 'string') {
    throw new Damaged(`${ENTRY_FILES.envelope} is not a signed transcript`);
  }
  if (e.transcript.grantId !== grantId) throw new Damaged(`${ENTRY_FILES.envelope} belongs to grant ${JSON.stringify(e.transcript.grantId.slice(0, 60))}`);
  return e as TranscriptEnvelope;
}

/**
 * Turns an unfinished entry (its run was killed) into a signed transcript marked `partial`, with the key the
 * run left behind, then removes the key. Returns undefined when the entry holds nothing recoverable.
 */
export function recoverEntry(entryDir: string): TranscriptEnvelope | undefined {
  const headerPath = join(entryDir, ENTRY_FILES.header);
  const keyPath = join(entryDir, ENTRY_FILES.key);
  if (!existsSync(headerPath) || !existsSync(keyPath)) return undefined;
  const header = readJson<TranscriptHeader>(headerPath, ENTRY_FILES.header);
  if (!header || typeof header !== 'object' || typeof header.grantId !== 'string') throw new Damaged(`${ENTRY_FILES.header} is not a transcript header`);
  let t: Transcript;
  if (header.v === 1 || (existsSync(join(entryDir, ENTRY_FILES.chunks)) && !existsSync(join(entryDir, ENTRY_FILES.body)))) {
    // An entry an earlier release left behind: output inline.
    const { chunks, truncated, bytes } = readChunks(join(entryDir, ENTRY_FILES.chunks));
    t = { ...header, v: 1, endedAt: null, exitCode: null, status: 'partial', truncated, outputBytes: bytes, chunks };
  } else {
    const bodyPath = join(entryDir, ENTRY_FILES.body);
    // Killed before the body was opened: an empty one (the run printed nothing it could record).
    if (!existsSync(bodyPath)) writePrivateFileAtomic(bodyPath, BODY_MAGIC.toString('latin1'));
    let body;
    try {
      body = recoverBody(bodyPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException)?.code) throw e;
      throw new Damaged(`${ENTRY_FILES.body} cannot be read as a transcript body`);
    }
    t = { ...header, v: 2, endedAt: null, exitCode: null, status: 'partial', truncated: body.gapBytes !== 0, outputBytes: body.outputBytes, chunks: [], body };
  }
  let key;
  try {
    key = privateKeyFromPem(readFileSync(keyPath, 'utf8'));
  } catch {
    throw new Damaged(`${ENTRY_FILES.key} is not a private key`);
  }
  const env = signTranscript(t, key);
  writePrivateFileAtomic(join(entryDir, ENTRY_FILES.envelope), JSON.stringify(env), true);
  for (const f of [ENTRY_FILES.key, ENTRY_FILES.chunks, ENTRY_FILES.header, ENTRY_FILES.owner]) {
    rmSync(join(entryDir, f), { force: true });
  }
  return env;
}

const PROBE_PREFIX = '.probe.';

/** Bytes the spool must be able to take for one run: the largest envelope (output cap in base64 + framing). */
export const SPOOL_RESERVE_BYTES = 512 * 1024;

/**
 * Checks, before a grant is asked for, that the spool can take this run's transcript: the directory can be
 * created and written (a read-only or foreign directory fails here), and there is room for the largest
 * transcript — written for real and removed, so quotas and tmpfs limits count. Throws GuardError('local_io')
 * (exit 74) naming the directory; nothing has been spent at the broker yet.
 */
export function assertSpoolWritable(spoolDir: string, reserveBytes = SPOOL_RESERVE_BYTES): void {
  try {
    ensurePrivateDir(spoolDir);
  } catch (e) {
    if (isGuardError(e)) throw e;
    throw spoolIoError(e, spoolDir);
  }
  const probe = join(spoolDir, `${PROBE_PREFIX}${stampToken()}`);
  try {
    const fs = statfsSync(spoolDir);
    if (fs.bavail * fs.bsize < reserveBytes * 2) {
      throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    }
    const fd = openSync(probe, 'w', 0o600);
    try {
      const block = Buffer.alloc(64 * 1024);
      // No fsync: file systems reserve blocks at write() (ext4's delayed allocation included), so a full disk or
      // quota fails here already, and an fsync would cost every call milliseconds.
      for (let n = 0; n < reserveBytes; n += block.length) writeSync(fd, block);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw spoolIoError(e, spoolDir);
  } finally {
    try {
      unlinkSync(probe);
    } catch {
      /* never created */
    }
  }
}

/**
 * Moves an entry aside to `<spool>/rejected/<grantId>.<time>` with a `rejected.json` saying why: kept (nothing
 * lost, an operator can look at it), but never retried.
 */
function moveAside(spoolDir: string, dir: string, grantId: string, now: number, code: string, message: string): string {
  const rej = join(spoolDir, REJECTED_DIR);
  ensurePrivateDir(rej);
  const to = join(rej, `${grantId}.${now}`);
  renameSync(dir, to);
  try {
    writePrivateFileAtomic(join(to, 'rejected.json'), JSON.stringify({ grantId, code, message, at: new Date(now).toISOString() }));
  } catch {
    /* the move is what matters */
  }
  return to;
}

/**
 * Puts back what dead processes left half-done: a claim whose flusher died is returned to the spool, and an entry
 * whose run died while it was being built is either completed (it has a header: recoverable) or removed (only
 * key and owner: aws never started under it). Entries of live processes are never touched.
 */
function sweepStale(spoolDir: string, names: string[]): void {
  for (const name of names) {
    if (name.startsWith(PROBE_PREFIX)) {
      // A writability probe of a run killed during its check (512 KiB of zeros).
      if (tokenState(name.slice(PROBE_PREFIX.length)) === 'dead') rmSync(join(spoolDir, name), { force: true });
      continue;
    }
    const prefix = name.startsWith(CLAIM_PREFIX) ? CLAIM_PREFIX : name.startsWith(STAGING_PREFIX) ? STAGING_PREFIX : null;
    if (!prefix) continue;
    const parsed = splitStamped(name, prefix);
    if (!parsed) continue;
    const dir = join(spoolDir, name);
    let state = tokenState(parsed.stamp);
    if (state === 'unknown') {
      try {
        if (Date.now() - statSync(dir).mtimeMs > OWNER_MAX_AGE_MS) state = 'dead';
      } catch {
        continue;
      }
    }
    if (state !== 'dead') continue;
    try {
      if (prefix === STAGING_PREFIX && !existsSync(join(dir, ENTRY_FILES.header))) {
        rmSync(dir, { recursive: true, force: true });
      } else if (!existsSync(join(spoolDir, parsed.grantId))) {
        renameSync(dir, join(spoolDir, parsed.grantId));
      }
    } catch {
      /* another flush got there first */
    }
  }
}

/**
 * Uploads every finished transcript in the spool and recovers (as `partial`) those whose run died, deleting
 * each entry only after the broker confirmed it. Called at the start and end of every run and by
 * `guard-aws audit flush`. Stops trying after the first transient failure (the broker is down: the next run
 * retries); a refused or damaged entry is moved aside to `rejected/` and reported.
 *
 * Runs in parallel share the spool (agents make many calls at once), so an entry is only ever touched by one
 * process at a time: a flush first claims it by renaming it to `.claim.<own stamp>.<grantId>` (rename is atomic:
 * exactly one claimer wins), and claims only entries that are finished or whose run is provably dead. A claim
 * whose flusher dies is returned by the next flush.
 */
export async function flushSpool(o: FlushOptions): Promise<FlushResult> {
  const result: FlushResult = { uploaded: [], recovered: [], pending: [], rejected: [] };
  if (!existsSync(o.spoolDir)) return result;
  ensurePrivateDir(o.spoolDir);
  const now = (o.clock ?? Date.now)();
  const isAlive = o.isAlive ?? ((owner: SpoolOwner) => defaultIsAlive(owner, now));
  sweepStale(o.spoolDir, readdirSync(o.spoolDir).filter((n) => n.startsWith('.')));
  const entries: { name: string; dir: string; mtime: number }[] = [];
  for (const d of readdirSync(o.spoolDir, { withFileTypes: true })) {
    if (!d.isDirectory() || d.name === REJECTED_DIR || d.name.startsWith('.')) continue;
    try {
      entries.push({ name: d.name, dir: join(o.spoolDir, d.name), mtime: statSync(join(o.spoolDir, d.name)).mtimeMs });
    } catch {
      /* taken by another flush since the listing */
    }
  }
  // Oldest first, so transcripts reach the log in the order they were made when possible.
  entries.sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name));
  const claimTag = stampToken();
  let brokerDown: string | null = null;
  for (const e of entries) {
    const reject = (dir: string, code: string, message: string) => {
      const movedTo = moveAside(o.spoolDir, dir, e.name, now, code, message);
      result.rejected.push({ grantId: e.name, code, message, movedTo });
    };
    // 1. Only finished entries and entries whose run is provably over may be claimed.
    const finished = existsSync(join(e.dir, ENTRY_FILES.envelope));
    if (!finished) {
      const ownerPath = join(e.dir, ENTRY_FILES.owner);
      if (existsSync(ownerPath)) {
        let owner: SpoolOwner | undefined;
        try {
          owner = readJson<SpoolOwner>(ownerPath, ENTRY_FILES.owner);
        } catch (err) {
          if (!(err instanceof Damaged)) continue; // gone meanwhile
        }
        if (owner && typeof owner.pid === 'number' && typeof owner.startedAt === 'string' && isAlive(owner)) {
          result.pending.push({ grantId: e.name, reason: 'run in progress' });
          continue;
        }
      }
    }
    if (brokerDown && finished) {
      result.pending.push({ grantId: e.name, reason: brokerDown });
      continue;
    }
    // 2. Claim it: exactly one process wins the rename; the others skip the entry.
    const claimed = join(o.spoolDir, `${CLAIM_PREFIX}${claimTag}.${e.name}`);
    try {
      renameSync(e.dir, claimed);
    } catch {
      continue;
    }
    const release = () => {
      try {
        renameSync(claimed, e.dir);
      } catch {
        /* left claimed: the next flush returns it (this process is then gone or done) */
      }
    };
    let env: TranscriptEnvelope | undefined;
    try {
      const envPath = join(claimed, ENTRY_FILES.envelope);
      if (existsSync(envPath)) {
        env = checkEnvelope(readJson(envPath, ENTRY_FILES.envelope), e.name);
      } else {
        env = recoverEntry(claimed);
        if (!env) throw new Damaged('the entry has neither a signed transcript nor the header and key to recover one');
        result.recovered.push(e.name);
      }
    } catch (err) {
      if (err instanceof Damaged) {
        reject(claimed, 'damaged', `spool entry ${e.name} is damaged: ${err.message}`);
      } else {
        // A disk error while recovering: keep the entry as it is for a later try.
        release();
        result.pending.push({ grantId: e.name, reason: `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      }
      continue;
    }
    if (brokerDown) {
      release();
      result.pending.push({ grantId: e.name, reason: brokerDown });
      continue;
    }
    try {
      const bodyPath = join(claimed, ENTRY_FILES.body);
      const outcome = await o.upload(env, env.transcript.body && existsSync(bodyPath) ? bodyPath : undefined);
      rmSync(claimed, { recursive: true, force: true });
      result.uploaded.push({ grantId: e.name, status: env.transcript.status, outcome });
    } catch (err) {
      if (err instanceof TranscriptRejected) {
        reject(claimed, err.code, err.message);
      } else {
        release();
        brokerDown = isGuardError(err) ? err.message : 'upload failed';
        result.pending.push({ grantId: e.name, reason: brokerDown });
      }
    }
  }
  return result;
}


