import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Staging files the broker writes itself, by name (src/audit/bodies/uploads.ts, store.ts, src/broker/remote-run.ts):
 * `upload-<grant>` + `upload-<grant>.json` (a caller's resumable upload and its claim), `put-<random>` (a stream
 * being hashed before it goes into the store), `<run>.body` + `<run>.body.tail` (a broker run's output). The sweep
 * touches nothing else: with the S3 store the staging directory is the operator's to name, and may hold other files.
 */
const OURS = /^(?:upload-[A-Za-z0-9_-]{1,128}(?:\.json)?|put-[A-Za-z0-9_-]+|[A-Za-z0-9_-]{1,128}\.body(?:\.tail)?)$/;

/** Files that belong together (an upload and its claim, a run body and its tail ring) go, or stay, together. */
function groupOf(name: string): string {
  return name.replace(/\.(?:json|tail)$/, '');
}

/**
 * Staging paths a body is being written to or read from in this process right now (reference-counted: a run's body
 * is held by the run and, while it is adopted, by the store). The sweep never removes a held file, however old its
 * mtime: a run that prints nothing for a day, or a multipart upload of a body that arrived long ago, is still live.
 */
const held = new Map<string, number>();

/** Marks a staging file as in use until the returned function is called (idempotent). */
export function holdStaging(path: string): () => void {
  const key = groupKey(path);
  held.set(key, (held.get(key) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (held.get(key) ?? 1) - 1;
    if (n > 0) held.set(key, n);
    else held.delete(key);
  };
}

function groupKey(path: string): string {
  return groupOf(resolve(path));
}

export interface StagingSweepResult {
  /** Files removed. */
  files: number;
  /** Their bytes. */
  bytes: number;
}

/**
 * Removes staging files nobody will finish: uploads a client gave up on, bodies of runs a crashed broker left behind.
 * A group of files is stale when none of them was modified within `ttlMs` and this process does not hold it. An
 * upload in progress appends (and so touches) its file with every chunk, and a run's body or tail ring is written
 * as output arrives, so across several brokers sharing a directory the age of the newest file is what tells a live
 * upload from an abandoned one; within this process the held set says so exactly.
 *
 * Synchronous on purpose: nothing else in this process can start or resume writing a group between the check and
 * its removal. A client resuming an upload that was swept is told the broker has 0 bytes (GET …/body, or 409
 * body_offset on PUT) and starts over; a transcript naming a swept body is refused as transcript_body_missing —
 * a partial body is never adopted (commit re-hashes the whole file against the signed digest and size).
 */
export function sweepStaging(dir: string, ttlMs: number, now: number): StagingSweepResult {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { files: 0, bytes: 0 };
  }
  const groups = new Map<string, { path: string; size: number; mtimeMs: number }[]>();
  for (const name of names) {
    if (!OURS.test(name)) continue;
    const path = join(dir, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // gone meanwhile
    }
    if (!st.isFile()) continue;
    const g = groupOf(name);
    const list = groups.get(g) ?? [];
    list.push({ path, size: st.size, mtimeMs: st.mtimeMs });
    groups.set(g, list);
  }
  const cutoff = now - ttlMs;
  const out = { files: 0, bytes: 0 };
  for (const [g, files] of groups) {
    if (held.has(groupKey(join(dir, g)))) continue;
    if (files.some((f) => f.mtimeMs >= cutoff)) continue;
    // The data before its claim: a claim left without data resumes at 0 (uploads.ts), never the other way round.
    files.sort((a, b) => Number(a.path.endsWith('.json')) - Number(b.path.endsWith('.json')));
    for (const f of files) {
      try {
        rmSync(f.path);
        out.files++;
        out.bytes += f.size;
      } catch {
        /* removed by another broker sharing the directory */
      }
    }
  }
  return out;
}
