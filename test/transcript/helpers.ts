import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { GrantResponse } from '../../src/api/types.js';
import { BodyDecoder, gapBytes } from '../../src/transcript/body.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTranscriptKey, type TranscriptKey } from '../../src/transcript/sign.js';
import { TranscriptRecorder, type RecorderOptions } from '../../src/transcript/recorder.js';

export function tempDir(prefix = 'guard-transcript-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A manual clock: tests move time explicitly. */
export function manualClock(start = Date.parse('2026-11-25T10:00:00.000Z')) {
  let now = start;
  const clock = () => now;
  return Object.assign(clock, { advance: (ms: number) => (now += ms) });
}

export function newRecorder(spoolDir: string, over: Partial<RecorderOptions> = {}, key: TranscriptKey = createTranscriptKey()) {
  const rec = new TranscriptRecorder({
    grantId: 'grt_test0000000000000000001',
    caller: { subject: 'alice@example.com', groups: ['developers'] },
    target: 'dev',
    argv: ['sts', 'get-caller-identity'],
    decision: 'allow',
    rule: 'default-allow',
    approvalId: null,
    privateKey: key.privateKey,
    spoolDir,
    ...over,
  });
  return { rec, key };
}

/** The frames of a body file in the old inline-chunk shape ({t, s, d base64}), for comparisons; gaps as {g: bytes}. */
export function bodyChunks(path: string): ({ t: number; s: 'o' | 'e'; d: string } | { g: number | null })[] {
  const dec = new BodyDecoder();
  const frames = dec.push(readFileSync(path));
  dec.end();
  return frames.map((f) => (f.type === 'g' ? { g: gapBytes(f) } : { t: f.t, s: f.type, d: f.data.toString('base64') }));
}

/** The body file of a recorder's spool entry. */
export const bodyPath = (rec: { entryDir: string }) => join(rec.entryDir, 'body.bin');

/**
 * A granted run's transcript in a fresh spool, as the client records it: `bytes` of random stdout (incompressible,
 * so every byte counts), finished with exit 0.
 */
export function spoolGranted(g: GrantResponse, key: TranscriptKey, bytes: number) {
  const spoolDir = tempDir();
  const rec = new TranscriptRecorder({
    grantId: g.grantId, caller: g.caller!, target: g.target, argv: g.argv, decision: g.decision, rule: g.rule,
    approvalId: g.approvalId ?? null, privateKey: key.privateKey, spoolDir,
  });
  for (let n = 0; n < bytes; n += 256 * 1024) rec.onChunk('stdout', randomBytes(Math.min(256 * 1024, bytes - n)));
  return { spoolDir, envelope: rec.finish(0), bodyFile: bodyPath(rec) };
}
