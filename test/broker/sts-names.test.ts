import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { roleSessionName, sourceIdentity, stsSafe } from '../../src/broker/sts.js';

// STS AssumeRole: RoleSessionName and SourceIdentity match [\w+=,.@-]* with length 2–64.
const STS_NAME = /^[A-Za-z0-9_+=,.@-]{2,64}$/;

describe('STS names from the caller', () => {
  it('keeps ordinary subjects readable', () => {
    expect(sourceIdentity('alice@example.com')).toBe('alice@example.com');
    expect(roleSessionName('alice@example.com', 'grt_AAAAAAAAAAAAAAAAAAAAAA')).toBe('alice@example.com.grt_AAAAAAAAAAAAAAAAAAAAAA');
    expect(sourceIdentity('José Müller')).toBe('Jose-Muller');
    expect(sourceIdentity('repo:org/app:ref:refs/heads/main')).toBe('repo-org-app-ref-refs-heads-main');
  });
  it('pads one-character subjects and truncates long ones', () => {
    expect(sourceIdentity('a')).toBe('u-a');
    expect(sourceIdentity('')).toBe('u-');
    expect(sourceIdentity('x'.repeat(100))).toHaveLength(64);
    expect(roleSessionName('x'.repeat(100), 'grt_AAAAAAAAAAAAAAAAAAAAAA')).toMatch(/^x{37}\.grt_A{22}$/);
  });
  it('never starts with aws: (reserved by STS)', () => {
    expect(sourceIdentity('aws:root')).toBe('aws-root');
  });
  it('property: any subject gives valid names; the grant id always survives in the session name', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.stringMatching(/^grt_[A-Za-z0-9_-]{22}$/), (sub, id) => {
        const n = roleSessionName(sub, id);
        return STS_NAME.test(n) && n.endsWith(`.${id}`) && STS_NAME.test(sourceIdentity(sub)) && STS_NAME.test(stsSafe(sub, 64));
      }),
      { numRuns: 500 },
    );
  });
});
