import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isGuardError } from '../errors.js';
import { ENTRY_FILES, type SpoolOwner, type TranscriptHeader } from './recorder.js';
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
  upload: (env: TranscriptEnvelope) => Promise<UploadOutcome>;
  /** Whether the run that owns an unfinished entry is still going. Default: same host and the pid exists. */
  isAlive?: (owner: SpoolOwner) => boolean;
  clock?: () => number;
}

export interface FlushResult {
  uploaded: { grantId: string; status: 'complete' | 'partial'; outcome: UploadOutcome }[];
  recovered: string[];
  /** Still spooled: the broker could not be reached, or the run is still going. */
  pending: { grantId: string; reason: string }[];
  /** Refused by the broker; moved to `<spool>/rejected/`. */
  rejected: { grantId: string; code: string }[];
}

/**
 * A run older than this is presumed dead whatever its pid says (12 h is the longest STS session: a run cannot
 * outlive its credentials usefully). Covers owners on another host, which cannot be checked, and reused pids.
 */
const OWNER_MAX_AGE_MS = 12 * 3600_000;

function defaultIsAlive(owner: SpoolOwner, now: number): boolean {
  if (!(now - Date.parse(owner.startedAt) < OWNER_MAX_AGE_MS)) return false;
  if (owner.host !== hostname()) return true;
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but is someone else's — still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/**
 * Turns an unfinished entry (its run was killed) into a signed transcript marked `partial`, with the key the
 * run left behind, then removes the key. Returns undefined when the entry holds nothing recoverable.
 */
export function recoverEntry(entryDir: string): TranscriptEnvelope | undefined {
  const headerPath = join(entryDir, ENTRY_FILES.header);
  const keyPath = join(entryDir, ENTRY_FILES.key);
  if (!existsSync(headerPath) || !existsSync(keyPath)) return undefined;
  const header = JSON.parse(readFileSync(headerPath, 'utf8')) as TranscriptHeader;
  const { chunks, truncated, bytes } = readChunks(join(entryDir, ENTRY_FILES.chunks));
  const t: Transcript = {
    ...header,
    endedAt: null,
    exitCode: null,
    status: 'partial',
    truncated,
    outputBytes: bytes,
    chunks,
  };
  const env = signTranscript(t, privateKeyFromPem(readFileSync(keyPath, 'utf8')));
  writePrivateFileAtomic(join(entryDir, ENTRY_FILES.envelope), JSON.stringify(env), true);
  for (const f of [ENTRY_FILES.key, ENTRY_FILES.chunks, ENTRY_FILES.header, ENTRY_FILES.owner]) {
    rmSync(join(entryDir, f), { force: true });
  }
  return env;
}

/**
 * Uploads every finished transcript in the spool and recovers (as `partial`) those whose run died, deleting
 * each entry only after the broker confirmed it. Called at the start and end of every run and by
 * `guard-aws audit flush`. Stops trying after the first transient failure (the broker is down: the next run
 * retries); a refused transcript is moved aside to `rejected/` and reported.
 */
export async function flushSpool(o: FlushOptions): Promise<FlushResult> {
  const result: FlushResult = { uploaded: [], recovered: [], pending: [], rejected: [] };
  if (!existsSync(o.spoolDir)) return result;
  ensurePrivateDir(o.spoolDir);
  const now = (o.clock ?? Date.now)();
  const isAlive = o.isAlive ?? ((owner: SpoolOwner) => defaultIsAlive(owner, now));
  // Oldest first, so transcripts reach the log in the order they were made when possible.
  const entries = readdirSync(o.spoolDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== REJECTED_DIR)
    .map((d) => ({ name: d.name, dir: join(o.spoolDir, d.name), mtime: statSync(join(o.spoolDir, d.name)).mtimeMs }))
    .sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name));
  let brokerDown: string | null = null;
  for (const e of entries) {
    let env: TranscriptEnvelope | undefined;
    const envPath = join(e.dir, ENTRY_FILES.envelope);
    try {
      if (existsSync(envPath)) {
        env = JSON.parse(readFileSync(envPath, 'utf8')) as TranscriptEnvelope;
      } else {
        const ownerPath = join(e.dir, ENTRY_FILES.owner);
        if (existsSync(ownerPath)) {
          const owner = JSON.parse(readFileSync(ownerPath, 'utf8')) as SpoolOwner;
          if (isAlive(owner)) {
            result.pending.push({ grantId: e.name, reason: 'run in progress' });
            continue;
          }
        }
        env = recoverEntry(e.dir);
        if (!env) {
          // Killed before the header was written: nothing ran under this grant's transcript, nothing to send.
          rmSync(e.dir, { recursive: true, force: true });
          continue;
        }
        result.recovered.push(e.name);
      }
    } catch {
      // Another process is finishing or recovering this entry right now; leave it to that process.
      result.pending.push({ grantId: e.name, reason: 'entry busy' });
      continue;
    }
    if (brokerDown) {
      result.pending.push({ grantId: e.name, reason: brokerDown });
      continue;
    }
    try {
      const outcome = await o.upload(env);
      rmSync(e.dir, { recursive: true, force: true });
      result.uploaded.push({ grantId: e.name, status: env.transcript.status, outcome });
    } catch (err) {
      if (err instanceof TranscriptRejected) {
        const rej = join(o.spoolDir, REJECTED_DIR);
        ensurePrivateDir(rej);
        renameSync(e.dir, join(rej, `${e.name}.${now}`));
        result.rejected.push({ grantId: e.name, code: err.code });
      } else {
        brokerDown = isGuardError(err) ? err.message : 'upload failed';
        result.pending.push({ grantId: e.name, reason: brokerDown });
      }
    }
  }
  return result;
}
