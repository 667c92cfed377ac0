#!/usr/bin/env node
// Masking throughput and memory: a generated JSON document (default 500 MB, built on the fly, never written to
// disk) streamed through the masker, against a plain pass-through stream in the same run.
// Targets (issue 3): ≥ 100 MB/s, peak RSS ≤ 150 MB.
// Each variant runs in its own child process so its peak RSS (VmHWM) is its own.
//   node bench/masking.mjs [--mb 500] [--json]
// Needs dist/ (npm run build).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Transform, Writable, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const MB = Number(opt('--mb', '500'));

function record(i) {
  // A realistic mix: mostly ordinary fields, with secrets of several kinds every few records.
  const r = {
    ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-${i}-AbCdEf`,
    Name: `app/db-${i}`,
    VersionId: `28c932fe-19bd-40eb-ad93-${String(i).padStart(12, '0')}`,
    VersionStages: ['AWSCURRENT'],
    CreatedDate: '2026-11-25T17:48:50.123000+00:00',
    Tags: [{ Key: 'team', Value: 'payments' }, { Key: 'Type', Value: 'String' }],
    Description: 'Connection settings for the payments database, rotated every 30 days by the rotation lambda.',
  };
  if (i % 4 === 0) r.SecretString = JSON.stringify({ username: 'app', password: `pw-${i}-x8Jd92kLq0pZ` });
  if (i % 7 === 0)
    r.Credentials = {
      AccessKeyId: 'ASIAIOSFODNN7EXAMPLE',
      SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      SessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE' + 'A'.repeat(300),
      Expiration: '2026-11-25T18:48:50Z',
    };
  return r;
}

function makeBlocks() {
  // Three different blocks so chunk boundaries fall in different places of the records.
  const blocks = [];
  let i = 0;
  for (const target of [64 * 1024 + 17, 48 * 1024 + 5, 80 * 1024 + 111]) {
    let s = '';
    while (s.length < target) s += '    ' + JSON.stringify(record(i++), null, 4).replace(/\n/g, '\n    ') + ',\n';
    blocks.push(Buffer.from(s, 'utf8'));
  }
  return blocks;
}

function* documentChunks(totalBytes) {
  const blocks = makeBlocks();
  yield Buffer.from('{\n  "SecretList": [\n');
  let sent = 0;
  let k = 0;
  while (sent < totalBytes) {
    const b = blocks[k++ % blocks.length];
    sent += b.length;
    yield b;
  }
  yield Buffer.from('    {}\n  ]\n}\n');
}

function peakRssMb() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

async function child(kind, mb) {
  let through;
  let masked = 0;
  if (kind === 'mask') {
    const { compileMasking, createMaskingStream } = await import('../dist/masking/index.js');
    const compiled = compileMasking({ knownSecrets: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-known', 'FwoGZXIvYXdzEKnownSessionTokenValue'] });
    through = createMaskingStream(compiled);
  } else {
    through = new Transform({ transform: (c, _e, cb) => cb(null, c) });
  }
  let outBytes = 0;
  const sink = new Writable({
    write(c, _e, cb) {
      outBytes += c.length;
      cb();
    },
  });
  const total = mb * 1024 * 1024;
  const t0 = process.hrtime.bigint();
  await pipeline(Readable.from(documentChunks(total), { objectMode: false }), through, sink);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (kind === 'mask') masked = through.masker.maskedCount;
  process.stdout.write(JSON.stringify({ kind, mb, secs, mbps: mb / secs, peakRssMb: peakRssMb(), outBytes, masked }) + '\n');
}

function runChild(kind) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, '--mb', String(MB)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${kind} child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

if (args.includes('--child')) {
  await child(opt('--child'), MB);
} else {
  const base = runChild('passthrough');
  const mask = runChild('mask');
  const result = {
    name: 'masking',
    documentMb: MB,
    baselineMbps: +base.mbps.toFixed(1),
    maskMbps: +mask.mbps.toFixed(1),
    ratioToBaseline: +(mask.mbps / base.mbps).toFixed(3),
    peakRssMb: +mask.peakRssMb.toFixed(1),
    baselinePeakRssMb: +base.peakRssMb.toFixed(1),
    secretsMasked: mask.masked,
    targets: { minMbps: 100, maxPeakRssMb: 150 },
    pass: mask.mbps >= 100 && mask.peakRssMb <= 150,
  };
  if (args.includes('--json')) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    console.log(`masking ${MB} MB JSON: ${result.maskMbps} MB/s (pass-through baseline ${result.baselineMbps} MB/s, ratio ${result.ratioToBaseline})`);
    console.log(`peak RSS ${result.peakRssMb} MB (baseline ${result.baselinePeakRssMb} MB); ${result.secretsMasked} secrets masked`);
    console.log(`targets: >= 100 MB/s, <= 150 MB peak RSS -> ${result.pass ? 'PASS' : 'FAIL'}`);
  }
  process.exitCode = result.pass ? 0 : 1;
}
