import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { MAX_VALUE_DEPTH, jsonTextDepth, valueDepth } from '../../src/invocation/values.js';

// The parser's own limits (docs/aws-cli-parsing.md §2.4): nesting depth of decoded values and control characters
// in resource names. Each is a `parse` refusal naming the argument, never a crash in a later walker.
const v1 = { account: '123456789012', region: 'us-east-1' };
const v2 = { ...v1, cliVersion: 'v2' as const };

function refusal(argv: string[], ctx: Parameters<typeof parseInvocation>[1] = v1): GuardError {
  try {
    parseInvocation(argv, ctx);
  } catch (e) {
    expect(e).toBeInstanceOf(GuardError);
    expect((e as GuardError).code).toBe('parse');
    return e as GuardError;
  }
  throw new Error(`expected a refusal of ${argv.join(' ').slice(0, 80)}`);
}

describe('nesting depth', () => {
  it('counts JSON depth without being fooled by brackets inside strings', () => {
    expect(jsonTextDepth('{"a":"[[[[{{{{\\"]]]"}')).toBe(1);
    expect(jsonTextDepth('[[1],[[2]]]')).toBe(3);
    expect(jsonTextDepth('"just a string"')).toBe(0);
    expect(valueDepth({ a: [{ b: 1 }] })).toBe(3);
    expect(valueDepth('x')).toBe(0);
  });

  it('JSON in a list element, and YAML in flow and block style (v2 --cli-input-yaml)', () => {
    const deep = '['.repeat(MAX_VALUE_DEPTH + 1) + ']'.repeat(MAX_VALUE_DEPTH + 1);
    expect(refusal(['ec2', 'describe-instances', '--filters', deep]).details).toMatchObject({ reason: 'too_deep', maxDepth: MAX_VALUE_DEPTH });
    const flow = `Bucket: b\nKey: ${'['.repeat(400)}${']'.repeat(400)}`;
    expect(refusal(['s3api', 'head-object', '--cli-input-yaml', flow], v2).message).toContain('--cli-input-yaml: YAML value nests deeper than');
    const block = 'Bucket: b\nTagging:\n' + Array.from({ length: MAX_VALUE_DEPTH + 2 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:`).join('\n') + ' x\n';
    expect(refusal(['s3api', 'put-object-tagging', '--key', 'k', '--cli-input-yaml', block], v2).message).toContain('YAML value nests deeper than');
  });

  it('a shorthand value at the limit parses; one level more is refused', () => {
    const nest = (n: number) => 'a={'.repeat(n) + 'S=x' + '}'.repeat(n);
    expect(() => parseInvocation(['dynamodb', 'put-item', '--table-name', 'T', '--item', nest(MAX_VALUE_DEPTH - 1)], v1)).not.toThrow();
    expect(refusal(['dynamodb', 'put-item', '--table-name', 'T', '--item', nest(MAX_VALUE_DEPTH)]).message).toContain('--item: shorthand value nests deeper than 100 levels');
  });
});

describe('control characters in resource names', () => {
  it('refused naming the parameter, whatever the control character', () => {
    for (const c of ['\r', '\n', '\x1b', '\x7f', '\x85', '\u2028']) {
      const e = refusal(['dynamodb', 'describe-table', '--table-name', `Orders${c}x`]);
      expect(e.message).toMatch(/^dynamodb describe-table: parameter TableName contains a control character \(U\+[0-9A-F]{4}\)/);
      expect(e.details).toMatchObject({ reason: 'control_character', parameter: 'TableName' });
    }
  });

  it('values that name nothing keep their line breaks', () => {
    expect(() => parseInvocation(['sns', 'publish', '--topic-arn', 'arn:aws:sns:us-east-1:123456789012:t', '--message', 'a\r\nb\x1b[0m'], v1)).not.toThrow();
  });
});
