import { describe, expect, it } from 'vitest';
import { createTranscriptKey, signTranscript, verifyTranscript } from '../../src/transcript/sign.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { bodyChunks, bodyPath, manualClock, newRecorder, tempDir } from './helpers.js';

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('transcript signing', () => {
  const clock = manualClock();
  const { rec, key } = newRecorder(tempDir(), { clock });
  clock.advance(5);
  rec.onChunk('stdout', '{"Account": "123456789012"}\n');
  clock.advance(7);
  rec.onChunk('stderr', Buffer.from('warning\n'));
  clock.advance(3);
  const env = rec.finish(0);

  it('round-trips: the recorder signs, the public half verifies, and the content is what was given', () => {
    expect(verifyTranscript(env, key.publicKey)).toBe(true);
    const t = env.transcript;
    expect(t).toMatchObject({ grantId: 'grt_test0000000000000000001', status: 'complete', exitCode: 0, truncated: false });
    expect(t.startedAt).toBe('2026-11-25T10:00:00.000Z');
    expect(t.endedAt).toBe('2026-11-25T10:00:00.015Z');
    expect(t.chunks).toEqual([]);
    expect(t.body).toMatchObject({ format: 'gab1', outputBytes: 36, gapBytes: 0 });
    expect(bodyChunks(bodyPath(rec))).toEqual([
      { t: 5, s: 'o', d: Buffer.from('{"Account": "123456789012"}\n').toString('base64') },
      { t: 12, s: 'e', d: Buffer.from('warning\n').toString('base64') },
    ]);
    expect(t.outputBytes).toBe(28 + 8);
  });

  it('still verifies after a JSON round trip with keys reordered (canonical form)', () => {
    const r2 = { sig: env.sig, alg: env.alg, transcript: Object.fromEntries(Object.entries(env.transcript).reverse()) } as TranscriptEnvelope;
    expect(verifyTranscript(r2, key.publicKey)).toBe(true);
  });

  it('refuses a wrong key, a changed body, a changed grant, and a transplanted signature', () => {
    expect(verifyTranscript(env, createTranscriptKey().publicKey)).toBe(false);

    // The output is bound by the body's digest: another body (another digest or size) breaks the signature.
    const changedOutput = clone(env);
    changedOutput.transcript.body!.sha256 = '0'.repeat(64);
    expect(verifyTranscript(changedOutput, key.publicKey)).toBe(false);
    const changedSize = clone(env);
    changedSize.transcript.body!.size += 1;
    expect(verifyTranscript(changedSize, key.publicKey)).toBe(false);

    const otherGrant = clone(env);
    otherGrant.transcript.grantId = 'grt_other';
    expect(verifyTranscript(otherGrant, key.publicKey)).toBe(false);

    const exit = clone(env);
    exit.transcript.exitCode = 1;
    expect(verifyTranscript(exit, key.publicKey)).toBe(false);

    // An attacker with their own key signs a forged transcript: it verifies only against their key.
    const mallory = createTranscriptKey();
    const forged = signTranscript({ ...clone(env.transcript), exitCode: 0, chunks: [] }, mallory.privateKey);
    expect(verifyTranscript(forged, mallory.publicKey)).toBe(true);
    expect(verifyTranscript(forged, key.publicKey)).toBe(false);

    // One bit of the signature itself flipped (rewriting the last base64 characters could leave the bytes equal).
    const sigBytes = Buffer.from(env.sig, 'base64url');
    sigBytes[10] = sigBytes[10]! ^ 0x01;
    expect(verifyTranscript({ ...env, sig: sigBytes.toString('base64url') }, key.publicKey)).toBe(false);
    expect(verifyTranscript({ ...env, alg: 'none' as never }, key.publicKey)).toBe(false);
    expect(verifyTranscript(env, 'not-a-key')).toBe(false);
  });
});

describe('chunk timing', () => {
  it('takes atMs as milliseconds since the run started (the runner\'s clock), else measures from the recorder start', () => {
    const clock = manualClock();
    const { rec } = newRecorder(tempDir(), { clock });
    rec.onChunk('stdout', 'a', 250.4);
    clock.advance(900);
    rec.onChunk('stderr', 'b');
    rec.finish(0);
    expect(bodyChunks(bodyPath(rec)).map((c) => ('t' in c ? c.t : -1))).toEqual([250, 900]);
  });
});
