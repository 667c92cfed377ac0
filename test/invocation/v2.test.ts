import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { assertGrantTable, cliRelease } from '../../src/invocation/cli-release.js';
import { modelIndex } from '../../src/invocation/model.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { InvocationContext } from '../../src/invocation/types.js';

/**
 * AWS CLI v2 read with its own table (data/aws-model-v2, generated from Debian's aws-cli 2.9 by
 * scripts/gen-aws-model.mjs), and the version rule of docs/aws-cli-parsing.md §6.3.
 */
const base: InvocationContext = { account: '111122223333', region: 'us-east-1', cwd: '/tmp', env: { HOME: '/home/u' }, readFile: () => Buffer.from('file-text') };
const v1: InvocationContext = { ...base, cliVersion: 'v1' };
const v2: InvocationContext = { ...base, cliVersion: 'v2' };
const skew: InvocationContext = { ...v2, exactOptionNames: true };

function refusal(argv: string[], ctx: InvocationContext): GuardError {
  try {
    parseInvocation(argv, ctx);
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}
const actionsOf = (argv: string[], ctx = v2) => parseInvocation(argv, ctx).permissions.map((p) => `${p.action} ${p.resources.join(',')}`);

describe('the v2 table', () => {
  it('is generated from a v2 release and has v2 globals, not v1-only ones', () => {
    expect(modelIndex('v2').cliVersion).toMatch(/^2\./);
    const globals = modelIndex('v2').globals.map(([name]) => name);
    expect(globals).toEqual(expect.arrayContaining(['cli-binary-format', 'no-cli-pager', 'cli-auto-prompt', 'no-cli-auto-prompt']));
    expect(globals).not.toContain('v2-debug');
    expect(refusal(['--v2-debug', 'sts', 'get-caller-identity'], v2).code).toBe('parse');
    expect(refusal(['--no-cli-pager', 'sts', 'get-caller-identity'], v1).code).toBe('parse');
  });

  it('--no-cli-pager and --cli-binary-format are kept; a binary format v2 does not have is refused', () => {
    const r = parseInvocation(['--no-cli-pager', '--cli-binary-format', 'raw-in-base64-out', 'sts', 'get-caller-identity'], v2);
    expect(r.canonicalArgv).toEqual(['--no-cli-pager', '--cli-binary-format', 'raw-in-base64-out', 'sts', 'get-caller-identity']);
    expect(refusal(['--cli-binary-format', 'raw', 'sts', 'get-caller-identity'], v2).message).toMatch(/base64 or raw-in-base64-out/);
  });

  it('--cli-auto-prompt is refused as interactive; --no-cli-auto-prompt is fine', () => {
    const e = refusal(['sts', 'get-caller-identity', '--cli-auto-prompt'], v2);
    expect(e.details.reason).toBe('interactive');
    expect(parseInvocation(['--no-cli-auto-prompt', 'sts', 'get-caller-identity'], v2).actions).toEqual(['sts:GetCallerIdentity']);
  });

  it('--cli-input-yaml is hidden input on v2 (merged under explicit arguments) and unknown on v1', () => {
    const r = parseInvocation(['s3api', 'head-object', '--bucket', 'b', '--cli-input-yaml', 'Bucket: other\nKey: k'], v2);
    expect(r.params).toMatchObject({ Bucket: 'b', Key: 'k' });
    expect(r.risks).toContain('hidden_input');
    expect(r.resources).toEqual(['arn:aws:s3:::b/k']);
    expect(refusal(['s3api', 'head-object', '--cli-input-yaml', 'Bucket: b'], v1).message).toMatch(/only in AWS CLI v2/);
  });

  it('v2 loads file:// for every argument (v1 passes some literally): the file is a local read on v2 only', () => {
    const argv = ['sqs', 'get-queue-attributes', '--queue-url', 'file:///tmp/q'];
    const queueInFile = { readFile: () => Buffer.from('https://sqs.us-east-1.amazonaws.com/111122223333/q') };
    const onV2 = parseInvocation(argv, { ...v2, ...queueInFile });
    expect(onV2.risks).toContain('local_file_read');
    expect(onV2.resources).toEqual(['arn:aws:sqs:us-east-1:111122223333:q']);
    // v1 sends `file:///tmp/q` itself as the queue URL: no queue can be read from it, so it is refused (§5.3).
    expect(refusal(argv, { ...v1, ...queueInFile }).details.reason).toBe('unreadable_identifier');
  });

  it('an http(s) value is sent as written on v2, which never fetches URLs; v1 would fetch it, so it is refused there', () => {
    // Found by the generated corpus (test/invocation/coverage.test.ts): every `sqs … --queue-url https://…` was refused
    // on v2, whose table does not mark the URL members literal (v2 has no remote prefixes to disable).
    const send = ['sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', 'x'];
    expect(parseInvocation(send, v2).resources).toEqual(['arn:aws:sqs:us-east-1:111122223333:q']);
    const oidc = ['iam', 'create-open-id-connect-provider', '--url', 'https://token.example.com'];
    expect(parseInvocation(oidc, v2).params).toMatchObject({ Url: 'https://token.example.com' });
    const publish = ['sns', 'publish', '--topic-arn', 'arn:aws:sns:us-east-1:111122223333:t', '--message', 'https://example.com/m'];
    expect(parseInvocation(publish, v2).params).toMatchObject({ Message: 'https://example.com/m' });
    expect(refusal(publish, v1).message).toMatch(/the CLI would fetch it/);
  });

  it('ddb put and select are the DynamoDB calls they make, on the one table', () => {
    expect(actionsOf(['ddb', 'put', 'T', '[{k: 1}, {k: 2}]'])).toEqual([
      'dynamodb:BatchWriteItem arn:aws:dynamodb:us-east-1:111122223333:table/T',
      'dynamodb:PutItem arn:aws:dynamodb:us-east-1:111122223333:table/T',
    ]);
    expect(actionsOf(['ddb', 'put', 'T', '{k: 1}', '--condition', 'attribute_not_exists(k)'])).toEqual(['dynamodb:PutItem arn:aws:dynamodb:us-east-1:111122223333:table/T']);
    expect(parseInvocation(['ddb', 'put', 'T', '{k: 1}'], v2).risks).toContain('write');
    expect(refusal(['ddb', 'put', 'T', 'file:///etc/passwd'], v2).message).toMatch(/file:\/\/ are not supported/);
    expect(actionsOf(['ddb', 'select', 'T'])).toEqual(['dynamodb:Scan arn:aws:dynamodb:us-east-1:111122223333:table/T']);
    expect(actionsOf(['ddb', 'select', 'T', '--key-condition', 'k = :v', '--index-name', 'I'])).toEqual([
      'dynamodb:Query arn:aws:dynamodb:us-east-1:111122223333:table/T,arn:aws:dynamodb:us-east-1:111122223333:table/T/index/I',
    ]);
    expect(refusal(['ddb', 'select', 'T'], v1).details.reason).toBe('v2_only');
  });

  it('configure export-credentials is a credential read; configure sso a credential flow; sso login is refused', () => {
    expect(parseInvocation(['configure', 'export-credentials', '--format', 'env'], v2).risks).toEqual(expect.arrayContaining(['secret_read', 'credential_minting']));
    expect(parseInvocation(['configure', 'sso'], v2).risks).toEqual(expect.arrayContaining(['config_change', 'credential_minting']));
    expect(parseInvocation(['configure', 'list-profiles'], v2).risks).toEqual(['read_only']);
    expect(refusal(['configure', 'export-credentials'], v1).details.reason).toBe('v2_only');
    const sso = refusal(['sso', 'login', '--sso-session', 's'], v2);
    expect(sso.details.reason).toBe('credential_flow');
    expect(refusal(['sso', 'logout'], v2).details.reason).toBe('credential_flow');
  });

  it('s3 cp between buckets on v2 copies tags too (--copy-props), unless told not to', () => {
    expect(actionsOf(['s3', 'cp', 's3://a/k', 's3://b/'])).toEqual([
      's3:GetObject arn:aws:s3:::a/k',
      's3:GetObjectTagging arn:aws:s3:::a/k',
      's3:PutObject arn:aws:s3:::b/k',
      's3:PutObjectTagging arn:aws:s3:::b/k',
    ]);
    expect(actionsOf(['s3', 'cp', 's3://a/k', 's3://b/', '--copy-props', 'none'])).toEqual(['s3:GetObject arn:aws:s3:::a/k', 's3:PutObject arn:aws:s3:::b/k']);
    expect(actionsOf(['s3', 'cp', 's3://a/k', 's3://b/'], v1)).toEqual(['s3:GetObject arn:aws:s3:::a/k', 's3:PutObject arn:aws:s3:::b/k']);
    expect(refusal(['s3', 'cp', 's3://a/k', 's3://b/', '--copy-props', 'none'], v1).code).toBe('parse');
  });
});

describe('version skew: a newer minor release than the table', () => {
  it('full option names parse as without skew; any abbreviation is refused, naming the token', () => {
    const full = ['--region', 'eu-west-1', 's3api', 'list-objects-v2', '--bucket', 'b', '--max-items', '5'];
    expect(parseInvocation(full, skew).canonicalArgv).toEqual(parseInvocation(full, v2).canonicalArgv);
    expect(parseInvocation(['s3api', 'put-object', '--bucket=b', '--key', 'k'], skew).params).toMatchObject({ Bucket: 'b' });
    for (const [argv, token] of [
      [['s3api', 'list-objects-v2', '--buck', 'b'], '--buck'],
      [['--reg', 'eu-west-1', 'sts', 'get-caller-identity'], '--reg'],
      [['s3', 'cp', 'a', 's3://b/k', '--qui'], '--qui'],
      [['s3api', 'list-objects-v2', '--buck=b'], '--buck'],
    ] as const) {
      const e = refusal([...argv], skew);
      expect(e.details).toMatchObject({ reason: 'abbreviation_under_version_skew', token });
      expect(e.message).toMatch(/write the option in full/);
      // Without skew the same abbreviation is expanded.
      expect(() => parseInvocation([...argv], v2)).not.toThrow();
    }
  });

  it('the rule: same major picks the table; older minor and unknown majors are refused (exit 78)', () => {
    const tables = { '1': '1.45.11', '2': '2.9.19' };
    expect(cliRelease('2.9.0', tables)).toEqual({ version: '2.9.0', table: 'v2', tableVersion: '2.9.19', exactOptionNames: false });
    expect(cliRelease('2.31.4', tables)).toMatchObject({ table: 'v2', exactOptionNames: true });
    expect(cliRelease('1.45.40', tables)).toMatchObject({ table: 'v1', exactOptionNames: false });
    for (const v of ['2.8.9', '1.44.0', '3.0.0', '0.9.0']) {
      const e = (() => {
        try {
          cliRelease(v, tables);
        } catch (err) {
          return err as GuardError;
        }
        throw new Error(`accepted ${v}`);
      })();
      expect(e.exitCode).toBe(78);
    }
  });
});

describe('the grant names the table the broker decided with', () => {
  it('runs only when it is the table of the major release that runs; a missing or other-major table is refused (78)', () => {
    expect(() => assertGrantTable('2.9.19', '2.31.4')).not.toThrow();
    expect(() => assertGrantTable('1.45.11', '1.45.11')).not.toThrow();
    for (const [table, version] of [
      ['1.45.11', '2.9.19'], // an older broker that knows only v1, deciding for a v2 client
      ['2.9.19', '1.45.11'],
      [undefined, '2.9.19'], // a grant that does not say which table decided
      ['', '1.45.11'],
    ] as const) {
      let caught: unknown;
      try {
        assertGrantTable(table, version);
      } catch (e) {
        caught = e;
      }
      expect(caught, `${table} for ${version}`).toBeInstanceOf(GuardError);
      expect((caught as GuardError).exitCode).toBe(78);
    }
  });
});
