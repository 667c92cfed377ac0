import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainAwsAt, startStack, type Stack } from './harness.js';
import { startRecordingProxy, type RecordingProxy } from './recording-proxy.js';
import { createTranscriptKey, signTranscript } from '../../src/transcript/sign.js';
import type { Transcript } from '../../src/transcript/types.js';

/**
 * Issue 7, "Calls can run on the broker", end to end on real parts: the built CLI, the real aws (on the broker's
 * side), moto as AWS, the embedded oidc-provider, the assembled broker over HTTP. Every byte the broker answers
 * the client passes through a recording proxy (plain node:http), so the tests can assert that no answer ever
 * carries credentials.
 */
let s: Stack;
let alice: string;
let carol: string;
let proxy: RecordingProxy;
let proxyUrl: string;
let answers: Buffer[];


const run = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) =>
  s.run(args, { token: alice, env: { GUARD_AWS_BROKER: proxyUrl, ...o.env }, ...(o.input !== undefined ? { input: o.input } : {}) });

beforeAll(async () => {
  // People's calls run on the broker for this stack (the defaults are tested in test/broker/runs.test.ts).
  s = await startStack({ execution: { people: 'broker', workloads: 'broker' } });
  alice = await s.token('alice');
  carol = await s.token('carol');
  proxy = await startRecordingProxy(s.broker.url);
  proxyUrl = proxy.url;
  answers = proxy.answers;
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-remote']).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'put-object', '--bucket', 'e2e-remote', '--key', 'hello.txt', '--body', '/etc/hostname']).status).toBe(0);
  expect(
    plainAwsAt(s, ['secretsmanager', 'create-secret', '--name', 'remote-secret', '--secret-string', 'e2e-token-0123abcd and hunter2-remote']).status,
  ).toBe(0);
}, 120_000);
afterAll(async () => {
  proxy?.close();
  await s?.close();
});

describe('a call the broker runs', () => {
  it('prints exactly what plain aws prints, with the same exit code, also for errors', async () => {
    for (const output of ['json', 'text', 'table']) {
      const args = ['s3api', 'list-objects-v2', '--bucket', 'e2e-remote', '--output', output];
      const remote = await run(args);
      const plain = plainAwsAt(s, args);
      expect(remote.stderr, output).toBe('');
      expect(remote.status).toBe(0);
      expect(remote.stdout, output).toBe(plain.stdout);
    }
    const missing = ['s3api', 'head-object', '--bucket', 'e2e-remote', '--key', 'nope'];
    const remote = await run(missing);
    const plain = plainAwsAt(s, missing);
    expect(plain.status).not.toBe(0);
    expect(remote.status).toBe(plain.status);
    expect(remote.stdout).toBe(plain.stdout);
    expect(remote.stderr).toBe(plain.stderr);
  });

  it('needs no aws on the caller machine', async () => {
    const empty = join(s.dir, 'no-aws-bin');
    mkdirSync(empty, { recursive: true });
    const r = await run(['sts', 'get-caller-identity', '--output', 'text'], { env: { PATH: empty } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/123456789012/);
  });

  it('streams stdin through (s3 cp - s3://…)', async () => {
    const body = 'from the caller\'s stdin\n'.repeat(5000);
    const r = await run(['s3', 'cp', '-', 's3://e2e-remote/from-stdin.txt'], { input: body });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const back = plainAwsAt(s, ['s3', 'cp', 's3://e2e-remote/from-stdin.txt', '-']);
    expect(back.stdout).toBe(body);
  });

  it('masks secrets on the broker: the raw value never reaches the client', async () => {
    const before = answers.length;
    const r = await run(['secretsmanager', 'get-secret-value', '--secret-id', 'remote-secret']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('SecretString');
    expect(r.stdout).not.toContain('hunter2-remote');
    expect(r.stdout).not.toContain('e2e-token-0123abcd');
    const wire = Buffer.concat(answers.slice(before)).toString('latin1');
    expect(wire).not.toContain('hunter2-remote');
    expect(wire).not.toContain('e2e-token-0123abcd');
  });

  it('Ctrl-C on the client cancels the remote run: exit 130, promptly', async () => {
    // A waiter polls for minutes (40 × 5 s) for an instance that never appears.
    const child = s.spawn(['ec2', 'wait', 'instance-exists', '--instance-ids', 'i-0123456789abcdef0'], {
      token: alice,
      env: { GUARD_AWS_BROKER: proxyUrl },
    });
    child.stdin!.end();
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await new Promise((r) => setTimeout(r, 4000));
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code, err).toBe(130);
    expect(Date.now() - t0).toBeLessThan(8000);
  }, 30_000);

  it('POST /v1/grants is refused for it (403 execution_on_broker), and the refusal is recorded', async () => {
    const res = await fetch(`${s.broker.url}/v1/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv: ['s3api', 'list-objects-v2', '--bucket', 'e2e-remote'], transcriptKey: Buffer.alloc(32, 7).toString('base64url') }),
    });
    const body = (await res.json()) as { error: { code: string } };
    expect(res.status).toBe(403);
    expect(body.error.code).toBe('execution_on_broker');
    expect(JSON.stringify(body)).not.toMatch(/ASIA|secretAccessKey|sessionToken/);
    const refusals = await s.broker.broker.ctx.store.listRefusals({});
    expect(refusals.some((r) => r.code === 'execution_on_broker' && r.subject.length > 0)).toBe(true);
  });

  it('its transcript is broker-attested in the audit log, and the chain verifies', async () => {
    const r = await run(['s3api', 'list-buckets', '--output', 'text']);
    expect(r.status, r.stderr).toBe(0);
    const list = await s.run(['audit', 'list', '--json'], { token: carol });
    const rows = JSON.parse(list.stdout) as { grantId: string; argv?: string[] }[];
    const mine = rows.find((x) => x.argv?.includes('list-buckets'))!;
    expect(mine).toBeDefined();
    const shown = await s.run(['audit', 'show', mine.grantId, '--json'], { token: carol });
    const rec = JSON.parse(shown.stdout) as {
      body: { attestation?: string; uploadedBy: string; body: { sha256: string; size: number; location: string }; envelope: { transcript: { exitCode: number; outputBytes: number; body: { sha256: string } } } };
    };
    expect(rec.body.attestation).toBe('broker');
    expect(rec.body.uploadedBy).toBe('broker');
    expect(rec.body.envelope.transcript.exitCode).toBe(0);
    // The output is in the broker's body store, bound by digest into the signed transcript and the record.
    expect(rec.body.envelope.transcript.outputBytes).toBeGreaterThan(0);
    expect(rec.body.body.sha256).toBe(rec.body.envelope.transcript.body.sha256);
    expect(rec.body.body.location).toMatch(/^file:sha256\//);
    const replay = await s.run(['audit', 'replay', mine.grantId, '--speed', 'max'], { token: carol });
    expect([replay.status, replay.stdout]).toEqual([0, r.stdout]);
    const text = await s.run(['audit', 'show', mine.grantId], { token: carol });
    expect(text.stdout).toMatch(/broker-attested/);
    // The caller cannot put its own transcript in for that grant: the key bound into it is the broker's.
    const t = rec.body.envelope.transcript as unknown as Transcript;
    const forged = signTranscript({ ...t, body: { ...t.body!, sha256: 'f'.repeat(64) } }, createTranscriptKey().privateKey);
    const up = await fetch(`${s.broker.url}/v1/transcripts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify(forged),
    });
    expect(up.status).toBe(403);
    expect(((await up.json()) as { error: { code: string } }).error.code).toBe('transcript_signature_invalid');
    const verify = await s.run(['audit', 'verify', '--json'], { token: carol });
    expect(verify.status, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout).ok).toBe(true);
  });

  it('only its owner can start it, once; another caller cannot even see it', async () => {
    const erin = await s.token('erin');
    const post = (path: string, token: string, body?: unknown) =>
      fetch(`${s.broker.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body) });
    const created = (await (await post('/v1/runs', alice, { argv: ['sts', 'get-caller-identity'] })).json()) as { execution: string; runId: string };
    expect(created.execution).toBe('broker');
    for (const path of ['start', 'cancel', 'stdin']) {
      const other = await post(`/v1/runs/${created.runId}/${path}`, erin).catch((e) => {
        throw new Error(`${path}: ${e.cause?.code ?? e}`);
      });
      expect(other.status, path).toBe(404);
    }
    const first = await post(`/v1/runs/${created.runId}/start`, alice);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const again = await post(`/v1/runs/${created.runId}/start`, alice);
    expect([404, 409]).toContain(again.status);
  });

  it('approvals work exactly as for a local run: exit 75 naming the request, then it runs once approved', async () => {
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-remote-gone']).status).toBe(0);
    const argv = ['s3api', 'delete-bucket', '--bucket', 'e2e-remote-gone'];
    const first = await run(argv);
    expect(first.status, first.stderr).toBe(75);
    const id = /(apr_[A-Za-z0-9_-]+)/.exec(first.stderr)![1]!;
    const bob = await s.token('bob');
    expect((await s.run(['approvals', 'approve', id, '--comment', 'fine', '--yes'], { token: bob })).status).toBe(0);
    const ok = await run(['--approval', id, ...argv]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', 'e2e-remote-gone']).status).not.toBe(0);
  });

  it('an endpoint override sent straight to the API is refused before any session', async () => {
    const res = await fetch(`${s.broker.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv: ['s3', 'ls', '--endpoint-u', 'http://127.0.0.1:9'] }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('denied');
  });

  it('no broker answer to the client ever carried credentials', () => {
    const wire = Buffer.concat(answers).toString('latin1');
    expect(answers.length).toBeGreaterThan(10);
    // STS session credentials: access key ids ASIA…, and the JSON names of the secret halves.
    expect(wire).not.toMatch(/ASIA[A-Z0-9]{12,}/);
    expect(wire).not.toMatch(/secretAccessKey|sessionToken|SecretAccessKey|SessionToken/);
  });
});

describe('local files of a call the broker runs', () => {
  const work = () => {
    const d = join(s.dir, 'caller-files');
    mkdirSync(d, { recursive: true });
    return d;
  };
  const runIn = (cwd: string, args: string[]) => s.run(args, { token: alice, cwd, env: { GUARD_AWS_BROKER: proxyUrl } });

  it('uploads stream from the caller (larger than the 128 KiB file budget), downloads come back to the caller path', async () => {
    const cwd = work();
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    writeFileSync(join(cwd, 'up.bin'), big);
    const up = await runIn(cwd, ['s3', 'cp', 'up.bin', 's3://e2e-remote/up.bin']);
    expect(up.status, up.stderr).toBe(0);
    const down = await runIn(cwd, ['s3', 'cp', 's3://e2e-remote/up.bin', 'down.bin']);
    expect(down.status, down.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'down.bin')).equals(big)).toBe(true);
    // Into a directory: the key's last segment, as aws does.
    mkdirSync(join(cwd, 'into'), { recursive: true });
    const into = await runIn(cwd, ['s3', 'cp', 's3://e2e-remote/hello.txt', 'into/']);
    expect(into.status, into.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'into', 'hello.txt'), 'utf8')).toBe(readFileSync('/etc/hostname', 'utf8'));
    // OUTFILE of s3api get-object: the JSON on stdout, the body in the file.
    const get = await runIn(cwd, ['s3api', 'get-object', '--bucket', 'e2e-remote', '--key', 'hello.txt', 'got.txt']);
    expect(get.status, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout).ContentLength).toBeGreaterThan(0);
    expect(readFileSync(join(cwd, 'got.txt'), 'utf8')).toBe(readFileSync('/etc/hostname', 'utf8'));
    // A recursive download: the tree, under the caller's directory.
    const tree = await runIn(cwd, ['s3', 'cp', 's3://e2e-remote/', 'tree', '--recursive']);
    expect(tree.status, tree.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'tree', 'up.bin')).equals(big)).toBe(true);
    expect(readdirSync(cwd).filter((f) => f.includes('.part'))).toEqual([]);
  }, 60_000);

  it('a directory upload is refused with a clear error (exit 64), before any session', async () => {
    const cwd = work();
    mkdirSync(join(cwd, 'dir'), { recursive: true });
    writeFileSync(join(cwd, 'dir', 'a.txt'), 'a');
    const r = await runIn(cwd, ['s3', 'sync', 'dir', 's3://e2e-remote/synced']);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/cannot run on the broker/);
  });

  it('an agent talking to the API directly cannot make the broker read or write its own disk', async () => {
    const secret = join(s.dir, 'broker-only.txt');
    writeFileSync(secret, 'broker host file');
    const post = (path: string, body: unknown) =>
      fetch(`${s.broker.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body) });
    // A read of a broker path: the run waits for the caller's upload of that argument and never reads the path.
    const a = (await (await post('/v1/runs', { argv: ['s3', 'cp', secret, 's3://e2e-remote/exfil.txt'] })).json()) as { runId: string; inputs: number[] };
    expect(a.inputs).toEqual([2]);
    const started = await post(`/v1/runs/${a.runId}/start`, undefined);
    expect(started.status).toBe(409);
    expect(((await started.json()) as { error: { code: string } }).error.code).toBe('run_state');
    await post(`/v1/runs/${a.runId}/cancel`, undefined);
    // A write to a broker path: aws writes into the run directory, the bytes come back as file frames.
    const target = join(s.dir, 'pwned.txt');
    const b = (await (await post('/v1/runs', { argv: ['s3', 'cp', 's3://e2e-remote/hello.txt', target] })).json()) as { runId: string; outputs: unknown[] };
    expect(b.outputs).toEqual([{ token: 3, dir: false }]);
    const res = await post(`/v1/runs/${b.runId}/start`, undefined);
    expect(res.headers.get('content-type')).toBe('application/vnd.guard-aws.run-stream');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.includes(Buffer.from(readFileSync('/etc/hostname')))).toBe(true);
    expect(existsSync(target)).toBe(false);
  });
});
