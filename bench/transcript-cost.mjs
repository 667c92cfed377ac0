#!/usr/bin/env node
// Transcript cost: what signing and uploading the transcript of `guard-aws sts get-caller-identity` adds to the
// whole call. Target: at most 5% of the whole call's median time (transcripts cannot be switched off).
//
// Measured here, all real and on loopback: moto_server as STS, the broker (hono + SQLite) with the transcript
// route mounted, a real grant per run (POST /v1/grants with the run's Ed25519 transcript key), then
//   record   = TranscriptRecorder: spool entry (0600 files), the chunk, finish() → canonical JSON + Ed25519 sign
//   upload   = POST /v1/transcripts (broker checks signature + grant, appends to the chain: SHA-256 + RSA sign)
// against the whole call:
//   plain    = plain `aws sts get-caller-identity` on the same moto (a floor for the guarded call: guard-aws
//              runs this same process plus its own work), and
//   guarded  = `node bin/guard-aws.js sts get-caller-identity` through the same broker (its own transcript
//              included), alternating with plain aws; GUARD_AWS_BENCH_E2E=0 skips it.
// Usage: npm run build && node bench/transcript-cost.mjs   (TRANSCRIPT_BENCH_N runs, default 15)
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { dist, root } from './lib/core.mjs';
import { startBenchBroker } from './lib/stack.mjs';
const N = Number(process.env.TRANSCRIPT_BENCH_N ?? 15);
const hardStop = setTimeout(() => (console.error('transcript-cost bench: hard time limit reached'), process.exit(2)), 300_000);
hardStop.unref();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeProcess(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve({ ms: performance.now() - t, out }) : reject(new Error(`${args.join(' ')} exited ${code}: ${err.slice(0, 300)}`))));
  });
}

async function main() {
  const { auditRoutes } = await dist('broker/routes/audit.js');
  const { TranscriptRecorder } = await dist('transcript/recorder.js');
  const { createTranscriptKey } = await dist('transcript/sign.js');
  const { createTranscriptUploader } = await dist('transcript/upload.js');
  const { broker, moto, dir, token, core, close } = await startBenchBroker({ name: 'transcript', routes: () => [auditRoutes()] });
  const upload = createTranscriptUploader({ brokerUrl: broker.url, getToken: async () => token });
  const aws = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' }).stdout.trim() || 'aws';
  const awsEnv = { PATH: process.env.PATH, HOME: dir, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  let e2e = process.env.GUARD_AWS_BENCH_E2E !== '0';
  const guardEnv = { PATH: process.env.PATH, HOME: dir, GUARD_AWS_BROKER: broker.url, GUARD_AWS_TOKEN: token, GUARD_AWS_STATE_DIR: join(dir, 'state'), CI: '1' };

  const rec = [];
  const up = [];
  const plain = [];
  const guarded = [];
  try {
    let sample = (await timeProcess(aws, ['--endpoint-url', moto.endpoint, 'sts', 'get-caller-identity'], awsEnv)).out;
    for (let i = 0; i < N + 2; i++) {
      const p = await timeProcess(aws, ['--endpoint-url', moto.endpoint, 'sts', 'get-caller-identity'], awsEnv);
      sample = p.out;
      if (e2e) {
        try {
          guarded.push((await timeProcess(process.execPath, [join(root, 'bin/guard-aws.js'), 'sts', 'get-caller-identity'], guardEnv)).ms);
        } catch (e) {
          console.log(`guarded call failed, measuring the transcript alone: ${e.message}`);
          e2e = false;
          guarded.length = 0;
        }
      }
      // A real grant for this run, bound to a fresh transcript key.
      const key = createTranscriptKey();
      const res = await fetch(`${broker.url}/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ argv: ['sts', 'get-caller-identity'], transcriptKey: key.publicKey }) });
      if (res.status !== 200) throw new Error(`grant refused: ${res.status} ${await res.text()}`);
      const g = await res.json();
      const t0 = performance.now();
      const r = new TranscriptRecorder({ grantId: g.grantId, caller: g.caller ?? { subject: 'bench@example.com' }, target: g.target, argv: g.argv, decision: g.decision, rule: g.rule, approvalId: g.approvalId ?? null, privateKey: key.privateKey, spoolDir: join(dir, 'spool') });
      r.onChunk('stdout', sample);
      const envelope = r.finish(0);
      const t1 = performance.now();
      // The body (one chunk, acknowledged) and then the transcript, as a guarded call sends them.
      const outcome = await upload(envelope, join(r.entryDir, 'body.bin'));
      const t2 = performance.now();
      if (outcome !== 'recorded') throw new Error(`upload: ${outcome}`);
      rmSync(r.entryDir, { recursive: true, force: true });
      if (i >= 2) {
        // The first two rounds warm up JIT, connections and moto.
        plain.push(p.ms);
        rec.push(t1 - t0);
        up.push(t2 - t1);
      }
    }
    const mRec = median(rec);
    const mUp = median(up);
    const mPlain = median(plain);
    const added = mRec + mUp;
    console.log(`core: ${core}; ${N} runs, medians`);
    console.log(`record + sign (spool, Ed25519):        ${mRec.toFixed(2)} ms`);
    console.log(`upload (PUT body, POST /v1/transcripts, chain): ${mUp.toFixed(2)} ms`);
    console.log(`transcript total:                      ${added.toFixed(2)} ms`);
    console.log(`plain aws sts get-caller-identity:     ${mPlain.toFixed(1)} ms`);
    console.log(`transcript / plain aws call:           ${((added / mPlain) * 100).toFixed(2)}%  (a guarded call is longer, so its share is smaller)`);
    if (guarded.length) {
      const mG = median(guarded.slice(2));
      console.log(`guard-aws sts get-caller-identity:     ${mG.toFixed(1)} ms`);
      console.log(`transcript / guarded call:             ${((added / mG) * 100).toFixed(2)}%  (target ≤ 5%) ${added / mG <= 0.05 ? 'OK' : 'ABOVE TARGET'}`);
    } else {
      console.log(`guarded call: skipped; vs plain aws: ${added / mPlain <= 0.05 ? 'OK' : 'ABOVE TARGET'} (≤ 5%)`);
    }
    const whole = guarded.length ? median(guarded.slice(2)) : mPlain;
    const { report } = await import('./lib/report.mjs');
    report({
      name: 'transcript-cost',
      measures: 'signing + uploading the transcript vs the whole guarded call',
      figure: `${((added / whole) * 100).toFixed(2)}% (${added.toFixed(2)} ms)`,
      baseline: `${guarded.length ? 'guarded' : 'plain aws'} sts get-caller-identity: ${whole.toFixed(0)} ms`,
      target: '≤ 5%',
      met: added / whole <= 0.05,
    });
  } finally {
    await close();
  }
}

main().then(
  () => clearTimeout(hardStop),
  (e) => {
    console.error(`transcript-cost bench failed: ${e?.stack ?? e}`);
    process.exitCode = 1;
  },
);
