import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { cidrPrefix, compileCondition, evalCondition } from '../../src/policy/conditions.js';

// Params shaped like API parameters: nested objects/arrays, JSON documents inside strings.
const key = fc.constantFrom('a', 'B', 'c', 'Principal', 'AWS');
const leaf = fc.constantFrom('x', 'y', '*', 1, true, '0.0.0.0/0');
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(key, tie('v'), { maxKeys: 3 }), tie('v').map((x) => JSON.stringify(x))),
})).v;
const params = fc.dictionary(key, value, { maxKeys: 4 });

describe('parameter conditions', () => {
  test('the key-index fast path for `**.Key…` agrees with walking the parameters', () => {
    const path = fc.tuple(key, fc.option(key, { nil: undefined })).map(([a, b]) => (b ? `**.${a}.${b}` : `**.${a}`));
    fc.assert(
      fc.property(params, path, leaf, fc.boolean(), (p, pth, want, loose) => {
        const c = compileCondition({ path: pth, equals: want as string }, loose);
        expect(evalCondition(c, p, loose, {})).toBe(evalCondition(c, p, loose, undefined));
        const e = compileCondition({ path: pth, exists: true }, loose);
        expect(evalCondition(e, p, loose, {})).toBe(evalCondition(e, p, loose, undefined));
      }),
      { numRuns: 2000 },
    );
  });
  test('restrictive (any) is implied by strict (all): an allow condition never holds where a deny one would not', () => {
    const path = fc.constantFrom('**', 'a', 'a.B', '*.c', '**.Principal', 'a.**');
    fc.assert(
      fc.property(params, path, leaf, (p, pth, want) => {
        const strict = evalCondition(compileCondition({ path: pth, equals: want as string }, false), p, false, {});
        const loose = evalCondition(compileCondition({ path: pth, equals: want as string }, true), p, true, {});
        if (strict) expect(loose).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
  test('CIDR prefixes', () => {
    expect(cidrPrefix('0.0.0.0/0')).toBe(0);
    expect(cidrPrefix(' ::/0 ')).toBe(0);
    expect(cidrPrefix('10.0.0.0/33')).toBeUndefined();
    expect(cidrPrefix('2001:db8::/64')).toBe(64);
    expect(cidrPrefix('not a cidr')).toBeUndefined();
    expect(cidrPrefix(7)).toBeUndefined();
  });
  test('nesting deeper than can be inspected fails closed: restrictive conditions hold, allow conditions do not', () => {
    let deep: unknown = 'harmless';
    for (let i = 0; i < 10000; i++) deep = { a: deep };
    for (const path of ['**', '**.a', '**.Principal']) {
      expect(evalCondition(compileCondition({ path, equals: 'x' }, true), { a: deep }, true, {})).toBe(true);
      expect(evalCondition(compileCondition({ path, equals: 'x' }, false), { a: deep }, false, {})).toBe(false);
    }
  });
});
