import { PassThrough, Readable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainAws, type TestCli } from '../helpers/aws.js';
import { findAws, runAws, type AwsBinary, type RunAwsOptions, type ScopedCredentials } from '../../src/runner/index.js';

let cached: AwsBinary | null = null;
/** The real aws, found the way the CLI finds it (cache kept in a test-private directory). */
export function realAws(): AwsBinary {
  cached ??= findAws({ env: { PATH: process.env.PATH, HOME: process.env.HOME }, cacheDir: mkdtempSync(join(tmpdir(), 'guard-aws-test-cache-')) });
  return cached;
}

export interface Captured {
  exitCode: number;
  signal?: string;
  stdout: string;
  stderr: string;
  /** What onChunk received, concatenated per stream. */
  recorded: { stdout: string; stderr: string };
}

export type RunInput = Omit<RunAwsOptions, 'aws' | 'stdout' | 'stderr' | 'stdin' | 'region'> & {
  stdin?: RunAwsOptions['stdin'] | string;
  region?: string;
  /** Which AWS CLI runs; default the v1 on PATH. */
  cli?: TestCli;
};

/** runAws with captured output; stdin may be given as a string. */
export async function run(input: RunInput): Promise<Captured> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const rec = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const stdin = typeof input.stdin === 'string' ? Readable.from([Buffer.from(input.stdin)]) : (input.stdin ?? null);
  const r = await runAws({
    region: 'us-east-1',
    ...input,
    aws: input.cli ? { path: input.cli.path, major: input.cli.major } : realAws(),
    stdin,
    stdout: out,
    stderr: err,
    onChunk: (s, b, at) => {
      if (typeof at !== 'number' || at < 0) throw new Error('bad timestamp');
      rec[s].push(Buffer.from(b));
      input.onChunk?.(s, b, at);
    },
  });
  return {
    ...r,
    stdout: Buffer.concat(o).toString('utf8'),
    stderr: Buffer.concat(e).toString('utf8'),
    recorded: { stdout: Buffer.concat(rec.stdout).toString('utf8'), stderr: Buffer.concat(rec.stderr).toString('utf8') },
  };
}

/** Credentials from moto's own STS AssumeRole: a caller identity that proves which key signed a request. */
export function scopedCredentials(endpoint: string, session = 'guard-test-session'): ScopedCredentials & { arn: string } {
  const r = plainAws(
    ['sts', 'assume-role', '--role-arn', 'arn:aws:iam::123456789012:role/guard-scoped', '--role-session-name', session, '--output', 'json'],
    endpoint,
  );
  if (r.status !== 0) throw new Error(`assume-role failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string }; AssumedRoleUser: { Arn: string } };
  return {
    accessKeyId: j.Credentials.AccessKeyId,
    secretAccessKey: j.Credentials.SecretAccessKey,
    sessionToken: j.Credentials.SessionToken,
    arn: j.AssumedRoleUser.Arn,
  };
}

/** moto's request log arrives asynchronously (its stdout): wait until the count has been stable for 300 ms. */
export async function settledRequestCount(moto: { requests(): string[] }): Promise<number> {
  let n = moto.requests().length;
  for (let stable = 0; stable < 3; ) {
    await new Promise((r) => setTimeout(r, 100));
    const m = moto.requests().length;
    stable = m === n ? stable + 1 : 0;
    n = m;
  }
  return n;
}
