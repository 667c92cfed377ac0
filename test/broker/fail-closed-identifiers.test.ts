import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorResponse, GrantResponse } from '../../src/api/types.js';
import { ACCOUNT, TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';

// Fail closed, and say so (issue 7): through the real broker (real HTTP, real parser and policy file, real
// SQLite, moto as STS, the embedded test IdP), an identifier the deriver cannot read or that holds a wildcard is a
// 400 `unparseable` with its reason and a recorded refusal, never an HTTP 500 or a grant on `*`.
let env: BrokerEnvironment;

beforeAll(async () => {
  env = await startBrokerEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function refusedWith(argv: string[], reason: RegExp): Promise<void> {
  const res = await env.post('/v1/grants', { argv, transcriptKey: TRANSCRIPT_KEY });
  expect(res.status, argv.join(' ')).toBe(400);
  const body = (await res.json()) as ErrorResponse & { credentials?: unknown };
  expect(body.error.code).toBe('unparseable');
  expect(body.error.message).toMatch(reason);
  expect(body.credentials).toBeUndefined();
  const refusals = await env.broker.broker.ctx.store.listRefusals({ subject: 'alice@example.com' });
  const recorded = refusals.find((r) => JSON.stringify(r.argv) === JSON.stringify(argv));
  expect(recorded, `refusal recorded for ${argv.join(' ')}`).toMatchObject({ code: 'unparseable', reason: expect.stringMatching(reason) });
}

describe('identifiers the deriver cannot read, through the broker', () => {
  it("'*' as an ECR registry id → 400 with the reason, recorded", async () => {
    await refusedWith(['ecr', 'batch-get-image', '--registry-id', '*', '--repository-name', 'app', '--image-ids', 'imageTag=latest'], /registryId: "\*" holds a wildcard/);
  });

  it('a queue URL with no account/queue path → 400, recorded', async () => {
    await refusedWith(['sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/jobs', '--message-body', 'x'], /QueueUrl: .* cannot be read as an identifier/);
  });

  it('a topic ARN with a wildcard region → 400, recorded', async () => {
    await refusedWith(['sns', 'publish', '--topic-arn', `arn:aws:sns:*:${ACCOUNT}:alerts`, '--message', 'x'], /TopicArn: .* holds a wildcard/);
  });

  it("moto's queue URL (a host the parser never knew) is granted on that queue only", async () => {
    const url = `${env.moto.endpoint}/${ACCOUNT}/jobs`;
    const res = await env.post('/v1/grants', { argv: ['sqs', 'send-message', '--queue-url', url, '--message-body', 'x'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(200);
    const grant = (await res.json()) as GrantResponse;
    expect(JSON.parse(grant.sessionPolicy)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sqs:SendMessage',
          Resource: `arn:aws:sqs:us-east-1:${ACCOUNT}:jobs`,
          Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } },
        },
      ],
    });
  });
});
