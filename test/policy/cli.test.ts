import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';

// End to end through the real binary: `node bin/guard-aws.js` over dist/ (built once here).
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(repoRoot, 'bin/guard-aws.js');

function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), NO_COLOR: '1', ...opts.env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.json')], { cwd: repoRoot });
}, 120_000);

describe('guard-aws explain', () => {
  test('--target and --profile name the same thing, and must agree', () => {
    const viaProfile = run(['explain', '--json', '--profile', 'prod', '--', 's3', 'ls']);
    expect(viaProfile.code, viaProfile.stderr).toBe(0);
    expect(JSON.parse(viaProfile.stdout).target).toBe('prod');
    const awsStyle = run(['explain', '--json', '--', 's3', 'ls', '--profile', 'prod']);
    expect(JSON.parse(awsStyle.stdout).target).toBe('prod');
    const clash = run(['explain', '--target', 'dev', '--', 's3', 'ls', '--profile', 'prod']);
    expect(clash.code).toBe(64);
    expect(clash.stderr).toContain('--target dev and --profile prod name different targets');
  });
  test('--json prints one object with the parsed call and the decision', () => {
    const r = run(['explain', '--json', '--account', '111122223333', '--', 's3api', 'get-object', '--bucket', 'b', '--key', 'k', 'out.txt']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ service: 's3', operation: 'GetObject', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::b/k'], decision: 'allow', rule: 'allow-reads', command: 's3api', subcommand: 'get-object', kind: 'api' });
    expect(Array.isArray(j.risks)).toBe(true);
    expect(typeof j.reason).toBe('string');
  });
  test('human output names actions, decision, rule and the defaults used', () => {
    const r = run(['explain', '--', 'iam', 'create-user', '--user-name', 'x']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('iam:CreateUser');
    expect(r.stdout).toMatch(/decision\s+DENY\s+rule deny-iam-writes/);
    expect(r.stdout).toContain('account 000000000000 (default)');
    expect(r.stdout).not.toContain('\x1b['); // no colour without a TTY
  });
  test('approval shows who approves', () => {
    const r = run(['explain', '--json', '--target', 'prod', '--', 'dynamodb', 'delete-table', '--table-name', 'T']);
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'approve', approval: { groups: ['approvers'], count: 2 } });
  });
  test('caller and groups reach the policy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-explain-'));
    writeFileSync(join(dir, 'p.yaml'), 'version: 1\ndefault: deny\nrules:\n  - { id: ops, effect: allow, reason: ops may, match: { groups: [ops] } }\n');
    const args = (g: string[]) => ['explain', '--json', '--policy', join(dir, 'p.yaml'), '--subject', 'ops', ...g, '--', 'sqs', 'list-queues'];
    expect(JSON.parse(run(args([])).stdout).decision).toBe('deny');
    expect(JSON.parse(run(args(['--groups', 'dev,ops'])).stdout)).toMatchObject({ decision: 'allow', rule: 'ops' });
  });
  test('an unparseable invocation exits 64 with the reason on stderr', () => {
    const r = run(['explain', '--', 's3api', 'list-objects-v2', '--bucket']);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
  test('a bad policy exits 78 naming file:line:col', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-explain-'));
    writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nrules:\n  - id: a\n    effect: permit\n    reason: r\n');
    const r = run(['explain', '--policy', 'bad.yaml', '--', 's3', 'ls'], { cwd: dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/bad\.yaml:4:13: rules\[0\]\.effect: Invalid option/);
  });
  test('the default policy is found relative to the package, not the working directory', () => {
    const r = run(['explain', '--json', '--', 's3', 'ls'], { cwd: mkdtempSync(join(tmpdir(), 'ga-cwd-')) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).rule).toBe('allow-reads');
  });
});

describe('guard-aws policy check', () => {
  test('shipped policies pass', () => {
    const r = run(['policy', 'check']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/0 errors/);
  });
  test('problems one per line, exit 78 on errors; warnings alone exit 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-check-'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies/a.yaml'), 'version: 1\nrules:\n  - { id: a, effect: allow, reason: r, match: { actions: ["s3:GetObjekt"] } }\n  - { id: b, effect: deny, reason: r, match: { access: [Reads] } }\n');
    const r = run(['policy', 'check'], { cwd: dir });
    expect(r.code).toBe(78);
    // Both the schema error and the meaning of the rule that is valid on its own are reported.
    expect(r.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^policies\/a\.yaml:3:\d+: rule `a`: `s3:GetObjekt` matches no action/),
      expect.stringMatching(/^policies\/a\.yaml:4:\d+: rules\[1\]\.match\.access\[0\]: Invalid option/),
    ]);
    writeFileSync(join(dir, 'policies/a.yaml'), 'version: 1\nrules:\n  - { id: a, effect: allow, reason: r, match: { actions: ["s3:GetObjekt"] } }\n');
    const r2 = run(['policy', 'check'], { cwd: dir });
    expect(r2.code).toBe(78);
    expect(r2.stdout).toMatch(/^policies\/a\.yaml:3:\d+: rule `a`: `s3:GetObjekt` matches no action/);
    writeFileSync(join(dir, 'policies/a.yaml'), 'version: 1\nrules:\n  - { id: a, effect: deny, reason: r, match: {} }\n  - { id: b, effect: allow, reason: r, match: { actions: ["s3:*"] } }\n');
    const r3 = run(['policy', 'check'], { cwd: dir });
    expect(r3.code).toBe(0);
    expect(r3.stdout).toMatch(/warning: rule `b` is shadowed/);
  });
  test('an old snake_case key still works, with a one-line deprecation warning on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-check-'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies/a.yaml'), 'version: 1\nrules:\n  - id: a\n    effect: deny\n    reason: r\n    match:\n      not_groups: [sre]\n');
    const r = run(['policy', 'check'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('deprecated'))).toEqual([
      'guard-aws: policies/a.yaml:7:7: warning: `not_groups` is deprecated; write `notGroups`',
    ]);
  });
});

describe('guard-aws policy test', () => {
  test('--json: one object for scripts and agents, same exit codes (check: 0 / 78; test: 0 / 1)', () => {
    const ok = run(['policy', 'check', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, errors: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'ga-json-'));
    writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nrules:\n  - { id: a, effect: permit, reason: r }\n');
    const bad = run(['policy', 'check', '--json', join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(78);
    const j = JSON.parse(bad.stdout);
    expect(j).toMatchObject({ ok: false, errors: 1 });
    expect(j.diagnostics[0]).toMatchObject({ line: 3, severity: 'error' });
    const tests = run(['policy', 'test', '--json']);
    expect(tests.code).toBe(0);
    const t = JSON.parse(tests.stdout);
    expect(t).toMatchObject({ ok: true, failed: 0 });
    expect(t.passed).toBe(t.cases.length);
  });
  test('shipped tests pass', () => {
    const r = run(['policy', 'test']);
    expect(r.stdout).toMatch(/\d+ passed, 0 failed/);
    expect(r.code).toBe(0);
  });
  test('a failing case is reported with where and why, exit 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-test-'));
    writeFileSync(join(dir, 'p.yaml'), 'version: 1\ndefault: deny\nrules:\n  - { id: reads, effect: allow, reason: r, match: { access: [List, Read] } }\n');
    writeFileSync(
      join(dir, 'p.test.yaml'),
      'policies: [p.yaml]\ncases:\n  - { name: ls, argv: [s3, ls], expect: { decision: allow, rule: reads } }\n  - { name: wrong, argv: [s3, ls], expect: { decision: deny } }\n',
    );
    const r = run(['policy', 'test', 'p.test.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('PASS  ls');
    expect(r.stdout).toMatch(/FAIL {2}wrong {2}\(p\.test\.yaml:4\)\n\s+expected deny\n\s+got {6}allow by reads/);
    expect(r.stdout).toMatch(/1 passed, 1 failed\s*$/);
  });
  test('a broken test file exits 78 naming file:line:col', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-test-'));
    writeFileSync(join(dir, 'x.test.yaml'), 'policies: [p.yaml]\ncases:\n  - { argv: [s3, ls], expect: { decision: maybe } }\n');
    const r = run(['policy', 'test', 'x.test.yaml'], { cwd: dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/x\.test\.yaml:3:\d+: cases\[0\]\.expect\.decision: Invalid option/);
  });
});

describe('guard-aws explain never prints secret values', () => {
  test('a password given in argv is masked in both outputs', () => {
    const args = ['iam', 'create-login-profile', '--user-name', 'u', '--password', 'Sup3rS3cret!Pw'];
    const human = run(['explain', '--', ...args]);
    const json = run(['explain', '--json', '--', ...args]);
    expect(human.code).toBe(0);
    expect(human.stdout + human.stderr + json.stdout + json.stderr).not.toContain('Sup3rS3cret!Pw');
    expect(JSON.parse(json.stdout).decision).toBe('deny');
  });
});
