import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_FILES } from '../../src/transcript/recorder.js';
import { verifyTranscript } from '../../src/transcript/sign.js';
import { REJECTED_DIR, TranscriptRejected, flushSpool } from '../../src/transcript/spool.js';
import { defaultSpoolDir } from '../../src/transcript/spool-dir.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { GuardError } from '../../src/errors.js';
import { bodyChunks, bodyPath, manualClock, newRecorder, tempDir } from './helpers.js';

const repoRoot = resolve(__dirname, '../..');
const mode = (p: string) => statSync(p).mode & 0o777;

describe('spool location', () => {
  it('follows GUARD_AWS_STATE_DIR, then an absolute XDG_STATE_HOME, then ~/.local/state', () => {
    expect(defaultSpoolDir({ GUARD_AWS_STATE_DIR: '/s', XDG_STATE_HOME: '/x', HOME: '/h' })).toBe('/s/spool');
    expect(defaultSpoolDir({ XDG_STATE_HOME: '/x', HOME: '/h' })).toBe('/x/guard-aws/spool');
    expect(defaultSpoolDir({ XDG_STATE_HOME: 'relative', HOME: '/h' })).toBe('/h/.local/state/guard-aws/spool');
  });
});

describe('recorder spool entry', () => {
  it('is user-only: directories 0700, files 0600, even under a permissive umask', () => {
    const old = process.umask(0o000);
    try {
      const spool = join(tempDir(), 'state', 'spool');
      const { rec } = newRecorder(spool);
      rec.onChunk('stdout', 'x');
      expect(mode(spool)).toBe(0o700);
      expect(mode(rec.entryDir)).toBe(0o700);
      for (const f of readdirSync(rec.entryDir)) expect([f, mode(join(rec.entryDir, f))]).toEqual([f, 0o600]);
      expect(readdirSync(rec.entryDir).sort()).toEqual([ENTRY_FILES.body, ENTRY_FILES.header, ENTRY_FILES.key, ENTRY_FILES.owner].sort());
      rec.finish(0);
      // After signing only the envelope and the body it binds are left: the private key is gone.
      expect(readdirSync(rec.entryDir).sort()).toEqual([ENTRY_FILES.body, ENTRY_FILES.envelope].sort());
      expect(mode(join(rec.entryDir, ENTRY_FILES.envelope))).toBe(0o600);
      expect(mode(join(rec.entryDir, ENTRY_FILES.body))).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('stores exactly the bytes it is given (masking is the runner\'s job) and masks the argv itself', () => {
    const spool = tempDir();
    const given = Buffer.from([0x00, 0xff, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x0a, ...Buffer.from('"SecretString": "****"\n')]);
    const { rec } = newRecorder(spool, {
      argv: ['secretsmanager', 'create-secret', '--name', 'db', '--secret-string', 'hunter2-very-secret'],
    });
    rec.onChunk('o', given);
    const env = rec.finish(0);
    const out = Buffer.concat(bodyChunks(bodyPath(rec)).map((c) => Buffer.from('d' in c ? c.d : '', 'base64')));
    expect(out.equals(given)).toBe(true);
    // The body is the whole output: its digest covers it, no second digest.
    expect(env.transcript.body).toMatchObject({ outputSha256: null, gapBytes: 0, outputBytes: given.length });
    expect(env.transcript.argv).toEqual(['secretsmanager', 'create-secret', '--name', 'db', '--secret-string', '<masked>']);
    // Nowhere in the spool entry, at any stage.
    expect(readFileSync(join(rec.entryDir, ENTRY_FILES.envelope), 'utf8')).not.toContain('hunter2');
  });

  it('beyond the limit keeps head and tail around a marked gap, and the digest and size of the whole output', () => {
    // 64 KiB limit: a 32 KiB head, then a tail ring of 256 KiB slots (two at least: up to 512 KiB of tail).
    const { rec } = newRecorder(tempDir(), { maxOutputBytes: 64 * 1024 });
    const whole = createHash('sha256');
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      const piece = Buffer.from(`line ${String(i).padStart(6, '0')} ${'x'.repeat(1000)}\n`);
      whole.update(piece);
      total += piece.length;
      rec.onChunk(i % 7 === 0 ? 'stderr' : 'stdout', piece);
    }
    const t = rec.finish(0).transcript;
    expect(t.truncated).toBe(true);
    expect(t.outputBytes).toBe(total);
    expect(t.body!.outputSha256).toBe(whole.digest('hex'));
    const frames = bodyChunks(bodyPath(rec));
    const gapAt = frames.findIndex((f) => 'g' in f);
    expect(gapAt).toBeGreaterThan(0);
    const text = (fs: typeof frames) => Buffer.concat(fs.map((f) => Buffer.from('d' in f ? f.d : '', 'base64'))).toString();
    const head = text(frames.slice(0, gapAt));
    const tail = text(frames.slice(gapAt + 1));
    // The head is the start of the output, the tail its very end, and the gap says how much lies between.
    expect(head.startsWith('line 000000 ')).toBe(true);
    expect(head.length).toBeLessThanOrEqual(32 * 1024);
    expect(tail.endsWith(`line 001999 ${'x'.repeat(1000)}\n`)).toBe(true);
    expect((frames[gapAt] as { g: number }).g).toBe(total - head.length - tail.length);
    expect(t.body!.gapBytes).toBe(total - head.length - tail.length);
  });

  it('keeps output up to the limit whole: no gap, the body is the output', () => {
    const { rec } = newRecorder(tempDir(), { maxOutputBytes: 1024 * 1024 });
    const all: Buffer[] = [];
    for (let i = 0; i < 900; i++) {
      const piece = Buffer.alloc(1000, 0x61 + (i % 26));
      all.push(piece);
      rec.onChunk('stdout', piece);
    }
    const t = rec.finish(0).transcript;
    expect(t.truncated).toBe(false);
    expect(t.body!.gapBytes).toBe(0);
    const out = Buffer.concat(bodyChunks(bodyPath(rec)).map((f) => Buffer.from('d' in f ? f.d : '', 'base64')));
    expect(out.equals(Buffer.concat(all))).toBe(true);
  });

  it('refuses a second recorder for the same grant and grant ids that could escape the spool', () => {
    const spool = tempDir();
    newRecorder(spool);
    expect(() => newRecorder(spool)).toThrow(/EEXIST/);
    expect(() => newRecorder(spool, { grantId: '../../etc' })).toThrow(GuardError);
  });
});

describe('flushSpool', () => {
  it('uploads finished transcripts and deletes them only after the broker confirmed', async () => {
    const spool = tempDir();
    const { rec } = newRecorder(spool);
    rec.onChunk('stdout', 'ok\n');
    rec.finish(0);

    const down = await flushSpool({
      spoolDir: spool,
      upload: async () => {
        throw new GuardError('broker_unreachable', 'broker unreachable at http://127.0.0.1:9: ECONNREFUSED');
      },
    });
    expect(down.uploaded).toEqual([]);
    expect(down.pending).toHaveLength(1);
    expect(existsSync(join(rec.entryDir, ENTRY_FILES.envelope))).toBe(true);

    const got: TranscriptEnvelope[] = [];
    const up = await flushSpool({ spoolDir: spool, upload: async (e) => (got.push(e), 'recorded') });
    expect(up.uploaded).toEqual([{ grantId: 'grt_test0000000000000000001', status: 'complete', outcome: 'recorded' }]);
    expect(got).toHaveLength(1);
    expect(existsSync(rec.entryDir)).toBe(false);
  });

  it('leaves a live run alone, and moves a refused transcript aside instead of deleting it', async () => {
    const spool = tempDir();
    const live = newRecorder(spool, { grantId: 'grt_live' }).rec;
    live.onChunk('stdout', 'still running');
    const refused = newRecorder(spool, { grantId: 'grt_refused' }).rec;
    refused.finish(0);
    const r = await flushSpool({
      spoolDir: spool,
      upload: async () => {
        throw new TranscriptRejected('transcript_signature_invalid', 'nope');
      },
    });
    expect(r.pending).toEqual([{ grantId: 'grt_live', reason: 'run in progress' }]);
    expect(r.rejected).toEqual([
      { grantId: 'grt_refused', code: 'transcript_signature_invalid', message: 'nope', movedTo: expect.stringMatching(/rejected\/grt_refused\.\d+$/) },
    ]);
    expect(readdirSync(join(spool, REJECTED_DIR))[0]).toMatch(/^grt_refused\./);
    expect(existsSync(join(live.entryDir, ENTRY_FILES.body))).toBe(true);
  });

  it('presumes a run older than 12 hours dead even if its pid is alive (pid reuse)', async () => {
    const spool = tempDir();
    const started = Date.now() - 13 * 3600_000;
    newRecorder(spool, { clock: () => started }).rec.onChunk('stdout', 'x');
    const r = await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(r.recovered).toEqual(['grt_test0000000000000000001']);
  });

  it('recovers an entry whose owner is gone as partial, ignoring a torn last line', async () => {
    const spool = tempDir();
    const clock = manualClock();
    const { rec, key } = newRecorder(spool, { clock });
    clock.advance(10);
    rec.onChunk('stdout', 'line one\n');
    // Simulate dying mid-write of the next frame: its header and part of its data.
    writeFileSync(join(rec.entryDir, ENTRY_FILES.body), Buffer.from([0x6f, 0, 0, 0, 20, 0, 0, 0, 9, 0x6c, 0x69]), { flag: 'a' });
    const got: TranscriptEnvelope[] = [];
    let frames: ReturnType<typeof bodyChunks> = [];
    const r = await flushSpool({ spoolDir: spool, upload: async (e, p) => (got.push(e), (frames = bodyChunks(p!)), 'recorded'), isAlive: () => false });
    expect(r.recovered).toEqual(['grt_test0000000000000000001']);
    const t = got[0]!.transcript;
    expect(t).toMatchObject({ status: 'partial', exitCode: null, endedAt: null, outputBytes: 9 });
    expect(frames).toEqual([{ t: 10, s: 'o', d: Buffer.from('line one\n').toString('base64') }]);
    expect(t.body).toMatchObject({ outputSha256: null, gapBytes: 0, outputBytes: 9 });
    expect(verifyTranscript(got[0]!, key.publicKey)).toBe(true);
  });
});

describe('a run killed mid-way (real SIGKILL)', () => {
  const dist = join(repoRoot, 'dist', 'transcript', 'recorder.js');
  beforeAll(() => {
    if (!existsSync(dist)) spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: repoRoot });
  }, 120_000);

  it('leaves a partial transcript that the next flush recovers, signs and uploads marked partial', async () => {
    const spool = tempDir();
    const child = `
      import { TranscriptRecorder } from ${JSON.stringify(dist)};
      import { createTranscriptKey } from ${JSON.stringify(join(repoRoot, 'dist/transcript/sign.js'))};
      const key = createTranscriptKey();
      process.stdout.write(key.publicKey + '\\n');
      const rec = new TranscriptRecorder({ grantId: 'grt_killed', caller: { subject: 'bob' }, target: 'dev',
        argv: ['s3', 'ls'], decision: 'allow', rule: null, privateKey: key.privateKey, spoolDir: process.argv[1] });
      rec.onChunk('stdout', 'bucket-a\\n');
      rec.onChunk('stderr', 'slow...\\n');
      process.kill(process.pid, 'SIGKILL');
      rec.onChunk('stdout', 'never written\\n');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', child, spool], { encoding: 'utf8' });
    expect(r.signal).toBe('SIGKILL');
    const publicKey = r.stdout.trim();
    const got: TranscriptEnvelope[] = [];
    let frames: ReturnType<typeof bodyChunks> = [];
    const res = await flushSpool({ spoolDir: spool, upload: async (e, p) => (got.push(e), (frames = bodyChunks(p!)), 'recorded') });
    expect(res.recovered).toEqual(['grt_killed']);
    expect(got).toHaveLength(1);
    const t = got[0]!.transcript;
    expect(t.status).toBe('partial');
    expect(frames.map((c) => ('d' in c ? [c.s, Buffer.from(c.d, 'base64').toString()] : []))).toEqual([
      ['o', 'bucket-a\n'],
      ['e', 'slow...\n'],
    ]);
    expect(verifyTranscript(got[0]!, publicKey)).toBe(true);
    expect(readdirSync(spool)).toEqual([]);
  });
});
