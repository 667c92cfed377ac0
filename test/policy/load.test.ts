import { describe, expect, test } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { loadPolicies, loadPoliciesDetailed } from '../../src/policy/load.js';
import { diagnosticsOf, fromText } from './helpers.js';

const base = (rules: string) => `version: 1\nrules:\n${rules}`;

describe('policy file errors name file:line:col', () => {
  test('YAML syntax error', () => {
    expect(diagnosticsOf('version: 1\nrules: [\n  - id: x\n')[0]).toMatch(/^p\.yaml:3:\d+: YAML: /);
  });
  test('duplicate keys are errors, not "last wins"', () => {
    expect(diagnosticsOf(base('  - id: a\n    effect: allow\n    effect: deny\n    reason: r\n'))).toEqual([
      expect.stringMatching(/^p\.yaml:5:5: YAML: Map keys must be unique/),
    ]);
  });
  test('a mapping or list used as a key is refused where it is written, without a process warning', () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      expect(diagnosticsOf('version: 1\nrules: []\n{ reason: x }: 1\n')).toEqual(['p.yaml:3:1: YAML: a key must be a plain value, not a mapping or a list']);
      expect(diagnosticsOf(base('  - id: a\n    ? [effect]\n    : allow\n'))[0]).toMatch(/^p\.yaml:4:7: YAML: a key must be a plain value/);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });
  test('unknown effect at the value', () => {
    expect(diagnosticsOf(base('  - id: a\n    effect: permit\n    reason: r\n'))).toEqual(['p.yaml:4:13: rules[0].effect: Invalid option: expected one of "deny"|"approve"|"allow"']);
  });
  test('unknown field at the key', () => {
    expect(diagnosticsOf(base('  - id: a\n    effect: allow\n    reason: r\n    match:\n      action: ["s3:*"]\n'))).toEqual([
      'p.yaml:7:7: rules[0].match.action: unknown field `action`',
    ]);
  });
  test('unknown access level and risk names', () => {
    const d = diagnosticsOf(base('  - id: a\n    effect: allow\n    reason: r\n    match:\n      access: [Reads]\n      risks: [scary]\n'));
    expect(d[0]).toMatch(/^p\.yaml:7:16: rules\[0\]\.match\.access\[0\]: Invalid option/);
    expect(d[1]).toMatch(/^p\.yaml:8:15: rules\[0\]\.match\.risks\[0\]: Invalid option/);
  });
  test('approve without approval, and approval on a deny', () => {
    expect(diagnosticsOf(base('  - id: a\n    effect: approve\n    reason: r\n'))[0]).toMatch(/^p\.yaml:3:5: rules\[0\]: an `approve` rule needs `approval/);
    expect(diagnosticsOf(base('  - id: a\n    effect: deny\n    reason: r\n    approval: { groups: [x] }\n'))[0]).toMatch(/^p\.yaml:3:5: rules\[0\]: an `approve` rule needs/);
  });
  test('a condition with two operators', () => {
    expect(diagnosticsOf(base('  - id: a\n    effect: deny\n    reason: r\n    match:\n      params:\n        - { path: X, equals: 1, in: [2] }\n'))[0]).toMatch(/^p\.yaml:8:11: rules\[0\]\.match\.params\[0\]: a condition needs exactly one operator/);
  });
  test('invalid masking regex', () => {
    expect(diagnosticsOf('version: 1\nrules: []\nmasking:\n  patterns: ["ok", "(unclosed"]\n')[0]).toMatch(/^p\.yaml:4:20: masking\.patterns\[1\]: not a valid regular expression/);
  });
  test('wrong version, empty file, non-mapping', () => {
    expect(diagnosticsOf('version: 2\nrules: []\n')).toEqual(['p.yaml:1:10: version: version must be 1']);
    expect(diagnosticsOf('')[0]).toMatch(/^p\.yaml:1:1: a policy file must be a mapping/);
    expect(diagnosticsOf('- a\n- b\n')[0]).toMatch(/^p\.yaml:1:1: a policy file must be a mapping/);
  });
  test('loadPolicies throws policy_invalid (exit 78) with the first problem on one line', () => {
    try {
      loadPolicies(['p.yaml'], { readFile: () => base('  - id: a\n    effect: permit\n    reason: r\n  - id: b\n    effect: nope\n    reason: r\n') });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GuardError);
      expect((e as GuardError).code).toBe('policy_invalid');
      expect((e as GuardError).exitCode).toBe(78);
      expect((e as GuardError).message).toMatch(/^p\.yaml:4:13: .* \(and 1 more problem; run `guard-aws policy check`\)$/);
      expect((e as GuardError).message).not.toContain('\n');
    }
  });
  test('unreadable file', () => {
    expect(() => loadPolicies(['/nonexistent/x.yaml'])).toThrow(/^\/nonexistent\/x\.yaml:1:1: cannot read policy file \(ENOENT\)$/);
  });
  test('the shipped default policy loads', () => {
    expect(loadPolicies(['policies/default.yaml']).rules.length).toBeGreaterThan(20);
    expect(fromText('version: 1\n').rules).toEqual([]);
  });
});

describe('snake_case keys of earlier releases', () => {
  const old = base(
    '  - id: a\n    effect: deny\n    reason: r\n    match:\n      not_actions: ["s3:Get*"]\n      not_groups: [sre]\n      cross_account: false\n      risks_all: [write]\n' +
      '      params: [{ path: "**.CidrIp", cidr_prefix_max: 8 }]\n',
  );
  const now = old.replace('not_actions', 'notActions').replace('not_groups', 'notGroups').replace('cross_account', 'crossAccount').replace('risks_all', 'risksAll').replace('cidr_prefix_max', 'cidrPrefixMax');

  test('are read as their camelCase names, with one warning line per key naming file:line:col', () => {
    const warnings: string[] = [];
    const r = loadPoliciesDetailed(['old.yaml'], { readFile: () => old, warn: (l) => warnings.push(l) });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(warnings).toEqual([
      'old.yaml:7:7: warning: `not_actions` is deprecated; write `notActions`',
      'old.yaml:8:7: warning: `not_groups` is deprecated; write `notGroups`',
      'old.yaml:9:7: warning: `cross_account` is deprecated; write `crossAccount`',
      'old.yaml:10:7: warning: `risks_all` is deprecated; write `risksAll`',
      'old.yaml:11:37: warning: `cidr_prefix_max` is deprecated; write `cidrPrefixMax`',
    ]);
    const quiet: string[] = [];
    const same = loadPoliciesDetailed(['new.yaml'], { readFile: () => now, warn: (l) => quiet.push(l) });
    expect(quiet).toEqual([]);
    expect(r.specs[0]!.spec).toEqual(same.specs[0]!.spec);
  });

  test('compile to the same rules as the new spelling', () => {
    const a = loadPolicies(['old.yaml'], { readFile: () => old, warn: () => {} });
    const b = loadPolicies(['new.yaml'], { readFile: () => now });
    expect(a.rules.map((r) => r.spec)).toEqual(b.rules.map((r) => r.spec));
  });

  test('both spellings of one key is an error at the old key', () => {
    const both = base('  - id: a\n    effect: deny\n    reason: r\n    match:\n      notActions: ["s3:Get*"]\n      not_actions: ["s3:Put*"]\n');
    expect(diagnosticsOf(both)).toEqual(['p.yaml:8:7: `not_actions` and `notActions` are the same setting; give only `notActions`']);
  });
});
