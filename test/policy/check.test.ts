import { describe, expect, test } from 'vitest';
import { checkPolicies } from '../../src/policy/check.js';
import { formatDiagnostic } from '../../src/policy/source.js';

function check(text: string): string[] {
  return checkPolicies(['p.yaml'], { readFile: () => text }).diagnostics.map(formatDiagnostic);
}
const one = (match: string, effect = 'allow', extra = '') => `version: 1
rules:
  - id: r1
    effect: ${effect}
    reason: r
    match: ${match}${extra}
`;

describe('policy check', () => {
  test('the shipped policies are clean', () => {
    for (const files of [['policies/default.yaml'], ['policies/examples/ci.yaml'], ['policies/examples/developers.yaml']]) {
      const r = checkPolicies(files);
      expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
    }
  });
  test('unknown actions and prefixes, at the glob', () => {
    expect(check(one('{ actions: ["s3:GetObjekt", "nosuchsvc:Get*", "ec2:Describe*"] }'))).toEqual([
      'p.yaml:6:24: rule `r1`: `s3:GetObjekt` matches no action in the Service Authorization Reference',
      'p.yaml:6:40: rule `r1`: unknown service prefix in `nosuchsvc:Get*`',
    ]);
  });
  test('action names are checked case-insensitively', () => {
    expect(check(one('{ actions: ["S3:getobject"] }'))).toEqual([]);
  });
  test('rules that can never match', () => {
    expect(check(one('{ actions: ["iam:PassRole"], notActions: ["iam:Pass*"] }'))).toEqual([
      'p.yaml:6:53: rule `r1`: can never match: notActions excludes every action the rule names',
    ]);
    expect(check(one('{ actions: ["s3:GetObject"], access: [Permissions management] }'))).toEqual([
      'p.yaml:6:49: rule `r1`: can never match: none of the actions has access level Permissions management',
    ]);
    expect(check(one('{ kinds: [local], actions: ["s3:*"] }'))).toEqual([
      'p.yaml:6:21: rule `r1`: can never match: calls of these kinds need no IAM actions, but the rule matches on actions, access or resources',
    ]);
    expect(check(one('{ accounts: ["prod"] }'))).toEqual(['p.yaml:6:25: rule `r1`: can never match: `prod` is not a 12-digit account id']);
  });
  test('shadowed rules are warnings (earlier same effect, or any stronger effect)', () => {
    const text = `version: 1
rules:
  - { id: all-reads, effect: allow, reason: r, match: { access: [List, Read] } }
  - { id: s3-reads, effect: allow, reason: r, match: { actions: ["s3:Get*"], access: [Read] } }
  - { id: ok, effect: allow, reason: r, match: { actions: ["s3:PutObject"], resources: ["arn:aws:s3:::b/*"] } }
  - { id: deny-s3, effect: deny, reason: r, match: { actions: ["s3:*"] } }
`;
    const r = checkPolicies(['p.yaml'], { readFile: () => text });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:4:5: warning: rule `s3-reads` is shadowed and never decides anything: the earlier rule `all-reads` (p.yaml:3) matches everything it matches',
      'p.yaml:5:5: warning: rule `ok` is shadowed and never decides anything: the stronger deny rule `deny-s3` (p.yaml:6) matches everything it matches',
    ]);
    expect(r.errors).toBe(0);
    expect(r.warnings).toBe(2);
  });
  test('a narrower rule is not reported as shadowing a wider one', () => {
    const text = `version: 1
rules:
  - { id: a, effect: deny, reason: r, match: { actions: ["s3:DeleteObject"] } }
  - { id: b, effect: allow, reason: r, match: { actions: ["s3:*"] } }
  - { id: c, effect: approve, reason: r, approval: { groups: [x] }, match: { actions: ["s3:*"], groups: [ops] } }
  - { id: d, effect: approve, reason: r, approval: { groups: [y], count: 2 }, match: { actions: ["s3:Put*"], groups: [ops] } }
`;
    expect(check(text)).toEqual([]);
  });
  test('schema errors come first and all are reported', () => {
    const r = checkPolicies(['p.yaml', 'q.yaml'], { readFile: (p) => (p === 'p.yaml' ? 'version: 1\nrules: 3\n' : one('{ actions: ["s3:Nope"] }')) });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:2:8: rules: Invalid input: expected array, received number',
      'q.yaml:6:24: rule `r1`: `s3:Nope` matches no action in the Service Authorization Reference',
    ]);
  });
});

describe('policy check: command globs', () => {
  test('unknown commands and sub-commands can never match', () => {
    expect(check(one('{ commands: ["s3 rb", "ec2 terminate-*", "kms *", "configure set", "s4 ls", "ec2 terminate-everything", "s3 ls extra"] }'))).toEqual([
      'p.yaml:6:79: rule `r1`: `s4` is not an aws command, so `s4 ls` can never match (maybe you meant: s3)',
      'p.yaml:6:88: rule `r1`: `ec2` has no sub-command matching `terminate-everything`, so `ec2 terminate-everything` can never match',
      'p.yaml:6:116: rule `r1`: `s3 ls extra` has more than a command and a sub-command, so it can never match',
    ]);
  });
  test('commands of either AWS CLI count: v2-only ones (ddb, configure export-credentials) are real commands', () => {
    expect(check(one('{ commands: ["ddb select", "configure export-credentials", "logs tail", "ddb zap"] }'))).toEqual([
      'p.yaml:6:84: rule `r1`: `ddb` has no sub-command matching `zap`, so `ddb zap` can never match',
    ]);
  });
  test('a mistyped sub-command names the likely intended one; a glob gets no guess', () => {
    expect(check(one('{ commands: ["s3 lss", "s3api list-bukets", "s3 zz*"] }'))).toEqual([
      'p.yaml:6:25: rule `r1`: `s3` has no sub-command matching `lss`, so `s3 lss` can never match (maybe you meant: ls)',
      'p.yaml:6:35: rule `r1`: `s3api` has no sub-command matching `list-bukets`, so `s3api list-bukets` can never match (maybe you meant: list-buckets)',
      'p.yaml:6:56: rule `r1`: `s3` has no sub-command matching `zz*`, so `s3 zz*` can never match',
    ]);
  });
});
