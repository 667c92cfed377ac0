import { describe, expect, it } from 'vitest';
import { splitGuardOptions } from '../../src/client/guard-options.js';
import { GuardError } from '../../src/errors.js';

describe('splitGuardOptions', () => {
  it('reads guard options at the head only', () => {
    const r = splitGuardOptions(['--approval', 'ap_1', '--wait=30', '--reason', 'fix prod', 's3', 'rb', 's3://b']);
    expect(r.options).toMatchObject({ approvalId: 'ap_1', waitSeconds: 30, reason: 'fix prod' });
    expect(r.awsArgv).toEqual(['s3', 'rb', 's3://b']);
  });
  it('leaves an aws operation option that happens to share a name alone', () => {
    const r = splitGuardOptions(['ec2', 'wait', 'instance-running', '--reason', 'x']);
    expect(r.options.reason).toBeUndefined();
    expect(r.awsArgv).toEqual(['ec2', 'wait', 'instance-running', '--reason', 'x']);
  });
  it('takes --profile anywhere as the target and never passes it on', () => {
    const r = splitGuardOptions(['s3', 'ls', '--profile', 'prod']);
    expect(r.options.target).toBe('prod');
    expect(r.awsArgv).toEqual(['s3', 'ls']);
    expect(splitGuardOptions(['--profile=dev', 'sts', 'get-caller-identity']).options.target).toBe('dev');
  });
  it('does not treat abbreviations of --profile as the target (the parser flags them)', () => {
    const r = splitGuardOptions(['s3', 'ls', '--prof', 'prod']);
    expect(r.options.target).toBeUndefined();
    expect(r.awsArgv).toEqual(['s3', 'ls', '--prof', 'prod']);
  });
  it('refuses conflicting --profile values and missing values', () => {
    expect(() => splitGuardOptions(['--profile', 'a', 's3', 'ls', '--profile', 'b'])).toThrow(GuardError);
    expect(() => splitGuardOptions(['s3', 'ls', '--profile'])).toThrow(/--profile needs/);
    expect(() => splitGuardOptions(['--wait'])).toThrow(/--wait needs a value/);
    expect(() => splitGuardOptions(['--wait', 'soon', 's3', 'ls'])).toThrow(/whole seconds/);
    expect(() => splitGuardOptions(['--approval', '../../x', 's3', 'ls'])).toThrow(/not an approval id/);
  });
  it('reads the wait from GUARD_AWS_APPROVAL_WAIT when not given', () => {
    expect(splitGuardOptions(['s3', 'ls'], { GUARD_AWS_APPROVAL_WAIT: '12' }).options.waitSeconds).toBe(12);
    expect(() => splitGuardOptions(['s3', 'ls'], { GUARD_AWS_APPROVAL_WAIT: '-1' })).toThrow(GuardError);
  });
  it('-- ends guard options', () => {
    const r = splitGuardOptions(['--', '--wait', '5']);
    expect(r.awsArgv).toEqual(['--wait', '5']);
    expect(r.options.waitSeconds).toBeUndefined();
  });
});
