import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { plainAwsAt, startStack, type Stack } from './harness.js';
import { startRecordingProxy, type RecordingProxy } from './recording-proxy.js';

/**
 * Issue 7, the agent scenario end to end: an AI agent with a workload token (client credentials from the embedded
 * IdP), the `aws` shim first on its PATH, and the broker's defaults (`execution.workloads: broker`). The agent's
 * host must never receive credentials — every byte the broker answers passes a recording proxy and is searched —
 * secrets never reach it, and every transcript is broker-attested. Real parts: the built CLI and shim, the real
 * aws (on the broker's side, confined by bubblewrap), moto, oidc-provider, the assembled broker over HTTP.
 */
let s: Stack;
let agent: string;
let auditor: string;
let proxy: RecordingProxy;
let proxyUrl: string;
let answers: Buffer[];
let shimDir: string;
const SECRET_VALUE = 'agent-must-never-see-0xDEADBEEF-hunter2';


/** The agent types `aws …`: the shim is first on PATH, the workload token in the environment. */
const agentAws = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('aws', args, { env: { ...s.env(agent, { GUARD_AWS_BROKER: proxyUrl }), PATH: `${shimDir}:${process.env.PATH}` }, cwd: s.dir });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b));
    c.stderr.on('data', (b: Buffer) => (err += b));
    c.stdin.end();
    c.on('close', (status) => resolve({ status, stdout: out, stderr: err }));
  });

beforeAll(async () => {
  // The broker's defaults, spelled out: agents and CI run on the broker, people by the session-policy analysis.
  s = await startStack({ execution: { people: 'auto', workloads: 'broker' } });
  agent = await s.workloadToken();
  auditor = await s.token('carol');
  proxy = await startRecordingProxy(s.broker.url);
  proxyUrl = proxy.url;
  answers = proxy.answers;
  shimDir = join(s.dir, 'agent-bin');
  const inst = await s.run(['shim', 'install', '--dir', shimDir]);
  expect(inst.status, inst.stderr).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'agent-bucket']).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'put-object', '--bucket', 'agent-bucket', '--key', 'note.txt', '--body', '/etc/hostname']).status).toBe(0);
  expect(plainAwsAt(s, ['secretsmanager', 'create-secret', '--name', 'agent-secret', '--secret-string', SECRET_VALUE]).status).toBe(0);
}, 120_000);
afterAll(async () => {
  proxy?.close();
  await s?.close();
});

it('the agent runs aws through the shim; every call runs on the broker and is broker-attested', async () => {
  const who = await agentAws(['sts', 'get-caller-identity', '--query', 'Arn', '--output', 'text']);
  expect(who.status, who.stderr).toBe(0);
  expect(who.stdout).toMatch(/assumed-role\/dev\//);
  const buckets = await agentAws(['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'text']);
  expect(buckets.status, buckets.stderr).toBe(0);
  expect(buckets.stdout).toContain('agent-bucket');
  const ls = await agentAws(['s3', 'ls', 's3://agent-bucket/']);
  expect(ls.status, ls.stderr).toBe(0);
  expect(ls.stdout).toContain('note.txt');

  const rows = JSON.parse((await s.run(['audit', 'list', '--json'], { token: auditor })).stdout) as { grantId: string; subject?: string; argv?: string[] }[];
  const agentRows = rows.filter((r) => r.argv?.includes('get-caller-identity') || r.argv?.includes('list-buckets') || r.argv?.includes('ls'));
  expect(agentRows.length).toBeGreaterThanOrEqual(3);
  for (const r of agentRows) {
    const rec = JSON.parse((await s.run(['audit', 'show', r.grantId, '--json'], { token: auditor })).stdout) as { body: { attestation?: string; uploadedBy?: string } };
    expect(rec.body.attestation, r.grantId).toBe('broker');
    expect(rec.body.uploadedBy).toBe('broker');
  }
  const verify = await s.run(['audit', 'verify', '--json'], { token: auditor });
  expect(verify.status, verify.stderr).toBe(0);
});

it('a secret never reaches the agent: masked on the broker, or held for a person, never raw on the wire', async () => {
  const before = answers.length;
  const r = await agentAws(['secretsmanager', 'get-secret-value', '--secret-id', 'agent-secret']);
  // Either the policy sends the read to a person (75) or the broker runs it and masks the value (0).
  expect([0, 75], r.stderr).toContain(r.status);
  expect(r.stdout + r.stderr).not.toContain(SECRET_VALUE);
  expect(Buffer.concat(answers.slice(before)).toString('latin1')).not.toContain(SECRET_VALUE);
});

it('talking to the API directly, the agent gets no credentials: grants refused, runs answer without them', async () => {
  const grant = await fetch(`${proxyUrl}/v1/grants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json' },
    body: JSON.stringify({ argv: ['sts', 'get-caller-identity'], transcriptKey: Buffer.alloc(32, 9).toString('base64url') }),
  });
  expect(grant.status).toBe(403);
  expect(((await grant.json()) as { error: { code: string } }).error.code).toBe('execution_on_broker');
  const run = await fetch(`${proxyUrl}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json' },
    body: JSON.stringify({ argv: ['sts', 'get-caller-identity'], stdin: false }),
  });
  const body = (await run.json()) as { execution?: string; grant?: unknown };
  expect(run.status, JSON.stringify(body)).toBe(201);
  expect(body.execution).toBe('broker');
  expect(body.grant).toBeUndefined();
});

it('no answer the agent host received, in any of the above, carried credentials', () => {
  const wire = Buffer.concat(answers).toString('latin1');
  expect(answers.length).toBeGreaterThan(5);
  // STS session credentials: access key ids ASIA…, and the JSON names of the secret halves.
  expect(wire).not.toMatch(/ASIA[A-Z0-9]{12,}/);
  expect(wire).not.toMatch(/secretAccessKey|sessionToken|SecretAccessKey|SessionToken/);
});
