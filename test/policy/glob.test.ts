import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { compileGlobs, globCovers, globsIntersect, wildcardMatch } from '../../src/policy/glob.js';

describe('globs (IAM wildcards: * any run, ? one character)', () => {
  test('compiled globs match whole strings only', () => {
    const re = compileGlobs(['s3:Get*', 'ec2:Describe?nstances'], true);
    expect(re.test('s3:GetObject')).toBe(true);
    expect(re.test('S3:getobject')).toBe(true);
    expect(re.test('xs3:GetObject')).toBe(false);
    expect(re.test('ec2:DescribeInstances')).toBe(true);
    expect(re.test('ec2:DescribeXXnstances')).toBe(false);
  });

  test('regex metacharacters in globs are literal', () => {
    const re = compileGlobs(['a.b(c)+[d]'], false);
    expect(re.test('a.b(c)+[d]')).toBe(true);
    expect(re.test('aXb(c)+[d]')).toBe(false);
  });

  test('case sensitivity is chosen per use', () => {
    expect(compileGlobs(['arn:aws:s3:::Prod-*'], false).test('arn:aws:s3:::prod-x')).toBe(false);
    expect(compileGlobs(['arn:aws:s3:::Prod-*'], true).test('arn:aws:s3:::prod-x')).toBe(true);
  });

  test('wildcardMatch agrees with the compiled RegExp', () => {
    const glob = fc.stringMatching(/^[ab*?]{0,6}$/);
    const str = fc.stringMatching(/^[ab]{0,8}$/);
    fc.assert(fc.property(glob, str, (g, s) => wildcardMatch(g, s, false) === compileGlobs([g], false).test(s)));
  });

  test('globCovers is sound: whenever it says yes, every instance of the inner glob matches', () => {
    const glob = fc.stringMatching(/^[ab*?]{0,5}$/);
    const fill = fc.stringMatching(/^[ab]{0,3}$/);
    fc.assert(
      fc.property(glob, glob, fc.array(fill, { minLength: 6, maxLength: 6 }), (outer, inner, fills) => {
        if (!globCovers(outer, inner, false)) return true;
        let k = 0;
        const instance = inner.replace(/[*?]/g, (w) => (w === '*' ? fills[k++ % 6]! : fills[k++ % 6]![0] ?? 'a'));
        return wildcardMatch(outer, instance, false);
      }),
    );
  });

  test('globCovers on resources', () => {
    expect(globCovers('arn:aws:s3:::b/*', 'arn:aws:s3:::b/tmp/*', false)).toBe(true);
    expect(globCovers('arn:aws:s3:::b/tmp/?', 'arn:aws:s3:::b/tmp/*', false)).toBe(false);
    expect(globCovers('arn:aws:s3:::b/tmp/x', 'arn:aws:s3:::b/tmp/*', false)).toBe(false);
    expect(globCovers('arn:aws:s3:::b/*', 'arn:aws:s3:::other/*', false)).toBe(false);
  });

  test('globsIntersect is exact on small cases', () => {
    const glob = fc.stringMatching(/^[ab*?]{0,4}$/);
    // brute force over all strings of length <= 5 on {a,b}: good enough for patterns this small
    const all: string[] = [''];
    for (let n = 1; n <= 6; n++) for (let i = 0; i < 1 << n; i++) all.push([...Array(n)].map((_, j) => ((i >> j) & 1 ? 'b' : 'a')).join(''));
    fc.assert(
      fc.property(glob, glob, (a, b) => {
        const brute = all.some((s) => wildcardMatch(a, s, false) && wildcardMatch(b, s, false));
        return globsIntersect(a, b, false) === brute;
      }),
    );
  });
});
