import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtures, plainAwsAt, startStack, type Stack } from './harness.js';

/**
 * Large `fileb://` blobs (a Lambda zip of a few hundred KiB, past the 128 KiB the broker takes as file contents)
 * decided on as their digest only (request `blobs`), end to end on real parts: the built CLI, the real aws, moto
 * as AWS Lambda, the embedded IdP, the assembled broker over HTTP. Alice's calls run on the broker (her bytes go
 * up as a run input the broker checks against the digest), Bob's locally (the client pins the bytes it hashed).
 */
let s: Stack;
let alice: string;
let bob: string;
let policyDir: string;
let work: string;

/** A real zip (stored, so incompressible content keeps it large), made with Python's zipfile. */
function makeZip(path: string, content: Buffer): Buffer {
  const src = `${path}.src`;
  writeFileSync(src, content);
  const r = spawnSync('python3', ['-c', 'import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],"w",zipfile.ZIP_STORED) as z: z.write(sys.argv[2],"index.py")', path, src], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  rmSync(src);
  return readFileSync(path);
}
/** Lambda's CodeSha256: base64 of the zip's SHA-256. */
const codeSha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const codeOf = () => JSON.parse(plainAwsAt(s, ['lambda', 'get-function-configuration', '--function-name', 'blob-fn']).stdout) as { CodeSha256: string; CodeSize: number };

beforeAll(async () => {
  policyDir = mkdtempSync(join(tmpdir(), 'guard-aws-blob-policy-'));
  writeFileSync(
    join(policyDir, 'lambda.yaml'),
    `version: 1
default: deny
rules:
  - id: allow-lambda-code
    effect: allow
    reason: the blob tests update function code
    match:
      actions: ['lambda:UpdateFunctionCode', 'lambda:GetFunctionConfiguration']
`,
  );
  s = await startStack({
    policies: [join(fixtures, 'e2e-policy.yaml'), join(policyDir, 'lambda.yaml')],
    execution: { people: 'local', workloads: 'broker', groups: { developers: 'broker' } },
  });
  alice = await s.token('alice');
  bob = await s.token('bob');
  work = join(s.dir, 'blob-work');
  mkdirSync(work, { recursive: true });
  const role = plainAwsAt(s, ['iam', 'create-role', '--role-name', 'blob-fn-role', '--assume-role-policy-document', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}']);
  expect(role.status, role.stderr).toBe(0);
  const first = makeZip(join(work, 'first.zip'), Buffer.from('def handler(e, c):\n    return 1\n'));
  const created = plainAwsAt(s, [
    'lambda', 'create-function', '--function-name', 'blob-fn', '--runtime', 'python3.12', '--handler', 'index.handler',
    '--role', 'arn:aws:iam::123456789012:role/blob-fn-role', '--zip-file', `fileb://${join(work, 'first.zip')}`,
  ]);
  expect(created.status, created.stderr).toBe(0);
  expect(codeOf().CodeSha256).toBe(codeSha(first));
}, 120_000);
afterAll(async () => {
  await s?.close();
  if (policyDir) rmSync(policyDir, { recursive: true, force: true });
});

const runAs = (token: string, args: string[]) => s.run(args, { token, cwd: work });
const update = ['lambda', 'update-function-code', '--function-name', 'blob-fn', '--zip-file', 'fileb://function.zip', '--output', 'json'];
const grantLog = () => s.logLines.filter((l) => l.includes('"grant issued"')).map((l) => JSON.parse(l) as { execution: string });

describe('a fileb:// blob larger than the file budget', () => {
  it('runs on the broker: the zip goes up as a run input, Lambda gets exactly those bytes', async () => {
    const zip = makeZip(join(work, 'function.zip'), randomBytes(400 * 1024));
    expect(zip.length).toBeGreaterThan(128 * 1024);
    const r = await runAs(alice, update);
    expect(r.status, r.stderr).toBe(0);
    expect(grantLog().at(-1)!.execution).toBe('broker');
    const out = JSON.parse(r.stdout) as { CodeSha256: string; CodeSize: number };
    expect(out.CodeSize).toBe(zip.length);
    expect(out.CodeSha256).toBe(codeSha(zip));
    expect(codeOf().CodeSha256).toBe(codeSha(zip));
  }, 60_000);

  it('runs locally: the client pins the bytes it hashed for the broker', async () => {
    const zip = makeZip(join(work, 'function.zip'), randomBytes(300 * 1024));
    const r = await runAs(bob, update);
    expect(r.status, r.stderr).toBe(0);
    expect(grantLog().at(-1)!.execution).toBe('local');
    expect((JSON.parse(r.stdout) as { CodeSha256: string }).CodeSha256).toBe(codeSha(zip));
    expect(codeOf().CodeSha256).toBe(codeSha(zip));
  }, 60_000);

  it('a small zip still travels as contents (no blobs), remotely and locally', async () => {
    const zip = makeZip(join(work, 'function.zip'), Buffer.from('def handler(e, c):\n    return 2\n'));
    for (const token of [alice, bob]) {
      const r = await runAs(token, update);
      expect(r.status, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { CodeSha256: string }).CodeSha256).toBe(codeSha(zip));
    }
  }, 60_000);

  it('other bytes than the digest named, uploaded straight to the API, are refused (input_mismatch) and nothing runs', async () => {
    const before = codeOf().CodeSha256;
    const decided = randomBytes(200 * 1024);
    const other = Buffer.from(decided);
    other[0] = other[0]! ^ 1;
    const path = join(work, 'function.zip');
    const api = (method: string, p: string, body?: string | Uint8Array, type = 'application/json') =>
      fetch(`${s.broker.url}${p}`, { method, headers: { authorization: `Bearer ${alice}`, 'content-type': type }, ...(body !== undefined ? { body: body as BodyInit } : {}) });
    const res = await api(
      'POST',
      '/v1/runs',
      JSON.stringify({ argv: update, cwd: work, blobs: { [path]: { sha256: createHash('sha256').update(decided).digest('hex'), size: decided.length } } }),
    );
    expect(res.status).toBe(201);
    const created = (await res.json()) as { runId: string; inputs: number[]; argv: string[] };
    expect(created.inputs).toHaveLength(1);
    const n = created.inputs[0]!;
    expect(created.argv[n]).toBe('fileb://function.zip');
    const put = await api('PUT', `/v1/runs/${created.runId}/inputs/${n}`, other, 'application/octet-stream');
    expect(put.status).toBe(409);
    const err = (await put.json()) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('input_mismatch');
    expect(err.error.message).toMatch(/nothing ran/);
    // The run is gone: it cannot be started, nor given the right bytes afterwards.
    expect((await api('POST', `/v1/runs/${created.runId}/start`, '')).status).toBe(404);
    expect((await api('PUT', `/v1/runs/${created.runId}/inputs/${n}`, decided, 'application/octet-stream')).status).toBe(404);
    expect(codeOf().CodeSha256).toBe(before);
  }, 60_000);

  it('a digest sent for a path whose contents are sent too, or a malformed digest, is a bad request', async () => {
    const path = join(work, 'function.zip');
    const post = (body: unknown) =>
      fetch(`${s.broker.url}/v1/runs`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const both = await post({ argv: update, cwd: work, files: { [path]: 'x' }, blobs: { [path]: { sha256: 'a'.repeat(64), size: 1 } } });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    const bad = await post({ argv: update, cwd: work, blobs: { [path]: { sha256: 'XYZ', size: 1 } } });
    expect(bad.status).toBe(400);
  });
});
