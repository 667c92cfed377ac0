#!/usr/bin/env node
// Masking throughput and memory: a generated document (default 500 MB, built on the fly, never written to
// disk) in each of the CLI's output formats (json, text, table) streamed through the masker, against a plain
// pass-through stream in the same run.
// Targets (issue 14): ≥ 250 MB/s for every format (per CPU-second: one core), peak RSS ≤ 100 MB.
// Each variant runs in its own child process so its peak RSS (VmHWM) is its own.
//   node bench/masking.mjs [--mb 500] [--formats json,text,table] [--json]
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

// `--output text` and `--output table` renderings of the same record, as the CLI prints them (tab-separated
// rows with an upper-case shape name; boxed key/value rows).
function textRecord(r) {
  let s = `SECRETLIST\t${r.ARN}\t${r.CreatedDate}\t${r.Description}\t${r.Name}\t${r.VersionId}\n`;
  for (const t of r.Tags) s += `TAGS\t${t.Key}\t${t.Value}\n`;
  s += `VERSIONSTAGES\t${r.VersionStages.join('\t')}\n`;
  if (r.SecretString) s += `SECRETSTRING\t${r.SecretString}\n`;
  if (r.Credentials) s += `CREDENTIALS\t${r.Credentials.AccessKeyId}\t${r.Credentials.Expiration}\t${r.Credentials.SecretAccessKey}\t${r.Credentials.SessionToken}\n`;
  return s;
}
function tableRecord(r) {
  const row = (k, v) => `||  ${k.padEnd(16)}|  ${String(v).padEnd(100)}||\n`;
  let s = '||' + '-'.repeat(122) + '||\n';
  for (const k of ['ARN', 'CreatedDate', 'Description', 'Name', 'VersionId']) s += row(k, r[k]);
  if (r.SecretString) s += row('SecretString', r.SecretString);
  if (r.Credentials) for (const [k, v] of Object.entries(r.Credentials)) s += row(k, v);
  for (const t of r.Tags) s += row(t.Key, t.Value);
  return s;
}
const FORMATS = {
  json: { head: '{\n  "SecretList": [\n', record: (r) => '    ' + JSON.stringify(r, null, 4).replace(/\n/g, '\n    ') + ',\n', tail: '    {}\n  ]\n}\n' },
  text: { head: '', record: textRecord, tail: '' },
  table: { head: '-'.repeat(126) + '\n|' + ' '.repeat(55) + 'ListSecrets' + ' '.repeat(58) + '|\n', record: tableRecord, tail: '+' + '-'.repeat(124) + '+\n' },
};

function makeBlocks(format) {
  // Three different blocks so chunk boundaries fall in different places of the records.
  const blocks = [];
  let i = 0;
  for (const target of [64 * 1024 + 17, 48 * 1024 + 5, 80 * 1024 + 111]) {
    let s = '';
    while (s.length < target) s += FORMATS[format].record(record(i++));
    blocks.push(Buffer.from(s, 'utf8'));
  }
  return blocks;
}

function* documentChunks(totalBytes, format) {
  const blocks = makeBlocks(format);
  if (FORMATS[format].head) yield Buffer.from(FORMATS[format].head);
  let sent = 0;
  let k = 0;
  while (sent < totalBytes) {
    const b = blocks[k++ % blocks.length];
    sent += b.length;
    yield b;
  }
  if (FORMATS[format].tail) yield Buffer.from(FORMATS[format].tail);
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

async function child(kind, mb, format) {
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
  const c0 = process.cpuUsage();
  await pipeline(Readable.from(documentChunks(total, format), { objectMode: false }), through, sink);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  // Throughput per CPU-second of this (single-threaded) pipeline: what one idle core does, however busy the
  // machine is; wall-clock MB/s is printed beside it.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  if (kind === 'mask') masked = through.masker.maskedCount;
  process.stdout.write(JSON.stringify({ kind, format, mb, secs, mbps: mb / cpuSecs, wallMbps: mb / secs, peakRssMb: peakRssMb(), outBytes, masked }) + '\n');
}

function runChild(kind, format) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, '--mb', String(MB), '--format', format], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${kind} child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const MIN_MBPS = 250;
const MAX_RSS_MB = 100;
if (args.includes('--child')) {
  await child(opt('--child'), MB, opt('--format', 'json'));
} else {
  const results = [];
  for (const format of opt('--formats', 'json,text,table').split(',')) {
    const base = runChild('passthrough', format);
    const mask = runChild('mask', format);
    results.push({
      format,
      documentMb: MB,
      baselineMbps: +base.mbps.toFixed(1),
      maskMbps: +mask.mbps.toFixed(1),
      maskWallMbps: +mask.wallMbps.toFixed(1),
      ratioToBaseline: +(mask.mbps / base.mbps).toFixed(3),
      peakRssMb: +mask.peakRssMb.toFixed(1),
      baselinePeakRssMb: +base.peakRssMb.toFixed(1),
      secretsMasked: mask.masked,
      pass: mask.mbps >= MIN_MBPS && mask.peakRssMb <= MAX_RSS_MB,
    });
  }
  const pass = results.every((r) => r.pass);
  if (args.includes('--json')) {
    process.stdout.write(JSON.stringify({ name: 'masking', targets: { minMbps: MIN_MBPS, maxPeakRssMb: MAX_RSS_MB }, results, pass }) + '\n');
  } else {
    for (const r of results) {
      console.log(`masking ${MB} MB ${r.format}: ${r.maskMbps} MB/s per CPU-second (${r.maskWallMbps} MB/s wall; pass-through baseline ${r.baselineMbps} MB/s, ratio ${r.ratioToBaseline}); peak RSS ${r.peakRssMb} MB (baseline ${r.baselinePeakRssMb} MB); ${r.secretsMasked} secrets masked`);
    }
    console.log(`targets: >= ${MIN_MBPS} MB/s for every format, <= ${MAX_RSS_MB} MB peak RSS -> ${pass ? 'PASS' : 'FAIL'}`);
    const { report } = await import('./lib/report.mjs');
    report({
      name: 'masking',
      measures: `streaming a ${MB} MB document through the masker: ${results.map((r) => r.format).join(' / ')} output, per CPU-second`,
      figure: `${results.map((r) => `${Math.round(r.maskMbps)}`).join(' / ')} MB/s, peak RSS ≤ ${Math.round(Math.max(...results.map((r) => r.peakRssMb)))} MB`,
      baseline: `pass-through stream: ${results.map((r) => `${Math.round(r.baselineMbps)}`).join(' / ')} MB/s`,
      target: `≥ ${MIN_MBPS} MB/s, ≤ ${MAX_RSS_MB} MB`,
      met: pass,
    });
  }
  process.exitCode = pass ? 0 : 1;
}
