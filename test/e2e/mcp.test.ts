import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, fixtures, plainAwsAt, startStack, type Stack } from './harness.js';

/**
 * Issue 11: `guard-aws mcp` driven by the MCP SDK's own Client over stdio — the built CLI as the server process,
 * on the real stack (moto_server, the embedded OIDC provider, the broker with SQLite). The server gets alice's
 * token the way the CLI does (GUARD_AWS_TOKEN); nothing about identity is in any tool argument.
 */
let s: Stack;
let client: Client;
let stderr = '';
const t: Record<string, string> = {};
const SECRET = 'mcp-e2e-secret-5d2c9e71';
let tools: Tool[] = [];

beforeAll(async () => {
  s = await startStack({ policies: [join(fixtures, 'mcp-policy.yaml')] });
  for (const u of ['alice', 'bob', 'carol']) t[u] = await s.token(u);
  expect(plainAwsAt(s, ['secretsmanager', 'create-secret', '--name', 'mcp/db', '--secret-string', SECRET]).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'mcp-data']).status).toBe(0);
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'mcp-keep']).status).toBe(0);
  const big = join(s.dir, 'big.txt');
  writeFileSync(big, 'x'.repeat(3000));
  expect(plainAwsAt(s, ['s3api', 'put-object', '--bucket', 'mcp-data', '--key', 'big.txt', '--body', big]).status).toBe(0);

  const env = Object.fromEntries(
    Object.entries(s.env(t.alice, { GUARD_AWS_MCP_PROGRESS_MS: '200' })).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cli, 'mcp', '--wait', '60', '--max-output', '1024'],
    env,
    cwd: s.dir,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  client = new Client({ name: 'guard-aws-e2e', version: '1.0.0' });
  await client.connect(transport);
  // Listing first makes the client check every structuredContent below against the tool's outputSchema.
  tools = (await client.listTools()).tools;
}, 180_000);
afterAll(async () => {
  await client?.close();
  await s?.close();
});

type Structured = Record<string, any>;
async function call(name: string, args: Record<string, unknown>, options: Parameters<Client['callTool']>[2] = {}): Promise<CallToolResult & { structuredContent?: Structured }> {
  return (await client.callTool({ name, arguments: args }, undefined, { timeout: 90_000, ...options })) as CallToolResult & { structuredContent?: Structured };
}
const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

describe('guard-aws mcp', () => {
  it('lists three tools whose input and output schemas are valid JSON Schema that accept good and refuse bad arguments', () => {
    expect(tools.map((x) => x.name).sort()).toEqual(['approval_status', 'aws_call', 'aws_explain']);
    const validators = new AjvJsonSchemaValidator();
    // The SDK's Tool type and its validator's schema type differ only in optional-property spelling.
    const ajv = { getValidator: (schema: object) => validators.getValidator(schema as Parameters<typeof validators.getValidator>[0]) };
    for (const tool of tools) {
      expect(tool.description!.length, tool.name).toBeGreaterThan(100);
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type, tool.name).toBe('object');
      ajv.getValidator(tool.outputSchema!);
    }
    const byName = Object.fromEntries(tools.map((x) => [x.name, x]));
    const awsCall = ajv.getValidator(byName.aws_call!.inputSchema);
    expect(awsCall({ argv: ['s3api', 'list-buckets'], reason: 'inventory' }).valid).toBe(true);
    expect(awsCall({ command: 'aws s3 ls' }).valid).toBe(true);
    expect(awsCall({ argv: 's3api list-buckets' }).valid).toBe(false);
    expect(awsCall({ argv: [] }).valid).toBe(false);
    // Identity is never an argument: a token or broker passed in is refused, not ignored.
    expect(awsCall({ argv: ['sts', 'get-caller-identity'], token: 'x' }).valid).toBe(false);
    expect(awsCall({ argv: ['sts', 'get-caller-identity'], broker: 'http://evil' }).valid).toBe(false);
    expect(awsCall({ argv: ['x'], approvalId: '../../etc' }).valid).toBe(false);
    const status = ajv.getValidator(byName.approval_status!.inputSchema);
    expect(status({ id: 'apr_abc' }).valid).toBe(true);
    expect(status({}).valid).toBe(false);
    // The description tells a model the console URL does not exist yet.
    expect(byName.aws_call!.description).toMatch(/consoleUrl is always null/);
    expect(byName.aws_call!.annotations?.destructiveHint).toBe(true);
    expect(byName.aws_explain!.annotations?.readOnlyHint).toBe(true);
  });

  it('runs an allowed call as guard-aws would: decision, rule, output and a transcript in the audit log', async () => {
    const r = await call('aws_call', { argv: ['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'text'] });
    expect(r.isError, textOf(r)).toBe(false);
    const out = r.structuredContent!;
    expect(out).toMatchObject({ status: 'ok', exitCode: 0, decision: 'allow', rule: 'allow-reads', target: 'dev', stdoutTruncated: false, approval: null, error: null });
    expect(out.stdout).toMatch(/mcp-data/);
    expect(out.grantId).toMatch(/\S/);
    expect(JSON.parse(textOf(r))).toEqual(out);

    const list = await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol });
    expect(list.status, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { grantId: string; kind: string; status?: string }[];
    expect(rows.find((x) => x.grantId === out.grantId && x.kind === 'transcript')?.status).toBe('complete');
  });

  it('cuts output past --max-output and states the full size', async () => {
    const r = await call('aws_call', { command: 'aws s3 cp s3://mcp-data/big.txt -' });
    const out = r.structuredContent!;
    expect(out.status, JSON.stringify(out)).toBe('ok');
    expect(out.stdoutBytes).toBe(3000);
    expect(out.stdoutTruncated).toBe(true);
    expect(out.stdout).toBe('x'.repeat(1024));
  });

  it('answers a denied call with a structured result naming the rule, not a protocol error', async () => {
    const r = await call('aws_call', { command: 'aws iam create-user --user-name mallory' });
    expect(r.isError).toBe(false);
    expect(r.structuredContent).toMatchObject({ status: 'denied', exitCode: 77, decision: 'deny', rule: 'deny-iam-writes', approval: null });
    expect(r.structuredContent!.reason).toMatch(/IAM writes/);
    expect(r.structuredContent!.error.code).toBe('denied');
  });

  it('explains without running: actions, resources, risks and the decision for the caller from the token', async () => {
    const r = await call('aws_explain', { argv: ['s3api', 'delete-bucket', '--bucket', 'mcp-keep'] });
    expect(r.isError, textOf(r)).toBe(false);
    // The shipped default policy judges here (no --policy given to the server); the caller comes from the token.
    expect(r.structuredContent).toMatchObject({ operation: 'DeleteBucket', actions: ['s3:DeleteBucket'], caller: { subject: 'alice', from: 'token' } });
    expect(r.structuredContent!.resources).toContain('arn:aws:s3:::mcp-keep');
    expect(['allow', 'approve', 'deny']).toContain(r.structuredContent!.decision);
    expect(plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', 'mcp-keep']).status).toBe(0);
  });

  it('asks for approval, reports it as a normal result, and re-runs once bob approved; the secret comes back masked', async () => {
    const argv = ['secretsmanager', 'get-secret-value', '--secret-id', 'mcp/db'];
    const first = await call('aws_call', { argv, reason: 'check the rotation', waitSeconds: 0 });
    expect(first.isError, textOf(first)).toBe(false);
    const pending = first.structuredContent!;
    expect(pending).toMatchObject({ status: 'approval_pending', exitCode: 75, decision: 'approve', rule: 'approve-secret-reads' });
    expect(pending.approval).toMatchObject({
      status: 'pending',
      requester: 'alice',
      approverGroups: ['approvers'],
      required: 1,
      consoleUrl: null,
      requestReason: 'check the rotation',
      ruleReason: 'reading a secret needs an approver',
    });
    const id = pending.approval.id as string;
    expect(id).toMatch(/^apr_/);

    const still = await call('approval_status', { id });
    expect(still.structuredContent!.approval.status).toBe('pending');

    const ok = await s.run(['approvals', 'approve', id, '--comment', 'fine', '--yes'], { token: t.bob });
    expect(ok.status, ok.stderr).toBe(0);
    const approved = await call('approval_status', { id, waitSeconds: 10 });
    expect(approved.structuredContent!.approval).toMatchObject({ status: 'approved', approvals: [{ by: 'bob', comment: 'fine' }] });

    const run = await call('aws_call', { argv, approvalId: id });
    const out = run.structuredContent!;
    expect(out, JSON.stringify(out)).toMatchObject({ status: 'ok', exitCode: 0, decision: 'approve', rule: 'approve-secret-reads' });
    expect(out.stdout).toContain('mcp/db');
    expect(out.stdout).toContain('<masked>');
    // Nowhere in what the client received: not the secret, not alice's token.
    for (const text of [JSON.stringify(run), JSON.stringify(first), stderr]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(t.alice);
    }

    // Once only: the approval is used.
    const again = await call('aws_call', { argv, approvalId: id });
    expect(again.structuredContent!.status).toMatch(/^approval_(used|closed)$/);
  });

  it('cancellation from the client withdraws the pending approval; progress notifications arrive while it waits', async () => {
    const controller = new AbortController();
    const progress: string[] = [];
    const pending = call(
      'aws_call',
      { argv: ['s3api', 'delete-bucket', '--bucket', 'mcp-keep'], reason: 'cleanup', waitSeconds: 60 },
      {
        signal: controller.signal,
        onprogress: (p) => {
          progress.push(p.message ?? '');
          // Cancel once the request is open and the wait has gone on for a few heartbeats.
          if (progress.filter((m) => /waiting|apr_/.test(m)).length >= 3) controller.abort();
        },
      },
    );
    await expect(pending).rejects.toThrow();
    const id = /(apr_[A-Za-z0-9_-]+)/.exec(progress.join('\n'))?.[1];
    expect(id, progress.join('\n')).toBeDefined();
    let status = '';
    for (let i = 0; i < 50 && status !== 'withdrawn'; i++) {
      status = (await call('approval_status', { id })).structuredContent!.approval.status;
      if (status !== 'withdrawn') await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe('withdrawn');
    expect(plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', 'mcp-keep']).status).toBe(0);
  });

  it('cancellation from the client stops a running aws, whose transcript still reaches the audit log', async () => {
    // An ec2 waiter polls every 5 s for up to 200 s: only a stop ends it early.
    const argv = ['ec2', 'wait', 'instance-exists', '--instance-ids', 'i-0123456789abcdef0'];
    const controller = new AbortController();
    const started = Date.now();
    const running = call('aws_call', { argv }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 3000);
    await expect(running).rejects.toThrow();
    let row: { exitCode?: number | null; status?: string } | undefined;
    for (let i = 0; i < 60 && !row; i++) {
      const list = await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol });
      const rows = JSON.parse(list.stdout) as { kind: string; argv?: string[]; exitCode?: number | null; status?: string }[];
      row = rows.find((x) => x.kind === 'transcript' && x.argv?.includes('instance-exists'));
      if (!row) await new Promise((r) => setTimeout(r, 250));
    }
    expect(row, 'no transcript for the stopped call').toBeDefined();
    expect(row!.exitCode).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("the model's words never become guard-aws's own options: they reach the aws parser, broker and approval unchanged", async () => {
    // guard-aws's options go before `--`, the model's argv after it: a --broker, --approval or --no-input there is
    // an aws argument, which aws does not have (64), never a redirect to another broker or a borrowed approval.
    for (const argv of [
      ['--broker', 'http://127.0.0.1:9', 'sts', 'get-caller-identity'],
      ['--approval', 'apr_AAAAAAAAAAAAAAAAAAAAAA', 'sts', 'get-caller-identity'],
      ['sts', 'get-caller-identity', '--wait', '0'],
    ]) {
      const r = await call('aws_call', { argv });
      expect(r.structuredContent, argv.join(' ')).toMatchObject({ status: 'error', exitCode: 64, grantId: null });
      expect(r.structuredContent!.error.code, argv.join(' ')).toBe('parse');
    }
    const line = await call('aws_call', { command: 'aws --broker http://127.0.0.1:9 sts get-caller-identity' });
    expect(line.structuredContent).toMatchObject({ status: 'error', exitCode: 64, grantId: null });
    // A reason that looks like a separator is only a reason.
    const odd = await call('aws_call', { argv: ['sts', 'get-caller-identity'], reason: '--' });
    expect(odd.structuredContent, textOf(odd)).toMatchObject({ status: 'ok', exitCode: 0 });
    // The tool's target and a --profile in the argv must agree.
    const clash = await call('aws_call', { argv: ['sts', 'get-caller-identity', '--profile', 'elsewhere'], target: 'dev' });
    expect(clash.structuredContent).toMatchObject({ status: 'error', grantId: null });
    expect([64, 77]).toContain(clash.structuredContent!.exitCode);
  });

  it('answers malformed arguments with a clear tool error naming what was wrong', async () => {
    const notArray = await call('aws_call', { argv: 'sts get-caller-identity' });
    expect(notArray.isError).toBe(true);
    expect(textOf(notArray)).toMatch(/argv/);

    const unknown = await call('aws_call', { argv: ['sts', 'get-caller-identity'], token: 'eyJ.fake' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/token/);

    const both = await call('aws_call', { argv: ['sts', 'get-caller-identity'], command: 'aws sts get-caller-identity' });
    expect(both.isError).toBe(true);
    expect(both.structuredContent).toMatchObject({ status: 'error', exitCode: 64, error: { code: 'usage' } });
    expect(both.structuredContent!.error.message).toMatch(/exactly one of "argv".*or "command"/);

    const piped = await call('aws_call', { command: 'aws s3 ls | sh' });
    expect(piped.structuredContent).toMatchObject({ status: 'error', exitCode: 64 });
    expect(piped.structuredContent!.error.message).toMatch(/unquoted "\|" at character 11; this is not a shell/);

    const badStatus = await call('approval_status', { id: 'not an id' });
    expect(badStatus.isError).toBe(true);
    expect(textOf(badStatus)).toMatch(/id/);

    // The server is still serving after all of that.
    expect((await call('aws_explain', { command: 'aws sts get-caller-identity' })).isError).toBe(false);
  });
});
