import { describe, expect, it } from 'vitest';
import { bindingHash } from '../../src/approvals/binding.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { InvocationContext } from '../../src/invocation/types.js';
import { alice, approveDecision, bob, newService } from './fixtures.js';

const ctx = (files: Record<string, string> = {}): InvocationContext => ({
  account: '111122223333',
  region: 'us-east-1',
  cwd: '/home/alice',
  env: { HOME: '/home/alice' },
  fileContents: files,
  readFile: () => {
    throw new Error('the broker never reads local files');
  },
});

describe('binding hash over real parses', () => {
  it('differs for any change of argv token, target, requester or region', async () => {
    const argv = ['iam', 'delete-role', '--role-name', 'old-ci'];
    const base = { requester: 'alice', target: 'prod', invocation: parseInvocation(argv, ctx()) };
    const h = bindingHash(base);
    expect(bindingHash({ ...base, invocation: parseInvocation([...argv], ctx()) })).toBe(h);
    expect(bindingHash({ ...base, target: 'staging' })).not.toBe(h);
    expect(bindingHash({ ...base, requester: 'bob' })).not.toBe(h);
    expect(bindingHash({ ...base, invocation: parseInvocation(argv, { ...ctx(), region: 'eu-west-1' }) })).not.toBe(h);
    expect(bindingHash({ ...base, invocation: parseInvocation(['iam', 'delete-role', '--role-name', 'old-cj'], ctx()) })).not.toBe(h);
    // An abbreviation is the same call (the parser canonicalises it), so it may use the approval.
    expect(bindingHash({ ...base, invocation: parseInvocation(['iam', 'delete-role', '--role-n', 'old-ci'], ctx()) })).toBe(h);
  });

  it('an approval for a file:// policy does not cover other file content under the same argv', async () => {
    const argv = ['iam', 'create-role', '--role-name', 'lambda-exec', '--assume-role-policy-document', 'file://trust.json'];
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
    const evil = trust.replace('lambda.amazonaws.com', 'ec2.amazonaws.com');
    const files = (content: string) => ({ 'trust.json': content, '/home/alice/trust.json': content });
    const approved = parseInvocation(argv, ctx(files(trust)));
    const swapped = parseInvocation(argv, ctx(files(evil)));
    expect(swapped.canonicalArgv).toEqual(approved.canonicalArgv);
    expect(approved.params.AssumeRolePolicyDocument).toBe(trust);

    const { service } = await newService();
    const s = await service.open({ requester: alice, invocation: approved, target: 'prod', decision: approveDecision(), reason: 'new lambda' });
    await service.approve(s.id, bob);
    let code: string | undefined;
    try {
      await service.consume(s.id, { requester: alice, invocation: swapped, target: 'prod' });
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    expect(code).toBe('approval_mismatch');
    expect((await service.consume(s.id, { requester: alice, invocation: parseInvocation(argv, ctx(files(trust))), target: 'prod' })).status).toBe('used');
  });
});
