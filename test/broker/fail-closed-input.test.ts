import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorResponse } from '../../src/api/types.js';
const MAX_VALUE_DEPTH = 100;
import { TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';

// Issue 7, "Fail closed, and say so": parameters nested deeper than the walkers handle and CR/LF in a name
// ended in HTTP 500 with no refusal recorded. Through the real broker (real HTTP, real parser and policy, real
// SQLite, moto as STS): each must be a 400 `unparseable` naming the parameter, recorded as a refusal.
let env: BrokerEnvironment;

beforeAll(async () => {
  env = await startBrokerEnv();
});
afterAll(async () => {
  await env?.stop();
});

/** Posts a grant request and returns the status, the error body and the refusal recorded for its request id. */
async function attempt(argv: string[], extra: Record<string, unknown> = {}) {
  const res = await env.post('/v1/grants', { argv, transcriptKey: TRANSCRIPT_KEY, ...extra });
  const requestId = res.headers.get('x-request-id');
  const body = (await res.json()) as ErrorResponse;
  const refusals = await env.broker.broker.ctx.store.listRefusals({ subject: 'alice@example.com', limit: 1000 });
  return { status: res.status, body, refusal: refusals.find((r) => r.requestId === requestId) };
}

const nestJson = (depth: number) => '{"a":'.repeat(depth - 1) + '{"S":"x"}' + '}'.repeat(depth - 1);
const nestShorthand = (depth: number) => 'a={'.repeat(depth - 1) + 'S=x' + '}'.repeat(depth - 1);

describe('deeply nested parameters', () => {
  it.each([
    ['JSON object', '--item', 'JSON', ['dynamodb', 'put-item', '--table-name', 'T', '--item', nestJson(5000)]],
    ['JSON list', '--block-device-mappings', 'JSON', ['ec2', 'run-instances', '--image-id', 'ami-1', '--block-device-mappings', '['.repeat(5000) + ']'.repeat(5000)]],
    ['shorthand', '--item', 'shorthand', ['dynamodb', 'put-item', '--table-name', 'T', '--item', nestShorthand(5000)]],
    ['shorthand list', '--tag-specifications', 'shorthand', ['ec2', 'run-instances', '--image-id', 'ami-1', '--tag-specifications', `Tags=${'['.repeat(3000)}${']'.repeat(3000)}`]],
    ['--cli-input-json', '--cli-input-json', 'JSON', ['dynamodb', 'put-item', '--cli-input-json', `{"TableName":"T","Item":${nestJson(3000)}}`]],
  ])('%s 5000 levels deep → 400 unparseable naming %s, refusal recorded', async (_name, parameter, kind, argv) => {
    const { status, body, refusal } = await attempt(argv as string[]);
    expect(status).toBe(400);
    expect(body.error.code).toBe('unparseable');
    expect(body.error.message).toContain(`${parameter}: ${kind} value nests deeper than ${MAX_VALUE_DEPTH} levels`);
    expect(refusal).toMatchObject({ code: 'unparseable', target: 'dev', decision: null });
    expect(refusal!.reason).toContain(parameter);
  });

  it('a file:// value read from the files the client sent is bounded the same way', async () => {
    const { status, body, refusal } = await attempt(['dynamodb', 'put-item', '--table-name', 'T', '--item', 'file:///tmp/item.json'], {
      files: { '/tmp/item.json': nestJson(4000) },
    });
    expect(status).toBe(400);
    expect(body.error.message).toContain('--item: JSON value nests deeper than');
    expect(refusal?.code).toBe('unparseable');
  });

  it('a value at the documented limit is accepted (DynamoDB-deep documents fit with room to spare)', async () => {
    // MAX_VALUE_DEPTH levels exactly, item map included.
    const res = await env.post('/v1/grants', { argv: ['dynamodb', 'put-item', '--table-name', 'T', '--item', nestJson(MAX_VALUE_DEPTH)], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(200);
    const over = await attempt(['dynamodb', 'put-item', '--table-name', 'T', '--item', nestJson(MAX_VALUE_DEPTH + 1)]);
    expect(over.status).toBe(400);
  });
});

describe('control characters in names', () => {
  it.each([
    ['CR/LF in a table name', 'parameter TableName', 'U+000D', ['dynamodb', 'describe-table', '--table-name', 'Orders\r\nX']],
    ['LF in a role name', 'parameter RoleName', 'U+000A', ['iam', 'get-role', '--role-name', 'admin\nx']],
    ['CR in an S3 URL', 'parameter Bucket', 'U+000D', ['s3', 'ls', 's3://bu\rcket/x']],
    ['ESC in a bucket', 'parameter Bucket', 'U+001B', ['s3api', 'head-bucket', '--bucket', 'b\x1b[2Jx']],
    ['U+2028 in a function name', 'parameter FunctionName', 'U+2028', ['lambda', 'get-function', '--function-name', 'f\u2028g']],
  ])('%s → 400 unparseable naming the parameter, refusal recorded', async (_name, source, codePoint, argv) => {
    const { status, body, refusal } = await attempt(argv as string[]);
    expect(status).toBe(400);
    expect(body.error.code).toBe('unparseable');
    expect(body.error.message).toContain(`${source} contains a control character (${codePoint})`);
    expect(refusal).toMatchObject({ code: 'unparseable', target: 'dev', decision: null });
    expect(refusal!.argv).toEqual(argv);
  });

  it('CR/LF in an option name is refused as an unknown option (400, recorded)', async () => {
    const { status, body, refusal } = await attempt(['dynamodb', 'describe-table', '--table-name\r\n', 'x']);
    expect(status).toBe(400);
    expect(body.error.message).toContain('unknown option at token 2 "--table-name\\r\\n"');
    expect(refusal?.code).toBe('unparseable');
  });

  it('line breaks in a value that names nothing stay allowed (a message body is text)', async () => {
    const res = await env.post('/v1/grants', {
      argv: ['sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/123456789012/q', '--message-body', 'line 1\r\nline 2'],
      transcriptKey: TRANSCRIPT_KEY,
    });
    expect(res.status).toBe(200);
  });
});

describe('property: hostile argv never makes the broker fail', () => {
  // Random nesting (JSON and shorthand, any depth up to far past the limit and as deep as a 64 KiB token allows) and control characters (C0, DEL,
  // C1, bidi controls, line separators) spliced into the names and values of real commands. Whatever the
  // input, the broker answers with a decision or a 4xx refusal, never a 500; every 400 is recorded.
  const controls = fc.constantFrom('\r', '\n', '\r\n', '\x1b[2J', '\x1b]52;c;aGk=\x07', '\u202e', '\u2066', '\x7f', '\x85', '\u2028', '\t', '\x00');
  const text = fc.tuple(fc.stringMatching(/^[A-Za-z0-9-]{0,8}$/), controls, fc.stringMatching(/^[A-Za-z0-9-]{0,8}$/)).map(([a, c, b]) => `${a}${c}${b}`);
  const nested = fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom('json-obj', 'json-list', 'shorthand', 'mixed')).map(([depth, kind]) => {
    if (kind === 'json-obj') return nestJson(depth);
    if (kind === 'json-list') return '['.repeat(depth) + ']'.repeat(depth);
    if (kind === 'shorthand') return nestShorthand(depth);
    const d = Math.min(depth, 7_000); // 6 characters a level: the token stays under the 64 KiB the body schema allows
    return `a=[${'{b=['.repeat(d)}${']}'.repeat(d)}]`;
  });
  const value = fc.oneof(text, nested);
  const argv = fc.oneof(
    value.map((v) => ['dynamodb', 'describe-table', '--table-name', v]),
    value.map((v) => ['dynamodb', 'put-item', '--table-name', 'T', '--item', v]),
    value.map((v) => ['ec2', 'run-instances', '--image-id', 'ami-1', '--tag-specifications', v]),
    value.map((v) => ['iam', 'put-role-policy', '--role-name', 'r', '--policy-name', 'p', '--policy-document', v]),
    value.map((v) => ['s3', 'cp', `s3://${v}/k`, '-']),
    value.map((v) => ['sqs', 'send-message', '--queue-url', `https://sqs.us-east-1.amazonaws.com/123456789012/${v}`, '--message-body', v]),
    fc.tuple(text, text).map(([a, b]) => [a, b]),
    fc.tuple(value, value).map(([a, b]) => ['ssm', 'get-parameter', `--name=${a}`, '--with-decryption', b]),
  );

  it('never a 500; every 400 is a recorded refusal', async () => {
    await fc.assert(
      fc.asyncProperty(argv, async (args) => {
        const res = await env.post('/v1/grants', { argv: args, transcriptKey: TRANSCRIPT_KEY });
        expect(res.status, JSON.stringify(args).slice(0, 200)).toBeLessThan(500);
        if (res.status === 400) {
          // Every token fits the body schema (at most 64 KiB): a 400 here is the parser's refusal.
          expect(((await res.json()) as ErrorResponse).error.code).toBe('unparseable');
          const requestId = res.headers.get('x-request-id');
          const refusals = await env.broker.broker.ctx.store.listRefusals({ subject: 'alice@example.com', limit: 50 });
          expect(refusals.some((r) => r.requestId === requestId)).toBe(true);
        } else await res.body?.cancel();
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});
