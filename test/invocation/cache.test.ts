/** The memo cache must never hand out stale or shared results. */
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

describe('parse memoisation', () => {
  const ctx = { account: '111122223333', region: 'us-east-1' };
  it('shares one deep-frozen result: no caller can alter what the next one gets', () => {
    const argv = ['s3api', 'list-objects-v2', '--bucket', 'mutate-me'];
    const a = parseInvocation(argv, ctx);
    expect(() => a.actions.push('s3:DeleteBucket')).toThrow(TypeError);
    expect(() => {
      a.permissions[0]!.resources[0] = '*';
    }).toThrow(TypeError);
    expect(() => {
      (a.params as Record<string, unknown>).Bucket = 'other';
    }).toThrow(TypeError);
    expect(() => {
      a.accessLevels['s3:ListBucket'] = 'Write';
    }).toThrow(TypeError);
    // The caller's own argv array stays the caller's: changing it later does not reach the memoised result.
    argv[3] = 'changed';
    const b = parseInvocation(['s3api', 'list-objects-v2', '--bucket', 'mutate-me'], ctx);
    expect(b).toBe(a);
    expect(b.actions).toEqual(['s3:ListBucket']);
    expect(b.permissions[0]!.resources).toEqual(['arn:aws:s3:::mutate-me']);
    expect(b.params.Bucket).toBe('mutate-me');
    expect(b.argv).toEqual(['s3api', 'list-objects-v2', '--bucket', 'mutate-me']);
  });
  it('freezes results that read files as well (one contract), and never shares them', () => {
    const fctx = { ...ctx, cwd: '/w', readFile: () => Buffer.from('{"Bucket":"b"}') };
    const argv = ['s3api', 'list-objects-v2', '--cli-input-json', 'file://in.json'];
    const a = parseInvocation(argv, fctx);
    expect(Object.isFrozen(a) && Object.isFrozen(a.files) && Object.isFrozen(a.params)).toBe(true);
    expect(parseInvocation(argv, fctx)).not.toBe(a);
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
  it('repeats errors faithfully, as GuardErrors with frozen details', () => {
    const seen: GuardError[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        parseInvocation(['myalias', 'run'], ctx);
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(GuardError);
        expect((e as GuardError).code).toBe('parse');
        expect((e as GuardError).exitCode).toBe(64);
        expect((e as GuardError).message).toMatch(/token 0 "myalias"/);
        seen.push(e as GuardError);
      }
    }
    expect(seen[2]!.details).toEqual(seen[0]!.details);
    expect(seen[2]!.details.token).toBe('myalias');
    expect(Object.isFrozen(seen[2]!.details)).toBe(true);
    // A memoised refusal is answered without a stack trace (it is an expected outcome, not a fault).
    expect(seen[2]!.stack).not.toMatch(/\n\s+at /);
  });
});
