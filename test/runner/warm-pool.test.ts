import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws, V1 } from '../helpers/aws.js';
import { bwrapAvailable, createIsolation } from '../../src/runner/isolation.js';
import { WarmPool, warmPoolConfigSchema } from '../../src/runner/warm/pool.js';
import type { AwsBinary } from '../../src/runner/find-aws.js';
import { run, scopedCredentials } from './helpers.js';

/**
 * The warm pool's lifecycle and its isolation between runs, through real runAws calls (real aws v1 under real
 * bubblewrap, real moto_server): fallback to a fresh aws, a supervisor that dies mid-run, recycling after N runs
 * and on a CLI upgrade, and one run reaching for another's directory, environment and memory.
 */

const haveBwrap = bwrapAvailable();
const isRoot = process.getuid?.() === 0;
const marker = randomBytes(5).toString('hex');
const bucket = `warm-pool-${marker}`;
let moto: Moto;
let creds: ReturnType<typeof scopedCredentials>;
let hang: Server;
let hangUrl: string;
const hangSockets: Socket[] = [];
let cliDir: string;
let aws: AwsBinary;
const logs: string[] = [];

function pool(over: Record<string, unknown> = {}, a: AwsBinary = aws): WarmPool {
  return new WarmPool({
    aws: a,
    config: warmPoolConfigSchema.parse({ enabled: true, ...over }),
    isolation: { mode: 'bwrap' },
    maxConcurrent: 4,
    log: (e) => logs.push(`${e.level} ${e.msg}`),
  });
}

async function call(p: WarmPool, argv: string[], o: { endpoint?: string; signals?: EventEmitter; files?: Record<string, string>; dir?: string } = {}) {
  const dir = o.dir ?? mkdtempSync(join(p.runRoot, 'guard-aws-run-'));
  for (const [n, t] of Object.entries(o.files ?? {})) writeFileSync(join(dir, n), t);
  try {
    const r = await run({
      argv,
      credentials: creds,
      endpoint: o.endpoint ?? moto.endpoint,
      cwd: dir,
      tmpRoot: dir,
      cli: { name: 'v1', path: aws.path, major: 1 },
      isolation: createIsolation({ mode: 'bwrap' }, aws),
      warm: p,
      ...(o.signals ? { signals: o.signals } : {}),
    });
    return { ...r, runner: (r as unknown as { runner: string }).runner, dir };
  } finally {
    if (!o.dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The supervisor's host pid: the python process (not bwrap) whose arguments name this pool's run root. */
function supervisorPids(p: WarmPool): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (cmd[1]?.endsWith('supervisor.py') && readFileSync(`/proc/${name}/status`, 'utf8').match(/^PPid:\s+(\d+)/m) && !cmd[0]!.endsWith('bwrap')) {
      // Its sandbox's bwrap carries the run root among its arguments; the python itself carries the socket path.
      const parent = readFileSync(`/proc/${name}/status`, 'utf8').match(/^PPid:\s+(\d+)/m)![1];
      const pcmd = readFileSync(`/proc/${parent}/cmdline`, 'utf8');
      if (pcmd.includes(p.runRoot)) out.push(Number(name));
    }
  }
  return out;
}

beforeAll(async () => {
  moto = await startMoto();
  creds = scopedCredentials(moto.endpoint, 'warm-pool-test');
  expect(plainAws(['s3', 'mb', `s3://${bucket}`], moto.endpoint).status).toBe(0);
  hang = createServer(() => {});
  hang.on('connection', (s) => hangSockets.push(s));
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
  // A CLI of the test's own (a copy of v1's entry script): its "upgrade" is a touch of this file.
  // (Not under /tmp: a confined run gets an empty /tmp of its own, which would hide it.)
  cliDir = mkdtempSync(join('/var/tmp', 'guard-aws-warm-cli-'));
  chmodSync(cliDir, 0o755);
  mkdirSync(join(cliDir, 'bin'), { mode: 0o755 });
  copyFileSync(V1.path, join(cliDir, 'bin', 'aws'));
  chmodSync(join(cliDir, 'bin', 'aws'), 0o755);
  aws = { path: join(cliDir, 'bin', 'aws'), major: 1 };
}, 60_000);

afterAll(async () => {
  hang?.closeAllConnections();
  hang?.close();
  await moto?.stop();
  if (cliDir) rmSync(cliDir, { recursive: true, force: true });
});

// Skipped only without bubblewrap or root: warm children take a uid each, which needs a root broker under bwrap
// (README, "Warm CLI pool"). CI runs as root with bubblewrap installed (scripts/setup-system.sh), so it runs there.
describe.skipIf(!haveBwrap || !isRoot)('warm pool', () => {
  test('no supervisor ready: the run starts a fresh aws, and says so', async () => {
    const p = pool();
    try {
      // Asked before the supervisor has started: fresh.
      const first = await call(p, ['sts', 'get-caller-identity', '--query', 'Account']);
      expect(first.runner).toBe('fresh');
      expect(first.stdout).toBe('"123456789012"\n');
      await p.ready();
      const second = await call(p, ['sts', 'get-caller-identity', '--query', 'Account']);
      expect(second.runner).toBe('warm');
      expect(second.stdout).toBe(first.stdout);
    } finally {
      p.close();
    }
  }, 60_000);

  test('a supervisor killed during a run: the run fails with a clear error (never an exit of aws), the next run works, a new supervisor takes over', async () => {
    const p = pool();
    try {
      await p.ready();
      const before = hangSockets.length;
      const pending = call(p, ['sts', 'get-caller-identity', '--cli-read-timeout', '50'], { endpoint: hangUrl });
      const deadline = Date.now() + 20_000;
      while (hangSockets.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const [pid] = supervisorPids(p);
      expect(pid).toBeGreaterThan(0);
      process.kill(pid!, 'SIGKILL');
      await expect(pending).rejects.toMatchObject({ code: 'internal', message: expect.stringMatching(/warm CLI supervisor died during the run/) });
      // Meanwhile a run is never refused: fresh while the replacement starts, warm again once it is ready.
      const next = await call(p, ['sts', 'get-caller-identity', '--query', 'Account']);
      expect(next.exitCode, next.stderr).toBe(0);
      await p.ready();
      const again = await call(p, ['sts', 'get-caller-identity', '--query', 'Account']);
      expect(again.runner).toBe('warm');
      expect(supervisorPids(p)).not.toContain(pid);
      expect(logs.some((l) => l.startsWith('error warm CLI supervisor died'))).toBe(true);
    } finally {
      p.close();
    }
  }, 60_000);

  test('recycled after recycleAfterRuns runs, and when the CLI changes on disk', async () => {
    const p = pool({ recycleAfterRuns: 2 });
    try {
      await p.ready();
      const pid0 = p.stats().supervisors[0]!.pid;
      const first = supervisorPids(p);
      expect((await call(p, ['sts', 'get-caller-identity', '--query', 'Account'])).runner).toBe('warm');
      expect((await call(p, ['sts', 'get-caller-identity', '--query', 'Account'])).runner).toBe('warm');
      await new Promise((r) => setTimeout(r, 300));
      await p.ready();
      const second = supervisorPids(p);
      expect(second).not.toEqual(first);
      expect(pid0).toBeGreaterThan(0);

      // An upgrade: the CLI's entry script is replaced (here: touched). The next run is fresh, the old
      // supervisor leaves, a new one (importing the new CLI) takes the runs after.
      const t = new Date(Date.now() + 5000);
      utimesSync(aws.path, t, t);
      const r = await call(p, ['sts', 'get-caller-identity', '--query', 'Account']);
      expect(r.runner).toBe('fresh');
      expect(r.exitCode).toBe(0);
      await new Promise((res) => setTimeout(res, 300));
      await p.ready();
      expect((await call(p, ['sts', 'get-caller-identity', '--query', 'Account'])).runner).toBe('warm');
      expect(supervisorPids(p).some((x) => second.includes(x))).toBe(false);
    } finally {
      p.close();
    }
  }, 90_000);

  test("one run cannot read another run's directory, environment or leftovers", async () => {
    const p = pool();
    try {
      await p.ready();
      // Run A is kept running (a call that hangs) with a secret file in its directory.
      const dirA = mkdtempSync(join(p.runRoot, 'guard-aws-run-'));
      writeFileSync(join(dirA, 'secret.txt'), `secret of A ${marker}\n`);
      const signals = new EventEmitter();
      const before = hangSockets.length;
      const a = call(p, ['sts', 'get-caller-identity', '--cli-read-timeout', '50'], { endpoint: hangUrl, signals, dir: dirA });
      const deadline = Date.now() + 20_000;
      while (hangSockets.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

      // Run B, concurrently, names A's file (its path is not secret here: the test hands it over).
      const b = await call(p, ['s3', 'cp', join(dirA, 'secret.txt'), `s3://${bucket}/stolen.txt`]);
      expect(b.runner).toBe('warm');
      expect(b.exitCode).not.toBe(0);
      expect(plainAws(['s3api', 'head-object', '--bucket', bucket, '--key', 'stolen.txt'], moto.endpoint).status).not.toBe(0);
      // Nor can it list the run root to find other runs.
      const ls = await call(p, ['s3', 'cp', '--recursive', p.runRoot, `s3://${bucket}/root/`]);
      expect(ls.runner).toBe('warm');
      expect(plainAws(['s3', 'ls', `s3://${bucket}/root/`], moto.endpoint).stdout).toBe('');

      signals.emit('SIGTERM');
      const ra = await a;
      expect(ra.exitCode).toBe(143);
      expect(ra.runner).toBe('warm');
      rmSync(dirA, { recursive: true, force: true });

      // A run's credentials are in its own environment only: the next run, with other credentials, is signed
      // with those (moto names the key's session) and sees nothing of the first run's.
      const other = scopedCredentials(moto.endpoint, 'warm-pool-other');
      const dir = mkdtempSync(join(p.runRoot, 'guard-aws-run-'));
      try {
        const r = await run({
          argv: ['sts', 'get-caller-identity', '--query', 'Arn'],
          credentials: other,
          endpoint: moto.endpoint,
          cwd: dir,
          tmpRoot: dir,
          cli: { name: 'v1', path: aws.path, major: 1 },
          isolation: createIsolation({ mode: 'bwrap' }, aws),
          warm: p,
        });
        expect((r as unknown as { runner: string }).runner).toBe('warm');
        expect(r.stdout).toContain('warm-pool-other');
        expect(r.stdout + r.stderr).not.toContain('warm-pool-test');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      p.close();
    }
  }, 90_000);

  test('a root broker without isolation: no pool (a warm child would run as root)', () => {
    const p = new WarmPool({ aws, config: warmPoolConfigSchema.parse({ enabled: true }), isolation: { mode: 'none' }, maxConcurrent: 2 });
    try {
      expect(p.unavailable).toMatch(/would run as root/);
      expect(p.acquire(aws)).toBeNull();
      expect(p.stats().supervisors).toEqual([]);
    } finally {
      p.close();
    }
  });

  test('a CLI that cannot be imported: no pool, every run fresh', async () => {
    const bad = mkdtempSync(join('/var/tmp', 'guard-aws-warm-bad-'));
    chmodSync(bad, 0o755);
    mkdirSync(join(bad, 'bin'), { mode: 0o755 });
    // Not a Python script at all: there is nothing to import, the pool is not used.
    writeFileSync(join(bad, 'bin', 'aws'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const p = pool({}, { path: join(bad, 'bin', 'aws'), major: 1 });
    try {
      await p.ready();
      expect(p.stats().supervisors).toEqual([]);
      expect(p.acquire({ path: join(bad, 'bin', 'aws'), major: 1 })).toBeNull();
      expect(p.unavailable).toMatch(/not a Python script/);
      expect(logs.some((l) => l.includes('not a Python script'))).toBe(true);
    } finally {
      p.close();
      rmSync(bad, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('execution.warmPool config', () => {
  test('off by default; bad values are refused by name', async () => {
    const { brokerConfigSchema } = await import('../../src/broker/config.js');
    expect(warmPoolConfigSchema.parse(undefined)).toMatchObject({ enabled: false, size: 1, maxRssMb: 512, recycleAfterRuns: 1000, uidBase: 2_000_000_000 });
    for (const bad of [{ size: 0 }, { uidBase: 0 }, { maxRssMb: 1 }, { preload: ['../etc'] }, { unknown: true }]) {
      const r = warmPoolConfigSchema.safeParse(bad);
      expect(r.success, JSON.stringify(bad)).toBe(false);
    }
    const shape = brokerConfigSchema.shape.execution;
    expect(shape.safeParse({ warmPool: { enabled: true, size: 2 } }).success).toBe(true);
    expect(shape.safeParse({ warmPool: { enabled: 'yes' } }).success).toBe(false);
  });
});
