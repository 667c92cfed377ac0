#!/usr/bin/env node
// Transcript bodies (issue 17): what recording the whole output costs, and what checking it costs.
//   1. recording overhead: a real process printing 500 MB through runAws (sealed run + streaming masker), with
//      the output recorded into a body file (src/transcript/body.ts: the path of both the client's recorder and the
//      broker's run) vs the same run not recorded, alternating; ratio of wall times, target ≤ 1.05.
//   2. broker RSS while recording: a broker run (RunRegistry, the output framed to a caller that reads it and
//      written into the file body store) of 500 MB; peak RSS above the same process before the run, target bounded
//      (≤ 64 MB above idle, whatever the output's size).
//   3. verify --bodies throughput: re-hashing 500 MB of stored bodies against their records (verifyBodies over the
//      file store) vs plain SHA-256 of the same files read the same way.
// The program printing is a small node script, not aws: aws cannot print 500 MB quickly here (README, remote-run-
// stream: 29 MB/s from moto), and the recording path does not care which program wrote the bytes.
//   node bench/transcript-bodies.mjs [--mb 500] [--runs 3]
// Needs dist/ (npm run build).
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { report } from './lib/report.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const MB = Number(opt('--mb', '500'));
const RUNS = Number(opt('--runs', '3'));
const TOTAL = MB * 1000 * 1000;
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const { runAws } = await import(join(dist, 'runner/run-aws.js'));
const { BodyWriter } = await import(join(dist, 'transcript/body.js'));
const { FileBodyStore } = await import(join(dist, 'audit/bodies/store.js'));
const { verifyBodies } = await import(join(dist, 'audit/bodies/verify.js'));
const { RunRegistry } = await import(join(dist, 'broker/remote-run.js'));
const { DEFAULT_EXECUTION } = await import(join(dist, 'broker/execution.js'));
const { parseInvocation } = await import(join(dist, 'invocation/parse.js'));
const { FrameDecoder } = await import(join(dist, 'api/run-frames.js'));

const dir = mkdtempSync(join(tmpdir(), 'guard-bench-bodies-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// Text lines like a large `list-objects` output, with backpressure.
const printer = join(dir, 'print');
writeFileSync(
  printer,
  `#!${process.execPath}
// argv: total bytes, rate in MB/s (paced like a real aws download; 0 = as fast as the pipe takes it). A broker run
// passes the call's argv instead: then ${TOTAL} bytes, unpaced.
const total = Number(process.argv[2]) || ${TOTAL};
const rate = Number(process.argv[3]) || 0;
const t0 = Date.now();
let written = 0, i = 0;
function go() {
  for (;;) {
    if (written >= total) return;
    if (rate && written / 1e6 / rate > (Date.now() - t0) / 1000) return void setTimeout(go, 5);
    let s = '';
    while (s.length < 64 * 1024) s += '{"Key": "logs/2026/11/30/' + String(i++).padStart(10, '0') + '.gz", "Size": 123456, "StorageClass": "STANDARD"},\\n';
    const b = Buffer.from(s).subarray(0, Math.min(s.length, total - written));
    written += b.length;
    if (!process.stdout.write(b)) return void process.stdout.once('drain', go);
  }
}
go();
`,
);
chmodSync(printer, 0o755);
const aws = { path: printer, major: 1 };
const credentials = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret-example', sessionToken: 'token-example', expiration: new Date(Date.now() + 3600_000).toISOString() };
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

async function once(record, total = TOTAL, rate = 0, offload = true) {
  let writer;
  const path = join(dir, `body-${Math.random().toString(36).slice(2)}`);
  // The broker's settings (remote-run.ts): fsynced, hashed and written on a helper thread past the first 8 MiB.
  if (record) writer = new BodyWriter(path, { durable: true, offload });
  const t0 = performance.now();
  const r = await runAws({
    aws, argv: [String(total), String(rate)], credentials, region: 'us-east-1', stdin: null, stdout: sink(), stderr: sink(), tty: null,
    cwd: dir, tmpRoot: dir, callerEnv: {}, signals: new EventEmitter(),
    ...(record ? { onChunk: (s, c, at) => writer.write(s === 'stdout' ? 'o' : 'e', c, at) } : {}),
  });
  const ref = writer?.finish();
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`printer exited ${r.exitCode}`);
  if (ref && ref.outputBytes !== total) throw new Error(`recorded ${ref.outputBytes} of ${total} bytes`);
  rmSync(path, { force: true });
  return ms;
}

// 1. Recording overhead, alternating (one warm-up each).
await once(false);
await once(true);
const plain = [];
const rec = [];
const direct = [];
for (let i = 0; i < RUNS; i++) {
  plain.push(await once(false));
  rec.push(await once(true));
  direct.push(await once(true, TOTAL, 0, false));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratio = median(rec) / median(plain);
console.log(`recording: ${median(rec).toFixed(0)} ms vs not recorded ${median(plain).toFixed(0)} ms (${MB} MB): ${ratio.toFixed(3)}×; written on the masking thread itself (the client's recorder): ${(median(direct) / median(plain)).toFixed(3)}×`);
report({
  name: 'transcript-bodies',
  measures: `recording a ${MB} MB output into its transcript body (runAws + masker + body file as the broker writes it: fsynced, hashed and written on a helper thread) vs the same run not recorded, alternating`,
  figure: `${ratio.toFixed(3)}× (${median(rec).toFixed(0)} ms, ${((MB / median(rec)) * 1000).toFixed(0)} MB/s)`,
  baseline: `not recorded: ${median(plain).toFixed(0)} ms (medians of ${RUNS}); written on the masking thread (the client's recorder): ${(median(direct) / median(plain)).toFixed(3)}×`,
  target: '≤ 1.05',
  met: ratio <= 1.05,
});

// 1b. The same at the rate a real aws download runs here (README, remote-run-stream: 29 MB/s from moto).
// The whole output the issue names (500 MB), at the rate a real aws produces it here.
const PACED_MB = MB;
const pp = [];
const pr = [];
for (let i = 0; i < RUNS; i++) {
  pp.push(await once(false, PACED_MB * 1e6, 29));
  pr.push(await once(true, PACED_MB * 1e6, 29));
}
const pratio = median(pr) / median(pp);
console.log(`recording at 29 MB/s: ${median(pr).toFixed(0)} ms vs ${median(pp).toFixed(0)} ms (${PACED_MB} MB): ${pratio.toFixed(3)}×`);
report({
  name: 'transcript-bodies-paced',
  measures: `the same with the output paced at 29 MB/s (what a real \`aws s3 cp … -\` from moto produces here), ${PACED_MB} MB`,
  figure: `${pratio.toFixed(3)}× (${median(pr).toFixed(0)} ms)`,
  baseline: `not recorded: ${median(pp).toFixed(0)} ms (medians of ${RUNS})`,
  target: '≤ 1.05',
  met: pratio <= 1.05,
});

// 2. Broker RSS while recording a broker run.
const rss = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
};
const store = new FileBodyStore(join(dir, 'bodies'));
const attested = [];
const reg = new RunRegistry(
  { aws, bodies: () => Object.assign(store, { maxBytes: 1024 ** 3 }), attest: async (e) => (attested.push(e), { id: 'rec' }) },
  () => ({ ...DEFAULT_EXECUTION, runDir: dir }),
  undefined,
  () => undefined,
);
const issued = {
  grantId: 'grt_BENCHBENCHBENCHBENCH00',
  target: { name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/x', account: '123456789012', region: 'us-east-1', default: true },
  invocation: parseInvocation(['s3', 'cp', 's3://big/object', '-'], { account: '123456789012', region: 'us-east-1' }),
  decision: { decision: 'allow', rule: 'r', reason: 'ok' },
  cli: { version: '1.45.11', table: 'v1', tableVersion: '1.45.11' },
  execution: { mode: 'broker', where: 'broker', reasons: [] },
  credentials,
  sessionPolicy: '{}',
  approvalId: undefined,
  grantResponse: () => {
    throw new Error('never');
  },
};
global.gc?.();
const idle = rss();
let peak = idle;
const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
const v = reg.create({ owner: 'alice', issued, files: new Map(), cwd: '/', home: undefined, key: reg.newKey(), stdin: false, plan: { inputs: [], outputs: [] } });
const dec = new FrameDecoder();
let got = 0;
for await (const piece of reg.start(v.runId, 'alice')) for (const f of dec.push(piece)) if (f.type === 1) got += f.payload.length;
clearInterval(timer);
peak = Math.max(peak, rss());
const body = attested[0]?.transcript.body;
if (!body || body.outputBytes !== TOTAL || got !== TOTAL) throw new Error('the broker run was not recorded whole');
const above = (peak - idle) / 2 ** 20;
console.log(`broker run: RSS ${(idle / 2 ** 20).toFixed(0)} MB idle, peak ${(peak / 2 ** 20).toFixed(0)} MB (+${above.toFixed(1)} MB) for ${MB} MB recorded`);
report({
  name: 'transcript-bodies-rss',
  measures: `broker process RSS while a broker run streams ${MB} MB to its caller and into the body store`,
  figure: `+${above.toFixed(1)} MB above idle (peak ${(peak / 2 ** 20).toFixed(0)} MB)`,
  baseline: `the same process before the run: ${(idle / 2 ** 20).toFixed(0)} MB`,
  target: '≤ 64 MB above idle',
  met: above <= 64,
});

// 3. verify --bodies throughput vs plain SHA-256 of the same files.
const records = [];
const files = [];
const PIECE = 25 * 1000 * 1000;
for (let i = 0, seq = 1; i * PIECE < TOTAL; i++, seq++) {
  const b = Buffer.alloc(PIECE, i % 251);
  b.write(`body ${i}`);
  const { sha256, size } = await store.put((await import('node:stream')).Readable.from([b]));
  files.push(join(store.dir, 'sha256', sha256.slice(0, 2), sha256.slice(2)));
  records.push({ seq, id: `r${seq}`, kind: 'transcript', grantId: null, body: JSON.stringify({ body: { sha256, size, location: store.location(sha256) } }) });
}
const timeIt = async (fn) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const plainHash = async () => {
  for (const f of files) {
    const h = createHash('sha256');
    for await (const c of createReadStream(f, { highWaterMark: 1024 * 1024 })) h.update(c);
    h.digest('hex');
  }
};
const verify = async () => {
  const r = await verifyBodies(records, store);
  if (!r.ok || r.checked !== records.length) throw new Error('verifyBodies failed');
};
await plainHash();
const tp = [];
const tv = [];
for (let i = 0; i < RUNS; i++) {
  tp.push(await timeIt(plainHash));
  tv.push(await timeIt(verify));
}
const bytes = files.length * PIECE;
const mbs = (ms) => bytes / 1e6 / (ms / 1000);
console.log(`verify --bodies: ${mbs(median(tv)).toFixed(0)} MB/s; plain SHA-256 of the same files: ${mbs(median(tp)).toFixed(0)} MB/s`);
report({
  name: 'transcript-bodies-verify',
  measures: `\`audit verify --bodies\` re-hashing ${(bytes / 1e6).toFixed(0)} MB of stored bodies (${files.length} bodies) against their records`,
  figure: `${mbs(median(tv)).toFixed(0)} MB/s (${(median(tp) / median(tv)).toFixed(2)}× plain)`,
  baseline: `plain SHA-256 of the same files, same reads: ${mbs(median(tp)).toFixed(0)} MB/s`,
  target: '— (reported)',
  met: null,
});
