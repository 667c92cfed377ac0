import { describe, expect, it } from 'vitest';
import { actionInfo, actionsForPrefix, isKnownServicePrefix } from '../../src/invocation/iam-catalog.js';

describe('iam-catalog (Service Authorization Reference)', () => {
  it('looks actions up case-insensitively and answers with the SAR spelling and level', () => {
    expect(actionInfo('S3:getobject')).toEqual({ action: 's3:GetObject', accessLevel: 'Read' });
    expect(actionInfo('iam:passrole')).toEqual({ action: 'iam:PassRole', accessLevel: 'Write' });
    expect(actionInfo('s3:PutBucketAcl')?.accessLevel).toBe('Permissions management');
    expect(actionInfo('ec2:DescribeInstances')?.accessLevel).toBe('List');
  });
  it('knows nothing it was not told: unknown actions and prefixes are undefined', () => {
    expect(actionInfo('s3:ListObjectsV2')).toBeUndefined();
    expect(actionInfo('nope:GetObject')).toBeUndefined();
    expect(actionInfo('s3')).toBeUndefined();
    expect(actionInfo(':GetObject')).toBeUndefined();
    expect(isKnownServicePrefix('EC2')).toBe(true);
    expect(isKnownServicePrefix('s3api')).toBe(false);
    expect(actionsForPrefix('s3api')).toEqual([]);
  });
  it('lists a prefix in SAR spelling, sorted', () => {
    const sts = actionsForPrefix('STS');
    expect(sts).toContain('sts:AssumeRole');
    expect([...sts].sort()).toEqual(sts);
    expect(sts.every((a) => a.startsWith('sts:'))).toBe(true);
  });
});
