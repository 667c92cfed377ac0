/**
 * Differential test against the REAL installed AWS CLI v1 and v2 (no mocks; each read with its own table): each argv goes through the CLI's own
 * driver in-process (test/invocation/real-cli-probe.py records the first API call and aborts it, so nothing
 * is sent). Whenever the real CLI would call AWS, guard-aws must either refuse the argv or have predicted the
 * same operation, the same top-level parameters and the same region/profile/endpoint. And guard-aws's
 * canonical argv must make the real CLI send exactly what the original argv would.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { ParsedInvocation } from '../../src/invocation/types.js';
import { testClis, type TestCli } from '../helpers/aws.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const work = mkdtempSync(join(tmpdir(), 'guard-real-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

mkdirSync(join(work, '.aws'));
writeFileSync(join(work, '.aws/credentials'), '[default]\naws_access_key_id = AKIAFILEEXAMPLE\naws_secret_access_key = x\n');
writeFileSync(join(work, 'input.json'), '{"Bucket":"hidden-bucket","Prefix":"secrets/"}');
writeFileSync(join(work, 'policy.json'), '{"Version":"2012-10-17","Statement":[]}');
writeFileSync(join(work, 'body.txt'), 'hello');

/** The Python the CLI runs on (v1: pyenv's; v2: Debian's package is a Python script as well). */
function python(cli: TestCli): string {
  const first = readFileSync(cli.path, 'utf8').split('\n')[0]!;
  return first.startsWith('#!') ? first.slice(2).trim() : 'python3';
}

interface RealResult {
  rc: unknown;
  calls: { operation: string; params: Record<string, unknown> }[];
  globals: Record<string, unknown> | null;
}

function runReal(argvs: string[][], cli: TestCli): RealResult[] {
  const out = join(work, 'probe-result.json');
  const r = spawnSync(python(cli), [join(here, 'real-cli-probe.py'), out], {
    input: JSON.stringify(argvs),
    cwd: work,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: {
      PATH: '/usr/bin:/bin',
      HOME: work,
      AWS_ACCESS_KEY_ID: 'AKIABROKEREXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: join(work, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, '.aws/credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      PAGER: 'cat',
      AWS_PAGER: '',
    },
  });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8')) as RealResult[];
}

/**
 * The guard does not coerce shorthand scalars by the model (botocore does: "22" → 22, a single value for a
 * list member → [value]); identifiers are read the same either way. Compare modulo that coercion only.
 */
function loose(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 1 ? loose(v[0]) : v.map(loose);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, loose(x)]));
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return v;
}

const ctx = { account: '111122223333', region: 'us-east-1', cwd: work, env: { HOME: work } };
function ours(argv: string[], cli: TestCli): ParsedInvocation | GuardError {
  try {
    return parseInvocation(argv, { ...ctx, cliVersion: cli.name });
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
}

const corpus: string[][] = readFileSync(resolve(repoRoot, '../shared/corpus/cli-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l).argv as string[])
  .filter((a) => a[0] !== 'configure'); // writes the config file; local, covered elsewhere

const EDGE: string[][] = [
  ['s3api', 'list-objects-v2', '--buck', 'b', '--pre', 'x/'],
  ['s3api', 'list-objects-v2', '--bucket', 'a', '--bucket', 'b', '--reg', 'eu-west-1'],
  ['s3api', 'list-objects-v2', '--bucket=b', '--region=eu-west-2'],
  ['s3api', '--region', 'us-west-2', 'list-objects-v2', '--bucket', 'b', '--output', 'text'],
  ['s3api', 'list-objects-v2', '--bucket', 'b', '--endp', 'http://127.0.0.1:1'],
  ['ec2', 'describe-instances', '--instance-ids', 'i-1', 'i-2', '--instance-ids', 'i-3'],
  ['ec2', 'describe-instances', '--dry-run', '--no-dry-run'],
  ['ec2', 'describe-instances', '--filters', 'Name=tag:a,Values=b,c', 'Name=x,Values=y'],
  ['ec2', 'authorize-security-group-ingress', '--group-id', 'sg-1', '--protocol', 'tcp', '--port', '22', '--cidr', '0.0.0.0/0'],
  ['sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', 'file://body.txt'],
  ['sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', '-5'],
  ['s3api', 'list-objects-v2', '--cli-input-json', 'file://input.json', '--bucket', 'visible'],
  ['dynamodb', 'get-item', '--table-name', 'T', '--key', '{"pk":{"S":"a"}}'],
  ['iam', 'get-role', '--role-name', 'r', '--q', 'Role.Arn'],
  ['s3api', 'list-buckets', '--no-paginate', '--output', 'json'],
  ['lambda', 'invoke', '--function-name', 'f', 'out.json'],
  ['s3api', 'get-object', '--bucket', 'b', '--key', 'k', 'o.txt', '--version-id', 'v'],
  ['kms', 'decrypt', '--ciphertext-blob', 'fileb://body.txt'],
  ['ssm', 'get-parameters', '--names', 'a', 'b', '--with-decryption'],
  ['--profile', 's3', 's3', 'ls'],
  ['s3api', 'list-objects-v2', '--bucket', 'b', '--max-items', '-1'],
  ['s3api', 'list-objects-v2', '--cli-input-j', '{"Bucket":"x"}'],
  ['s3api', 'list-objects-v2', '--bucket=-dash', '--prefix=a=b'],
  ['s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--body', 'body.txt', '--acl', 'public-read'],
  ['ec2', 'revoke-security-group-egress', '--group-id', 'sg-1', '--protocol', 'all', '--cidr', '::/0'],
  ['sts', 'get-caller-identity', '--region', 'eu-central-1', '--debug'],
  ['dynamodb', 'transact-write-items', '--transact-items', '[{"Put":{"TableName":"T","Item":{"pk":{"S":"a"}}}}]'],
  ['iam', 'put-role-policy', '--role-name', 'r', '--policy-name', 'p', '--policy-document', 'file://policy.json'],
  ['s3', 'ls', '--recursive', 's3://b/p/'],
  ['s3', 'cp', '--recursive', 's3://a/x/', 's3://b/y/', '--exclude', '*.tmp'],
  ['s3', 'rm', 's3://b/p/', '--rec'],
  ['ec2', 'wait', 'instance-running', '--instance-ids', 'i-1', '--reg', 'eu-west-1'],
  // URL arguments v1 takes literally under botocore's aliased event names, and --max-items as an API member
  ['ses', 'create-custom-verification-email-template', '--template-name', 't', '--from-email-address', 'a@example.com', '--template-subject', 's',
    '--template-content', 'c', '--success-redirection-url', 'https://example.com/ok', '--failure-redirection-url', 'https://example.com/no'],
  ['apigateway', 'put-integration', '--rest-api-id', 'a1', '--resource-id', 'r1', '--http-method', 'GET', '--type', 'HTTP', '--integration-http-method', 'GET', '--uri', 'https://backend.example.com/x'],
  ['wafv2', 'get-sampled-requests', '--web-acl-arn', 'arn:aws:wafv2:us-east-1:111122223333:regional/webacl/w/1', '--rule-metric-name', 'm', '--scope', 'REGIONAL',
    '--time-window', 'StartTime=2026-11-01T00:00:00Z,EndTime=2026-11-01T01:00:00Z', '--max-items', '100'],
  ['route53', 'list-hosted-zones-by-name', '--max-items', '5'],
];

/** v2-only spellings, read with the v2 table and by the v2 CLI. */
const EDGE_V2: string[][] = [
  ['--cli-binary-format', 'raw-in-base64-out', 'lambda', 'invoke', '--function-name', 'f', '--payload', '{"a":1}', 'out.json'],
  ['--no-cli-pager', 's3api', 'list-objects-v2', '--bucket', 'b'],
  ['s3api', 'list-objects-v2', '--cli-input-yaml', 'Bucket: hidden-bucket\nPrefix: p/', '--bucket', 'visible'],
  ['sqs', 'send-message', '--queue-url', 'file://body.txt', '--message-body', 'x'],
  ['ddb', 'select', 'T'],
];

describe.each(testClis())('differential test against the real AWS CLI $name', (cli) => {
  const argvs = [...corpus, ...EDGE, ...(cli.major === 2 ? EDGE_V2 : [])];
  const parsed = argvs.map((argv) => ours(argv, cli));
  const canonical = parsed.map((p, i) => (p instanceof GuardError || (p.kind !== 'api' && p.kind !== 'custom') ? argvs[i]! : p.canonicalArgv));
  const real = runReal([...argvs, ...canonical], cli);

  it('predicts every call the real CLI would make, or refuses the argv', () => {
    // the probe really ran the CLI: most argvs reach an API call
    expect(real.slice(0, argvs.length).filter((r) => r.calls.length).length).toBeGreaterThan(argvs.length / 2);
    const problems: string[] = [];
    argvs.forEach((argv, i) => {
      const r = real[i]!;
      const p = parsed[i]!;
      const call = r.calls[0];
      if (!call || p instanceof GuardError) return; // no call, or guard refuses (fail closed)
      if (p.kind !== 'api') return; // customizations make several calls; covered by their own tests
      const label = argv.join(' ');
      if (p.operation !== call.operation) problems.push(`${label}: operation ${p.operation} != real ${call.operation}`);
      for (const [k, v] of Object.entries(call.params)) {
        if (!(k in p.params)) {
          problems.push(`${label}: real CLI sends ${k}, guard did not see it`);
          continue;
        }
        const mine = p.params[k];
        // streaming blobs: the CLI passes an open file, the guard records the path
        if (typeof v === 'string' && v.startsWith('<_io.')) continue;
        // blobs: the guard keeps fileb:// content base64-encoded
        if (typeof v === 'string' && typeof mine === 'string' && Buffer.from(mine, 'base64').toString() === v) continue;
        if (JSON.stringify(loose(mine)) !== JSON.stringify(loose(v))) problems.push(`${label}: param ${k}=${JSON.stringify(mine)} != real ${JSON.stringify(v)}`);
      }
      const g = r.globals ?? {};
      if ((g.region ?? 'us-east-1') !== p.region) problems.push(`${label}: region ${p.region} != real ${String(g.region)}`);
      if ((g.profile ?? undefined) !== p.globals.profile) problems.push(`${label}: profile differs`);
      if ((g.endpoint_url ?? undefined) !== p.globals['endpoint-url']) problems.push(`${label}: endpoint differs`);
    });
    for (const m of problems) console.log(`DIFF ${m}`);
    expect(problems).toEqual([]);
  });

  it("the canonical argv makes the real CLI send exactly what the original would", () => {
    const problems: string[] = [];
    argvs.forEach((argv, i) => {
      const a = real[i]!;
      const b = real[argvs.length + i]!;
      const p = parsed[i]!;
      // An argv the real CLI rejects (e.g. `--cli-input-j` leaves --bucket "required") may work once
      // canonical: then it must make exactly the call the guard decided on.
      if (!a.calls.length && b.calls.length && !(p instanceof GuardError)) {
        if (b.calls[0]!.operation !== p.operation) problems.push(`${argv.join(' ')}: canonical form calls ${b.calls[0]!.operation}, guard decided ${p.operation}`);
        return;
      }
      // `logs tail --since` (v2) turns a duration into a start time from the clock: equal up to the run's delay.
      const clockless = (calls: RealResult['calls']) => JSON.stringify(calls, (k, v) => (k === 'startTime' ? 'now-relative' : v));
      if (clockless(a.calls) !== clockless(b.calls) || JSON.stringify(a.globals) !== JSON.stringify(b.globals)) {
        problems.push(`${argv.join(' ')} -> ${canonical[i]!.join(' ')}: ${JSON.stringify([a.calls, a.globals])} != ${JSON.stringify([b.calls, b.globals])}`);
      }
    });
    for (const m of problems) console.log(`CANON ${m}`);
    expect(problems).toEqual([]);
  });
});
