import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws } from '../helpers/aws.js';
import { run } from './helpers.js';
import { GuardError, isGuardError } from '../../src/errors.js';

/**
 * Output without secrets must be exactly what plain aws prints (same moto, same credentials), exit codes pass
 * through, stdin reaches aws, and Ctrl-C reaches it too.
 */

let moto: Moto;
const TOKEN = 'FwoGZXIvYXdzEPassthroughTestSessionToken0000000000';
const creds = { accessKeyId: 'testing', secretAccessKey: 'testing', sessionToken: TOKEN };
const plain = (args: string[]) => plainAws(args, moto.endpoint, { AWS_SESSION_TOKEN: TOKEN, LANG: 'C.UTF-8' });

beforeAll(async () => {
  moto = await startMoto();
  const setup = [
    ['s3api', 'create-bucket', '--bucket', 'guard-plain-bucket'],
    ['ssm', 'put-parameter', '--name', '/app/region', '--type', 'String', '--value', 'eu-west-1 café'],
    ['ssm', 'put-parameter', '--name', '/app/list', '--type', 'StringList', '--value', 'a,b,c'],
    ['secretsmanager', 'create-secret', '--name', 'plain-secret', '--description', 'described', '--secret-string', 'v'],
    ['sqs', 'create-queue', '--queue-name', 'plain-queue'],
    ['iam', 'create-user', '--user-name', 'alice'],
  ];
  for (const a of setup) {
    const r = plain(a);
    if (r.status !== 0) throw new Error(`setup ${a.join(' ')}: ${r.stderr}`);
  }
});

afterAll(async () => {
  await moto?.stop();
});

describe('byte-for-byte identical to plain aws when there is nothing to mask', () => {
  const commands = [
    ['sts', 'get-caller-identity'],
    ['s3api', 'list-buckets'],
    ['s3', 'ls'],
    ['ssm', 'get-parameter', '--name', '/app/region'],
    ['ssm', 'get-parameters', '--names', '/app/region', '/app/list', '--with-decryption'],
    ['ssm', 'describe-parameters'],
    ['secretsmanager', 'describe-secret', '--secret-id', 'plain-secret'],
    ['sqs', 'list-queues'],
    ['iam', 'list-users'],
    ['iam', 'get-user', '--user-name', 'alice', '--query', 'User.[UserName,Arn]'],
  ];
  for (const cmd of commands) {
    for (const output of ['json', 'text', 'table']) {
      test(`${cmd.join(' ')} --output ${output}`, async () => {
        const argv = [...cmd, '--output', output];
        const p = plain(argv);
        const g = await run({ argv, credentials: creds, endpoint: moto.endpoint });
        expect(g.stderr).toBe(p.stderr);
        expect(g.exitCode).toBe(p.status);
        expect(p.stdout.length).toBeGreaterThan(0);
        expect(g.stdout).toBe(p.stdout);
        // The transcript sees exactly what the caller sees.
        expect(g.recorded.stdout).toBe(g.stdout);
      });
    }
  }
});

describe('when the caller\'s stdout is a terminal', () => {
  test('tables are coloured and sized as plain aws draws them on an 80-column terminal', async () => {
    const argv = ['secretsmanager', 'describe-secret', '--secret-id', 'plain-secret', '--output', 'table'];
    // Plain aws writing to a pipe with --color on is what it draws on an 80-column terminal with colour auto.
    const p = plain([...argv, '--color', 'on']);
    const g = await run({ argv, credentials: creds, endpoint: moto.endpoint, tty: { columns: 80 } });
    expect(p.stdout).toContain('\x1b[');
    expect(g.stdout).toBe(p.stdout);
    const piped = await run({ argv, credentials: creds, endpoint: moto.endpoint });
    expect(piped.stdout).not.toContain('\x1b[');
  });
});

describe('the transcript recorder failing', () => {
  /** Runs `sts get-caller-identity` with a recorder whose every chunk throws what `fail` makes; what aws showed. */
  const runFailingRecorder = async (fail: () => Error): Promise<{ err: unknown; shown: string }> => {
    const { PassThrough } = await import('node:stream');
    const { runAws } = await import('../../src/runner/index.js');
    const { realAws } = await import('./helpers.js');
    let shown = '';
    const out = new PassThrough();
    out.on('data', (b: Buffer) => (shown += b.toString()));
    const err = await runAws({
      aws: realAws(),
      region: 'us-east-1',
      stdin: null,
      stdout: out,
      stderr: out,
      argv: ['sts', 'get-caller-identity'],
      credentials: creds,
      endpoint: moto.endpoint,
      onChunk: () => {
        throw fail();
      },
    }).catch((e: unknown) => e);
    return { err, shown };
  };

  test('stops aws and fails the run instead of continuing unrecorded', async () => {
    const { err, shown } = await runFailingRecorder(() => new Error('disk full'));
    expect(isGuardError(err) && err.code).toBe('internal');
    expect(shown).toBe('');
  });

  // issue 12 item 6: a disk that fills up while aws runs is a disk error (74), not a bug (70).
  test('a spool disk error while recording is passed on as local_io (exit 74), and nothing unrecorded is shown', async () => {
    const { err, shown } = await runFailingRecorder(() => new GuardError('local_io', 'transcript spool: cannot write chunks.jsonl (ENOSPC: no space left on the device)'));
    expect(isGuardError(err) && err.code).toBe('local_io');
    expect(isGuardError(err) && err.exitCode).toBe(74);
    expect(shown).toBe('');
  });
});

describe('exit codes pass through', () => {
  test.each([
    ['a service error (ResourceNotFound)', ['secretsmanager', 'get-secret-value', '--secret-id', 'no-such-secret']],
    ['a usage error (missing required argument)', ['sts', 'assume-role']],
    ['an unknown operation', ['sts', 'no-such-operation']],
    ['a parameter validation error', ['sqs', 'get-queue-url', '--queue-name', '']],
  ])('%s', async (_n, argv) => {
    const p = plain(argv);
    const g = await run({ argv, credentials: creds, endpoint: moto.endpoint });
    expect(p.status).not.toBe(0);
    expect(g.exitCode).toBe(p.status);
    expect(g.stderr).toBe(p.stderr);
  });
});

describe('stdin passes through', () => {
  test('--cli-input-json file:///dev/stdin (the caller\'s stdin descriptor is handed to aws)', async () => {
    const input = JSON.stringify({ Name: 'from-stdin', Description: 'read from stdin', SecretString: 'stdin-secret-value' });
    const file = join(mkdtempSync(join(tmpdir(), 'guard-aws-stdin-')), 'in.json');
    writeFileSync(file, input);
    const fd = openSync(file, 'r');
    const g = await run({ argv: ['secretsmanager', 'create-secret', '--cli-input-json', 'file:///dev/stdin'], credentials: creds, endpoint: moto.endpoint, stdin: fd }).finally(() => closeSync(fd));
    expect(g.stderr).toBe('');
    expect(g.exitCode).toBe(0);
    expect(JSON.parse(g.stdout).Name).toBe('from-stdin');
    const check = plain(['secretsmanager', 'get-secret-value', '--secret-id', 'from-stdin', '--query', 'SecretString', '--output', 'text']);
    expect(check.stdout.trim()).toBe('stdin-secret-value');
  });

  test('s3 cp - (a binary stream) and back to stdout, unchanged', async () => {
    const body = Buffer.concat([Buffer.from('line one\n'), Buffer.from([0, 1, 2, 250, 251, 255]), Buffer.from('\nend\n')]);
    const { Readable } = await import('node:stream');
    const up = await run({ argv: ['s3', 'cp', '-', 's3://guard-plain-bucket/in.bin'], credentials: creds, endpoint: moto.endpoint, stdin: Readable.from([body]) });
    expect(up.exitCode).toBe(0);
    const chunks: Buffer[] = [];
    const down = await run({
      argv: ['s3', 'cp', 's3://guard-plain-bucket/in.bin', '-'],
      credentials: creds,
      endpoint: moto.endpoint,
      onChunk: (s, b) => {
        if (s === 'stdout') chunks.push(Buffer.from(b));
      },
    });
    expect(down.exitCode).toBe(0);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });
});

describe('signals are forwarded to aws', () => {
  let hang: Server;
  let hangUrl: string;
  const seen: (() => void)[] = [];
  beforeAll(async () => {
    // An "AWS" that accepts the request and never answers: aws waits until interrupted.
    hang = createServer(() => {
      seen.splice(0).forEach((f) => f());
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
  });
  afterAll(() => {
    hang.closeAllConnections();
    hang.close();
  });

  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s while aws waits for AWS ends aws with its exit code', async (sig, code) => {
    const signals = new EventEmitter();
    const requested = new Promise<void>((r) => seen.push(r));
    const t0 = Date.now();
    const p = run({ argv: ['sts', 'get-caller-identity', '--cli-read-timeout', '50'], credentials: creds, endpoint: hangUrl, signals });
    await requested;
    signals.emit(sig);
    const r = await p;
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.exitCode).toBe(code);
    expect(signals.listenerCount(sig)).toBe(0);
  });
});
