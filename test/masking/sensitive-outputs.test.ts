import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { sensitiveOutputTable, type SensitiveOutputTable } from '../../src/invocation/sensitive-outputs.js';
import { MASK, SECRET_FIELDS, compileMasking } from '../../src/masking/rules.js';
import { StreamMasker, maskText } from '../../src/masking/stream-masker.js';
import { writePlugin } from '../../src/runner/aws-plugin.js';
import { repoRoot } from '../helpers/corpus.js';
import { realAws } from '../runner/helpers.js';

/**
 * Every operation whose response can hold a secret (data/sensitive-outputs.json: the shapes botocore marks
 * sensitive that are secrets, plus the curated ones) gets `secret_read`, and the secret is masked in json, text,
 * table and yaml. The masking half runs the real masking plugin in the real CLI's Python on parsed responses
 * built from botocore's own output shapes, formatted by the CLI's own formatters (yaml: the same parsed object
 * dumped as YAML, which is what v2's yaml formatter prints). test/runner/masking-e2e.test.ts runs a few of these
 * end to end through the real CLI against moto.
 */
const DATA = resolve(repoRoot, 'data/sensitive-outputs.json');
const PROBE = resolve(repoRoot, 'test/masking/sensitive-outputs-probe.py');
const table: SensitiveOutputTable = JSON.parse(readFileSync(DATA, 'utf8'));

function python(): string {
  // The interpreter of the aws on the PATH (its shebang): botocore and awscli import from there.
  const first = readFileSync(realAws().path, 'utf8').split('\n', 1)[0]!;
  return first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0]! : 'python3';
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ops = Object.entries(table.commands).flatMap(([command, byOp]) => Object.entries(byOp).map(([operation, entry]) => ({ command, operation, entry })));

describe('the table', () => {
  test('covers the measured gaps of issue 8, and keeps non-secrets out', () => {
    const paths = (c: string, o: string) => table.commands[c]?.[o]?.paths ?? [];
    expect(paths('lambda', 'list-functions')).toContain('Functions[].Environment.Variables');
    expect(paths('lambda', 'get-function-configuration')).toContain('Environment.Variables');
    expect(paths('ec2', 'describe-launch-template-versions')).toContain('LaunchTemplateVersions[].LaunchTemplateData.UserData');
    expect(paths('ec2', 'describe-instance-attribute')).toEqual(['UserData.Value']);
    expect(paths('apigateway', 'get-api-keys')).toEqual(['items[].value']);
    expect(paths('cognito-idp', 'describe-user-pool-client')).toEqual(['UserPoolClient.ClientSecret']);
    // Name/value pair lists: the variables' names stay readable, their values are masked.
    expect(paths('ecs', 'describe-task-definition')).toContain('taskDefinition.containerDefinitions[].environment[].value');
    // botocore marks these sensitive, but they are personal data or identifiers, not secrets.
    expect(table.commands['connect']?.['describe-user']).toBeUndefined();
    expect(paths('cognito-idp', 'list-user-pool-clients')).toEqual([]);
    expect(JSON.stringify(table)).not.toMatch(/NextToken|\.Description"/);
    expect(ops.length).toBeGreaterThan(250);
  });
});

test('every operation of the table is an operation of data/aws-model with the same API name', () => {
  const wrong: string[] = [];
  for (const { command, operation, entry } of ops) {
    const model = JSON.parse(readFileSync(resolve(repoRoot, 'data/aws-model', `${command}.json`), 'utf8')) as { ops: Record<string, { o: string }> };
    if (model.ops[operation]?.o !== entry.o) wrong.push(`${command} ${operation}`);
  }
  // Regenerate with `npm run gen:sensitive-outputs` after `npm run gen:aws-model`.
  expect(wrong).toEqual([]);
});

describe('secret_read', () => {
  const cases: Array<{ command: string; operation: string; params: Record<string, unknown>; risk: boolean }> = JSON.parse(
    execFileSync(python(), [PROBE, 'argv', DATA], { encoding: 'utf8', maxBuffer: 1 << 26 }),
  );
  const ctx = { account: '111122223333', region: 'us-east-1', cwd: '/nonexistent', env: {}, readFile: () => Buffer.from('') };

  test(`each of the ${cases.length} operations whose response holds a secret carries it exactly when the secret comes back in clear`, () => {
    expect(cases.length).toBe(ops.length);
    const missing: string[] = [];
    const refused: string[] = [];
    let checked = 0;
    let unmapped = 0;
    for (const c of cases) {
      const argv = [c.command, c.operation, '--cli-input-json', JSON.stringify(c.params)];
      let risks: string[];
      try {
        risks = parseInvocation(argv, ctx).risks;
      } catch (e) {
        if (!isGuardError(e)) throw e;
        // Operations without an IAM action (bearer-token APIs such as sso get-role-credentials, sso-oidc
        // create-token) are refused outright: they never run, so no secret is returned.
        // So are calls whose placeholder identifiers cannot be read (`--role-arn xxxxxxxx`, docs/aws-cli-parsing.md
        // §5.3): AWS would reject them too.
        if (e.details.reason === 'unmapped' || e.details.reason === 'unreadable_identifier') unmapped++;
        else refused.push(`${c.command} ${c.operation}: ${e.code} ${e.message}`);
        continue;
      }
      checked++;
      if (risks.includes('secret_read') !== c.risk) missing.push(`${c.command} ${c.operation}: ${c.risk ? 'no' : 'unexpected'} secret_read`);
    }
    expect(missing).toEqual([]);
    expect(refused).toEqual([]);
    expect(unmapped).toBeLessThan(12);
    expect(checked + unmapped).toBe(cases.length);
  });

  test.each([
    [['lambda', 'list-functions'], true],
    [['lambda', 'get-function-configuration', '--function-name', 'f'], true],
    [['ec2', 'describe-launch-template-versions', '--launch-template-id', 'lt-0123456789abcdef0'], true],
    [['ec2', 'describe-instance-attribute', '--instance-id', 'i-0123456789abcdef0', '--attribute', 'userData'], true],
    [['ec2', 'describe-instance-attribute', '--instance-id', 'i-0123456789abcdef0', '--attribute', 'instanceType'], false],
    [['apigateway', 'get-api-keys', '--include-values'], true],
    [['apigateway', 'get-api-keys'], false],
    [['cognito-idp', 'describe-user-pool-client', '--user-pool-id', 'us-east-1_abc', '--client-id', 'c1'], true],
    // Only a `****` placeholder comes back for a pending password change: masked, but an ordinary read.
    [['rds', 'describe-db-instances'], false],
    [['cognito-idp', 'list-user-pool-clients', '--user-pool-id', 'us-east-1_abc'], false],
  ] as const)('%j → secret_read %s', (argv, expected) => {
    expect(parseInvocation([...argv], ctx).risks.includes('secret_read')).toBe(expected);
  });
});

describe('masking', () => {
  test('every secret path of every operation is masked in json, text, table and yaml by the in-CLI plugin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-aws-sensitive-'));
    dirs.push(dir);
    writePlugin(dir, { mask: MASK, fields: [...SECRET_FIELDS], fieldEnums: table.fieldEnums, paths: {}, dockerLoginToken: false, tty: null });
    const r = JSON.parse(execFileSync(python(), [PROBE, 'mask', DATA, dir, MASK], { encoding: 'utf8', maxBuffer: 1 << 26 })) as {
      checked: number;
      leaks: string[];
    };
    expect(r.leaks).toEqual([]);
    const nPaths = ops.reduce((n, o) => n + o.entry.paths.length, 0);
    expect(r.checked).toBe(nPaths * 4);
  }, 120_000);

  test('enum constants under a secret field name stay readable (Cognito TokenValidityUnits), tokens do not', () => {
    const compiled = compileMasking({ fieldEnums: table.fieldEnums });
    const units = '{"TokenValidityUnits": {"AccessToken": "hours", "IdToken": "minutes", "RefreshToken": "days"}}';
    expect(maskText(compiled, units)).toBe(units);
    expect(maskText(compiled, '{"AccessToken": "hours-eyJhbGciOi"}')).toBe(`{"AccessToken": "${MASK}"}`);
    expect(maskText(compiled, '{"AccessToken": "eyJhbGciOi.x.y", "RefreshToken": "days"}')).toBe(`{"AccessToken": "${MASK}", "RefreshToken": "days"}`);
    // Other secret fields are not affected by the exception.
    expect(maskText(compiled, '{"Password": "hours"}')).toBe(`{"Password": "${MASK}"}`);
    expect(sensitiveOutputTable().fieldEnums.accesstoken).toEqual(['days', 'hours', 'minutes', 'seconds']);
  });

  test('the enum exception holds wherever a chunk boundary falls', () => {
    const compiled = compileMasking({ fieldEnums: table.fieldEnums });
    const text = '{"TokenValidityUnits": {"AccessToken": "hours"}, "AuthenticationResult": {"AccessToken": "hourseyJtoken", "IdToken": "days"}}';
    const expected = `{"TokenValidityUnits": {"AccessToken": "hours"}, "AuthenticationResult": {"AccessToken": "${MASK}", "IdToken": "days"}}`;
    for (let i = 0; i <= text.length; i++) {
      const m = new StreamMasker(compiled);
      const out = Buffer.concat([m.push(text.slice(0, i)), m.push(text.slice(i)), m.end()]).toString('utf8');
      expect(out, `split at ${i}`).toBe(expected);
    }
  });
});
