import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { isGuardError } from '../../src/errors.js';
import { ACCESS_LEVELS, RISK_SIGNALS, type ParsedInvocation } from '../../src/invocation/types.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { checkPolicies } from '../../src/policy/check.js';
import { decide } from '../../src/policy/decide.js';
import { loadPolicies, loadPoliciesDetailed } from '../../src/policy/load.js';
import { inv, input } from './fixtures.js';

// Property-based: random policy documents, random YAML and random bytes never crash the loader, every error
// names file:line:col, and a decision is never `allow` for something that was not fully understood.

const POS = /^p\.yaml:\d+:\d+: \S/;

const word = fc.constantFrom('s3', 'iam', 'ec2', '*', 'Get*', 'prod-*', 'x', '', 'arn:aws:s3:::b/*', 'all', '0.0.0.0/0', '?');
const match = fc.record(
  {
    actions: fc.array(fc.constantFrom('s3:*', 'iam:Create*', '*', 'ec2:Describe?nstances', 'bad', 'S3:getobject'), { maxLength: 3 }),
    notActions: fc.array(fc.constantFrom('iam:PassRole', 's3:Get*'), { maxLength: 2 }),
    access: fc.array(fc.constantFrom(...ACCESS_LEVELS, 'Bogus'), { maxLength: 3 }),
    resources: fc.array(word, { maxLength: 3 }),
    commands: fc.array(fc.constantFrom('s3 *', 'ec2 terminate-*', ''), { maxLength: 2 }),
    kinds: fc.array(fc.constantFrom('api', 'custom', 'no_api_call', 'local', 'weird'), { maxLength: 2 }),
    risks: fc.array(fc.constantFrom(...RISK_SIGNALS, 'nope'), { maxLength: 2 }),
    params: fc.array(fc.record({ path: fc.constantFrom('**.CidrIp', 'A.B', '**', 'bad path!'), equals: fc.constantFrom('x', 1, true) }, { requiredKeys: ['path'] }), { maxLength: 2 }),
    groups: fc.array(word, { maxLength: 2 }),
    crossAccount: fc.boolean(),
  },
  { requiredKeys: [] },
);
const ruleArb = fc.record(
  {
    id: fc.constantFrom('a', 'b', 'c', 'A', 'bad id', ''),
    effect: fc.constantFrom('deny', 'approve', 'allow', 'permit'),
    reason: fc.constantFrom('r', ''),
    match,
    approval: fc.record({ groups: fc.array(word, { maxLength: 2 }), count: fc.integer({ min: -1, max: 3 }) }),
  },
  { requiredKeys: ['id', 'effect'] },
);
const doc = fc.record(
  {
    version: fc.constantFrom(1, 2, '1'),
    default: fc.constantFrom('deny', 'allow', 'approve', { effect: 'approve', approval: { groups: ['x'] } }),
    rules: fc.array(ruleArb, { maxLength: 5 }),
    masking: fc.record({ fields: fc.array(fc.string(), { maxLength: 2 }), patterns: fc.array(fc.constantFrom('a+', '(', '[z-a]'), { maxLength: 2 }) }),
  },
  { requiredKeys: [] },
);

function tryLoad(text: string) {
  try {
    return { set: loadPolicies(['p.yaml'], { readFile: () => text }) };
  } catch (e) {
    if (!isGuardError(e)) throw e;
    expect(e.code).toBe('policy_invalid');
    expect(e.message).toMatch(POS);
    expect(e.message).not.toContain('\n');
    return { error: e };
  }
}

const invArb: fc.Arbitrary<ParsedInvocation> = fc
  .record({
    kind: fc.constantFrom('api', 'custom', 'no_api_call', 'local'),
    perms: fc.array(
      fc.tuple(fc.constantFrom('s3:GetObject', 'iam:CreateUser', 'ec2:DescribeInstances', 'S3:PUTOBJECT', 'iam:PassRole'), fc.array(word, { maxLength: 2 }), fc.boolean()),
      { maxLength: 3 },
    ),
    risks: fc.subarray([...RISK_SIGNALS]),
  })
  .map(({ kind, perms, risks }) =>
    inv({
      kind: kind as ParsedInvocation['kind'],
      perms: perms.map(([a, r, d]) => [a, r.length ? r : ['*'], d] as [string, string[], boolean]),
      access: { 's3:GetObject': 'Read', 'iam:CreateUser': 'Write', 'ec2:DescribeInstances': 'List' },
      risks,
    }),
  );

describe('random policy input', () => {
  test('random policy documents: load or fail with file:line:col; decisions are well-formed', () => {
    fc.assert(
      fc.property(doc, invArb, (d, invocation) => {
        const { set } = tryLoad(stringify(d));
        if (!set) return;
        const r = decide(set, input(invocation));
        expect(['allow', 'approve', 'deny']).toContain(r.decision);
        if (r.decision === 'approve') expect(r.approval?.count).toBeGreaterThanOrEqual(1);
        // An API call with no derived action is never allowed.
        if ((invocation.kind === 'api' || invocation.kind === 'custom') && invocation.permissions.length === 0) expect(r.decision).toBe('deny');
        // A resource-scoped allow never covers resources that could not be derived.
        if (r.decision === 'allow' && r.rule) {
          const rule = set.rules.find((x) => x.id === r.rule)!;
          if (rule.spec.match.resources && !rule.spec.match.resources.includes('*')) {
            for (const p of invocation.permissions) if (rule.actions === undefined || rule.actions.re.test(p.action)) expect(p.derived).toBe(true);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  test('random YAML text and random bytes never throw anything but policy_invalid', () => {
    const yamlish = fc.array(fc.constantFrom('version: 1\n', 'rules:\n', '  - id: a\n', '    effect: allow\n', '    match: {', '[', ']', '}', '"', "'", '&a ', '*a ', '!!binary ', '\t', ':', '- ', '? ', '\n', '#', 'reason: x\n', '\u0000', '\uFFFE'), { maxLength: 30 }).map((a) => a.join(''));
    fc.assert(fc.property(fc.oneof(yamlish, fc.string(), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1'))), (text) => void tryLoad(text)), { numRuns: 1000 });
  });

  test('policy check never throws on random documents and reports positions', () => {
    fc.assert(
      fc.property(doc, (d) => {
        const r = checkPolicies(['p.yaml'], { readFile: () => stringify(d) });
        for (const x of r.diagnostics) expect(`${x.file}:${x.line}:${x.col}: ${x.message}`).toMatch(POS);
      }),
      { numRuns: 150 },
    );
  });

  test('a YAML alias bomb is refused, not expanded', () => {
    const bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`).join('\n');
    const r = loadPoliciesDetailed(['p.yaml'], { readFile: () => bomb });
    expect(r.set).toBeUndefined();
  });
});

describe('random argv through parse + the default policy', () => {
  const set = loadPolicies(['policies/default.yaml']);
  const tok = fc.constantFrom('s3', 'ls', 'cp', 's3api', 'iam', 'create-user', '--user-name', 'x', '--bucket', 'b', '--endpoint-url', 'http://e', '--', '--region', 'eu-west-1', 'help', '--recursive', 's3://b/k', 'file://x', '--cli-input-json', '{"Bucket":"b"}', 'ec2', 'describe-instances', '--profile', 'p', '--debug', 'sts', 'assume-role', '--p', '--endp', 'configure', 'set');
  test('never an uncaught exception; refused argv are GuardErrors naming a token; allow only for fully understood calls', () => {
    fc.assert(
      fc.property(fc.array(tok, { maxLength: 8 }), (argv) => {
        let parsed: ParsedInvocation;
        try {
          parsed = parseInvocation(argv, { account: '111122223333', region: 'us-east-1', cwd: '/tmp', env: {}, readFile: () => Buffer.from('{}') });
        } catch (e) {
          expect(isGuardError(e)).toBe(true);
          return;
        }
        const d = decide(set, input(parsed));
        if (d.decision === 'allow') {
          expect(parsed.risks).not.toContain('endpoint_override');
          expect(parsed.risks).not.toContain('credential_override');
          expect(parsed.risks).not.toContain('credential_minting');
          if (parsed.kind === 'api' || parsed.kind === 'custom') {
            expect(parsed.permissions.length).toBeGreaterThan(0);
            for (const p of parsed.permissions) expect(parsed.accessLevels[p.action]).toBeDefined();
          }
          expect(parsed.kind).not.toBe('local');
        }
      }),
      { numRuns: 1500 },
    );
  });
});
