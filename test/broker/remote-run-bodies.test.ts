import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FRAME, FrameDecoder } from '../../src/api/run-frames.js';
import { holdStaging, sweepStaging } from '../../src/audit/bodies/staging.js';
import { FileBodyStore } from '../../src/audit/bodies/store.js';
import { bodyFrames, replayFrames } from '../../src/audit/replay.js';
import { DEFAULT_EXECUTION } from '../../src/broker/execution.js';
import type { Issued } from '../../src/broker/issue.js';
import { RunRegistry } from '../../src/broker/remote-run.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { verifyTranscript } from '../../src/transcript/sign.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { tempDir } from '../transcript/helpers.js';

// Issue 17: a call the broker runs is recorded completely, however much it prints. The real recording path — the
// run registry spawning a real process through runAws, the real streaming masker, the body writer into the real
// file body store — with one stand-in: the program run is not aws but a small script printing 200 MB. The real aws
// (CLI v1, Python) against moto cannot print 200 MB in test time (a 200 MB object through `s3 cp - ` is minutes of
// moto and botocore); the recording path does not care which program wrote the bytes.
function issued(): Issued {
  const invocation = parseInvocation(['s3', 'cp', 's3://big/object', '-'], { account: '123456789012', region: 'us-east-1' });
  return {
    grantId: 'grt_BIGBIGBIGBIGBIGBIGBIG0',
    target: { name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/x', account: '123456789012', region: 'us-east-1', default: true },
    invocation,
    decision: { decision: 'allow', rule: 'r', reason: 'ok' },
    cli: { version: '1.45.11', table: 'v1', tableVersion: '1.45.11' } as Issued['cli'],
    execution: { mode: 'broker', where: 'broker', reasons: [] },
    credentials: { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 's', sessionToken: 't', expiration: new Date(Date.now() + 900_000).toISOString() },
    sessionPolicy: '{}',
    approvalId: undefined,
    grantResponse: () => {
      throw new Error('never');
    },
  };
}

const TOTAL = 200 * 1000 * 1000;

/** A program that prints TOTAL bytes of numbered text lines to stdout (and one line to stderr), with backpressure. */
function printer(dir: string): string {
  const path = join(dir, 'print-200mb');
  writeFileSync(
    path,
    `#!${process.execPath}
const total = ${TOTAL};
let written = 0, i = 0;
process.stderr.write('starting\\n');
function go() {
  for (;;) {
    if (written >= total) return;
    let s = '';
    while (s.length < 64 * 1024) s += String(i++).padStart(12, '0') + ' the quick brown fox jumps over the lazy dog 0123456789\\n';
    const b = Buffer.from(s).subarray(0, Math.min(s.length, total - written));
    written += b.length;
    if (!process.stdout.write(b)) return void process.stdout.once('drain', go);
  }
}
go();
`,
  );
  chmodSync(path, 0o755);
  return path;
}

describe('a broker run printing 200 MB', () => {
  it('is recorded completely into the body store, and replays byte for byte', async () => {
    const dir = tempDir('guard-big-');
    const store = new FileBodyStore(join(dir, 'bodies'));
    const attested: TranscriptEnvelope[] = [];
    const reg = new RunRegistry(
      {
        aws: { path: printer(dir), major: 1 },
        bodies: () => Object.assign(store, { maxBytes: 1024 ** 3 }),
        attest: async (e) => (attested.push(e), { id: 'rec-1' }),
      },
      () => ({ ...DEFAULT_EXECUTION, runDir: dir }),
      undefined,
      () => undefined,
    );
    const key = reg.newKey();
    const v = reg.create({ owner: 'alice', issued: issued(), files: new Map(), cwd: '/', home: undefined, key, stdin: false, plan: { inputs: [], outputs: [] } });
    // What the caller receives, hashed as it streams (never held whole).
    const seen = createHash('sha256');
    let seenBytes = 0;
    let stderr = '';
    let exit: unknown;
    const dec = new FrameDecoder();
    for await (const piece of reg.start(v.runId, 'alice')) {
      for (const f of dec.push(piece as Buffer)) {
        if (f.type === FRAME.stdout) (seen.update(f.payload), (seenBytes += f.payload.length));
        else if (f.type === FRAME.stderr) stderr += f.payload.toString();
        else if (f.type === FRAME.exit) exit = JSON.parse(f.payload.toString());
      }
    }
    expect(exit).toEqual({ exitCode: 0, recordId: 'rec-1' });
    expect(seenBytes).toBe(TOTAL);
    const callerSaw = seen.digest('hex');

    // The broker-attested transcript binds the whole output: size, digest, no gap; signed with the run's key.
    expect(attested).toHaveLength(1);
    const t = attested[0]!.transcript;
    expect(verifyTranscript(attested[0]!, key.publicKey)).toBe(true);
    expect(t).toMatchObject({ v: 2, status: 'complete', exitCode: 0, truncated: false, outputBytes: TOTAL + 'starting\n'.length, chunks: [] });
    expect(t.body!.gapBytes).toBe(0);
    expect((await store.stat(t.body!.sha256))?.size).toBe(t.body!.size);
    // Nothing left in staging.
    expect(readdirSync(store.stagingDir)).toEqual([]);

    // Replayed from storage (streamed, frame by frame): stdout is exactly what the caller saw.
    const replayed = createHash('sha256');
    let replayedBytes = 0;
    let replayedErr = '';
    await replayFrames(bodyFrames((await store.get(t.body!.sha256))!), {
      speed: 0,
      write: (s, d) => {
        if (s === 'stdout') (replayed.update(d), (replayedBytes += d.length));
        else replayedErr += d.toString();
      },
    });
    expect(replayedBytes).toBe(TOTAL);
    expect(replayed.digest('hex')).toBe(callerSaw);
    expect(replayedErr).toBe(stderr);
    expect(stderr).toBe('starting\n');
  }, 180_000);
});

describe('a broker run that goes quiet', () => {
  it('keeps its body while it runs: the staging sweep leaves a held body alone however old its mtime', async () => {
    const dir = tempDir('guard-quiet-');
    const store = new FileBodyStore(join(dir, 'bodies'));
    const go = join(dir, 'go');
    // Prints a line, then waits (silent) until the test says go, then prints another.
    const path = join(dir, 'quiet');
    writeFileSync(path, `#!${process.execPath}\nconst fs = require('fs');\nprocess.stdout.write('first\\n');\nconst t = setInterval(() => { if (fs.existsSync(${JSON.stringify(go)})) { clearInterval(t); process.stdout.write('second\\n'); } }, 20);\n`);
    chmodSync(path, 0o755);
    const attested: TranscriptEnvelope[] = [];
    const reg = new RunRegistry(
      {
        aws: { path, major: 1 },
        bodies: () => Object.assign(store, { maxBytes: 1024 ** 3, hold: holdStaging }),
        attest: async (e) => (attested.push(e), { id: 'rec-q' }),
      },
      () => ({ ...DEFAULT_EXECUTION, runDir: dir }),
      undefined,
      () => undefined,
    );
    const key = reg.newKey();
    const v = reg.create({ owner: 'alice', issued: { ...issued(), grantId: 'grt_QUIETQUIETQUIETQUIET0' }, files: new Map(), cwd: '/', home: undefined, key, stdin: false, plan: { inputs: [], outputs: [] } });
    const dec = new FrameDecoder();
    let out = '';
    let exit: unknown;
    for await (const piece of reg.start(v.runId, 'alice')) {
      for (const f of dec.push(piece as Buffer)) {
        if (f.type === FRAME.stdout) {
          out += f.payload.toString();
          if (out === 'first\n') {
            // Mid-run: the body file looks two days old (a run silent that long); the sweep must not take it.
            const body = join(store.stagingDir, `${v.runId}.body`);
            expect(existsSync(body)).toBe(true);
            const old = new Date(Date.now() - 2 * 86_400_000);
            utimesSync(body, old, old);
            expect(sweepStaging(store.stagingDir, 86_400_000, Date.now())).toEqual({ files: 0, bytes: 0 });
            expect(existsSync(body)).toBe(true);
            writeFileSync(go, '');
          }
        } else if (f.type === FRAME.exit) exit = JSON.parse(f.payload.toString());
      }
    }
    expect(exit).toEqual({ exitCode: 0, recordId: 'rec-q' });
    expect(out).toBe('first\nsecond\n');
    const t = attested[0]!.transcript;
    expect((await store.stat(t.body!.sha256))?.size).toBe(t.body!.size);
    // Adopted and released: nothing left, nothing held.
    expect(readdirSync(store.stagingDir)).toEqual([]);
  }, 60_000);
});
