#!/usr/bin/env node
// Soak: N parallel callers run the whole guarded call (`node bin/guard-aws.js sts get-caller-identity`, real aws,
// real transcript) against one broker for M minutes, all sharing one spool, one cache and one TMPDIR as parallel
// agents on one machine do. It prints what drifts or is left behind, not a speed:
//   errors       calls that did not exit 0, by exit code and first line of stderr
//   latency      p50/p99 of the whole call in the first and the last window (each a fifth of the run), and the ratio
//   broker       RSS and open file descriptors of the broker (this process), after warm-up vs at the end
//   leftovers    private HOMEs (guard-aws-run-*), spool entries (and rejected/), grants without a transcript
//
// Everything real and on loopback: moto_server as STS, the broker (hono + SQLite, transcript routes), ES256 tokens.
// Bounded: the callers stop starting calls after M minutes; a hard limit of M + 3 minutes ends the process.
// Usage: npm run bench -- soak                      (SOAK_N callers, default 4; SOAK_MINUTES, default 1)
//        node bench/soak.mjs [--n N] [--minutes M]  (after npm run build)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { dist, root } from './lib/core.mjs';
import { report } from './lib/report.mjs';
import { startBenchBroker } from './lib/stack.mjs';

function arg(name, envName, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[envName];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`soak: --${name}/${envName} must be a positive number (got ${JSON.stringify(raw)})`);
    process.exit(64);
  }
  return v;
}
const N = Math.round(arg('n', 'SOAK_N', 4));
const MINUTES = arg('minutes', 'SOAK_MINUTES', 1);
const DURATION_MS = MINUTES * 60_000;
const hardStop = setTimeout(() => {
  console.error('soak: hard time limit reached');
  process.exit(2);
}, DURATION_MS + 180_000);
hardStop.unref();

const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (ms) => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : '—');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—');

function fdCount() {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
}

function call(env) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [join(root, 'bin/guard-aws.js'), 'sts', 'get-caller-identity'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', (e) => resolve({ code: -1, ms: performance.now() - t0, err: e.message }));
    p.on('close', (code, signal) => resolve({ code: code ?? `signal ${signal}`, ms: performance.now() - t0, err }));
  });
}

async function main() {
  const { auditRoutes } = await dist('broker/routes/audit.js');
  const { broker, dir, token, core, close } = await startBenchBroker({ name: 'soak', cachingVerify: true, routes: () => [auditRoutes({ unreportedSweepMs: 0 })] });
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const state = join(dir, 'state');
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    TMPDIR: tmp,
    XDG_CACHE_HOME: join(dir, 'cache'),
    GUARD_AWS_STATE_DIR: state,
    GUARD_AWS_BROKER: broker.url,
    GUARD_AWS_TOKEN: token,
    CI: '1',
  };
  console.log(`soak: ${N} parallel callers for ${MINUTES} min; ${core}; broker ${broker.url}`);

  const calls = [];
  const samples = [];
  const start = performance.now();
  const sampler = setInterval(() => samples.push({ at: performance.now() - start, rss: process.memoryUsage().rss, fds: fdCount() }), 2_000);
  await Promise.all(
    Array.from({ length: N }, async () => {
      while (performance.now() - start < DURATION_MS) {
        const at = performance.now() - start;
        const r = await call(env);
        calls.push({ at, ...r });
      }
    }),
  );
  clearInterval(sampler);
  samples.push({ at: performance.now() - start, rss: process.memoryUsage().rss, fds: fdCount() });
  const elapsed = performance.now() - start;

  // Errors.
  const failed = calls.filter((c) => c.code !== 0);
  const byKind = new Map();
  for (const c of failed) {
    const k = `exit ${c.code}: ${(c.err.trim().split('\n')[0] ?? '').slice(0, 160)}`;
    byKind.set(k, (byKind.get(k) ?? 0) + 1);
  }
  // Latency drift: the first and the last fifth of the run (by start time).
  const w = DURATION_MS / 5;
  const first = calls.filter((c) => c.code === 0 && c.at < w).map((c) => c.ms);
  const last = calls.filter((c) => c.code === 0 && c.at >= DURATION_MS - w).map((c) => c.ms);
  // Broker drift: the first sample after the first window (warm) against the last.
  const warm = samples.find((s) => s.at >= w) ?? samples[0];
  const end = samples[samples.length - 1];

  // Leftovers: give the last flushes a moment, then look.
  await new Promise((r) => setTimeout(r, 500));
  const homes = existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('guard-aws-run-')) : [];
  const spool = join(state, 'spool');
  const entries = existsSync(spool) ? readdirSync(spool).filter((n) => n !== 'rejected') : [];
  const rejected = existsSync(join(spool, 'rejected')) ? readdirSync(join(spool, 'rejected')) : [];
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(dir, 'broker.db'), { readonly: true });
  const grants = db.prepare('SELECT COUNT(*) AS n FROM grants').get().n;
  const unreported = db
    .prepare("SELECT COUNT(*) AS n FROM grants g WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.grant_id = g.id AND a.kind = 'transcript')")
    .get().n;
  db.close();

  console.log(`calls         ${calls.length} in ${(elapsed / 1000).toFixed(0)} s (${(calls.length / (elapsed / 1000)).toFixed(2)} /s), ${failed.length} failed`);
  for (const [k, n] of byKind) console.log(`  ${n} × ${k}`);
  console.log(`latency p50   first ${fmt(pct(first, 50))}, last ${fmt(pct(last, 50))}  (last/first ${ratio(pct(last, 50), pct(first, 50))})`);
  console.log(`latency p99   first ${fmt(pct(first, 99))}, last ${fmt(pct(last, 99))}  (last/first ${ratio(pct(last, 99), pct(first, 99))})`);
  console.log(
    `broker RSS    ${(warm.rss / 2 ** 20).toFixed(1)} MiB after warm-up → ${(end.rss / 2 ** 20).toFixed(1)} MiB at the end (${ratio(end.rss, warm.rss)}×)`,
  );
  console.log(`broker fds    ${warm.fds} after warm-up → ${end.fds} at the end (${end.fds - warm.fds >= 0 ? '+' : ''}${end.fds - warm.fds})`);
  console.log(`leftovers     private HOMEs ${homes.length}, spool entries ${entries.length}, rejected ${rejected.length}, grants without a transcript ${unreported} of ${grants}`);
  await close();
  const leftovers = homes.length + entries.length + rejected.length + unreported;
  if (failed.length || leftovers) process.exitCode = 1;
  report({
    name: 'soak',
    measures: `${N} parallel guarded callers for ${MINUTES} min (SOAK_N, SOAK_MINUTES): errors, latency drift, broker RSS and fds, leftovers`,
    figure: `${calls.length} calls, ${failed.length} errors, ${leftovers} leftovers; p50 ${ratio(pct(last, 50), pct(first, 50))}×, p99 ${ratio(pct(last, 99), pct(first, 99))}×; RSS ${ratio(end.rss, warm.rss)}×, fds ${end.fds - warm.fds >= 0 ? '+' : ''}${end.fds - warm.fds}`,
    baseline: 'the first window of the same run (latency), the broker after warm-up (RSS, fds)',
    target: 'no errors, no leftovers, no drift',
    met: failed.length === 0 && leftovers === 0,
  });
}

main().catch((e) => {
  console.error(`soak: ${e?.stack ?? e}`);
  process.exit(1);
});
