/** The memo cache must never hand out stale or shared results. */
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

describe('parse memoisation', () => {
  const ctx = { account: '111122223333', region: 'us-east-1' };
  it('hands out independent copies: mutating one result does not change the next', () => {
    const a = parseInvocation(['s3api', 'list-objects-v2', '--bucket', 'mutate-me'], ctx);
    a.actions.push('s3:DeleteBucket');
    a.permissions[0]!.resources[0] = '*';
    (a.params as Record<string, unknown>).Bucket = 'other';
    const b = parseInvocation(['s3api', 'list-objects-v2', '--bucket', 'mutate-me'], ctx);
    expect(b.actions).toEqual(['s3:ListBucket']);
    expect(b.permissions[0]!.resources).toEqual(['arn:aws:s3:::mutate-me']);
    expect(b.params.Bucket).toBe('mutate-me');
  });
  it('keys on account, region and CLI version', () => {
    expect(parseInvocation(['sqs', 'get-queue-url', '--queue-name', 'q'], ctx).resources).toEqual(['arn:aws:sqs:us-east-1:111122223333:q']);
    expect(parseInvocation(['sqs', 'get-queue-url', '--queue-name', 'q'], { account: '444455556666', region: 'eu-west-1' }).resources).toEqual([
      'arn:aws:sqs:eu-west-1:444455556666:q',
    ]);
    expect(() => parseInvocation(['logs', 'tail', 'g'], ctx)).toThrow(GuardError);
    expect(parseInvocation(['logs', 'tail', 'g'], { ...ctx, cliVersion: 'v2' }).actions).toEqual(['logs:FilterLogEvents']);
  });
  it('never memoises invocations that read files: changed contents are seen', () => {
    let content = '{"Bucket":"first"}';
    const fctx = { ...ctx, cwd: '/w', readFile: () => Buffer.from(content) };
    const argv = ['s3api', 'list-objects-v2', '--cli-input-json', 'file://in.json'];
    expect(parseInvocation(argv, fctx).resources).toEqual(['arn:aws:s3:::first']);
    content = '{"Bucket":"second"}';
    expect(parseInvocation(argv, fctx).resources).toEqual(['arn:aws:s3:::second']);
  });
  it('refuses NUL inside a token (it cannot reach a real argv, and must not alias another cache key)', () => {
    parseInvocation(['s3api', 'list-buckets'], ctx);
    expect(() => parseInvocation(['s3api\0list-buckets'], ctx)).toThrow(/token 0 contains a NUL/);
  });
  it('repeats errors faithfully', () => {
    for (let i = 0; i < 2; i++) {
      try {
        parseInvocation(['myalias', 'run'], ctx);
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(GuardError);
        expect((e as GuardError).code).toBe('parse');
        expect((e as GuardError).message).toMatch(/token 0 "myalias"/);
      }
    }
  });
});
