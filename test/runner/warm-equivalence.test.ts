import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws, testClis, type TestCli } from '../helpers/aws.js';
import { bwrapAvailable, createIsolation } from '../../src/runner/isolation.js';
import { WarmPool, warmPoolConfigSchema } from '../../src/runner/warm/pool.js';
import { run, scopedCredentials, type Captured } from './helpers.js';

/**
 * Issue 16, "Must show": for a corpus of real commands, a run forked from the warm pool prints byte for byte what
 * a fresh aws prints, with the same exit code — on v1 and v2, both confined as the broker confines them (the
 * fresh one by its own bubblewrap, the warm one inside the supervisor's), against a real moto_server.
 */

const haveBwrap = bwrapAvailable();
const isRoot = process.getuid?.() === 0;
const marker = randomBytes(5).toString('hex');
const bucket = `warm-eq-${marker}`;

let moto: Moto;
let creds: ReturnType<typeof scopedCredentials>;
const pools = new Map<string, WarmPool>();

beforeAll(async () => {
  moto = await startMoto();
  creds = scopedCredentials(moto.endpoint);
  expect(plainAws(['s3api', 'create-bucket', '--bucket', bucket], moto.endpoint).status).toBe(0);
  for (let i = 0; i < 5; i++) {
    expect(plainAws(['s3api', 'put-object', '--bucket', bucket, '--key', `k${i}.txt`, '--body', '/etc/hostname'], moto.endpoint).status).toBe(0);
  }
  for (const cli of testClis()) {
    const pool = new WarmPool({
      aws: { path: cli.path, major: cli.major },
      config: warmPoolConfigSchema.parse({ enabled: true }),
      isolation: { mode: 'bwrap' },
      maxConcurrent: 8,
    });
    pools.set(cli.name, pool);
    await pool.ready();
    expect(pool.stats().supervisors.map((s) => s.state)).toEqual(['ready']);
  }
}, 120_000);

afterAll(async () => {
  for (const p of pools.values()) p.close();
  await moto?.stop();
});

interface Case {
  name: string;
  argv: string[];
  stdin?: string;
  files?: Record<string, string>;
  /** A file the run writes, compared too. */
  output?: string;
}

const CASES: Case[] = [
  // moto makes up a new UserId for every call: the rest of the identity is compared.
  { name: 'json', argv: ['sts', 'get-caller-identity', '--query', '{Account: Account, Arn: Arn}'] },
  { name: 'text', argv: ['sts', 'get-caller-identity', '--output', 'text', '--query', '[Account, Arn]'] },
  { name: 'table', argv: ['sts', 'get-caller-identity', '--output', 'table', '--query', '{Account: Account, Arn: Arn}'] },
  { name: 'json, several objects', argv: ['s3api', 'list-objects-v2', '--bucket', bucket, '--query', 'Contents[].{K: Key, S: Size}'] },
  { name: '--query', argv: ['s3api', 'list-objects-v2', '--bucket', bucket, '--query', 'Contents[].Key'] },
  { name: 'pagination', argv: ['s3api', 'list-objects-v2', '--bucket', bucket, '--max-items', '2', '--query', '[Contents[].Key, NextToken]'] },
  { name: 'pagination, text', argv: ['s3api', 'list-objects-v2', '--bucket', bucket, '--page-size', '2', '--output', 'text', '--query', 'Contents[].Key'] },
  { name: 's3 ls', argv: ['s3', 'ls', `s3://${bucket}/`] },
  { name: 's3 cp to stdout', argv: ['s3', 'cp', `s3://${bucket}/k1.txt`, '-'] },
  { name: 's3 cp from stdin', argv: ['s3', 'cp', '-', `s3://${bucket}/from-stdin.txt`], stdin: 'piped in\n' },
  // Transfers print their rate while they run (different every time): --no-progress.
  { name: 's3 cp upload', argv: ['s3', 'cp', '--no-progress', 'upload.txt', `s3://${bucket}/up.txt`], files: { 'upload.txt': 'an upload\n' } },
  { name: 's3 cp download', argv: ['s3', 'cp', '--no-progress', `s3://${bucket}/k2.txt`, 'down.txt'], output: 'down.txt' },
  // One object: several would finish in any order.
  { name: 's3 sync', argv: ['s3', 'sync', '--no-progress', '--exclude', '*', '--include', 'k3.txt', `s3://${bucket}/`, 'synced/'] },
  { name: 'secrets masked', argv: ['sts', 'get-session-token', '--query', 'Credentials.[SecretAccessKey, SessionToken]'] },
  { name: 'secrets masked, text', argv: ['sts', 'get-session-token', '--output', 'text', '--query', 'Credentials.SecretAccessKey'] },
  { name: 'service error', argv: ['s3api', 'head-object', '--bucket', bucket, '--key', 'missing'] },
  { name: 'missing bucket', argv: ['s3', 'ls', `s3://no-such-${marker}/`] },
  { name: 'usage error', argv: ['s3api', 'list-objects-v2'] },
  { name: 'bad choice', argv: ['sts', 'get-caller-identity', '--output', 'xml'] },
  { name: 'version', argv: ['--version'] },
];

async function once(cli: TestCli, c: Case, warm: boolean): Promise<Captured & { file?: string; runner: string }> {
  const pool = pools.get(cli.name)!;
  const dir = mkdtempSync(join(pool.runRoot, 'guard-aws-run-'));
  try {
    for (const [n, t] of Object.entries(c.files ?? {})) writeFileSync(join(dir, n), t);
    const aws = { path: cli.path, major: cli.major };
    const r = await run({
      argv: c.argv,
      credentials: creds,
      endpoint: moto.endpoint,
      cwd: dir,
      tmpRoot: dir,
      cli,
      isolation: createIsolation({ mode: 'bwrap' }, aws),
      ...(c.stdin !== undefined ? { stdin: Readable.from([Buffer.from(c.stdin)]) } : {}),
      ...(warm ? { warm: pool } : {}),
    });
    return { ...r, runner: (r as unknown as { runner: string }).runner, ...(c.output ? { file: readFileSync(join(dir, c.output), 'utf8') } : {}) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Skipped only without bubblewrap or root (the warm pool needs both); CI has both, so it runs there.
describe.skipIf(!haveBwrap || !isRoot).each(testClis())('warm pool = fresh aws, byte for byte ($name)', (cli) => {
  test.each(CASES)('$name', async (c) => {
    const fresh = await once(cli, c, false);
    const warm = await once(cli, c, true);
    expect(fresh.runner).toBe('fresh');
    expect(warm.runner).toBe('warm');
    expect({ stdout: warm.stdout, stderr: warm.stderr, exitCode: warm.exitCode, file: warm.file }).toEqual({
      stdout: fresh.stdout,
      stderr: fresh.stderr,
      exitCode: fresh.exitCode,
      file: fresh.file,
    });
    expect(warm.recorded).toEqual(fresh.recorded);
    // The credentials' secret halves never appear, warm or fresh.
    for (const out of [warm.stdout, warm.stderr]) {
      expect(out).not.toContain(creds.secretAccessKey);
      expect(out).not.toContain(creds.sessionToken);
    }
  }, 60_000);
});
