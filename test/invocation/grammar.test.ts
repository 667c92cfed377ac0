/**
 * Every bypass-relevant parse rule, each with an attempt to break it (docs/aws-cli-parsing.md §2.3–§2.5, §6.1). Files are read
 * through ctx.readFile with fixture contents (no real home directory is touched).
 */
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { InvocationContext } from '../../src/invocation/types.js';

const read: string[] = [];
const FILES: Record<string, string> = {
  '/home/agent/.aws/credentials': '[default]\naws_secret_access_key = wJalrEXAMPLE\n',
  '/work/project/input.json': '{"Bucket":"hidden-bucket","Prefix":"secrets/"}',
  '/work/project/body.txt': 'hello',
  '/work/project/tags.json': '{"k":"v"}',
};
const ctx: InvocationContext = {
  account: '111122223333',
  region: 'us-east-1',
  cwd: '/work/project',
  env: { HOME: '/home/agent', DATA: '/work/project' },
  readFile: (p) => {
    read.push(p);
    if (FILES[p] === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return Buffer.from(FILES[p]!);
  },
};
const parse = (...argv: string[]) => parseInvocation(argv, ctx);

function parseErr(...argv: string[]): GuardError {
  try {
    parse(...argv);
  } catch (e) {
    expect(e).toBeInstanceOf(GuardError);
    expect((e as GuardError).code).toBe('parse');
    expect((e as GuardError).exitCode).toBe(64);
    expect((e as GuardError).message).not.toMatch(/\n/);
    return e as GuardError;
  }
  throw new Error(`expected a parse error for ${argv.join(' ')}`);
}

describe('abbreviations are canonicalised, never misread', () => {
  it('--endp anywhere is --endpoint-url (endpoint_override)', () => {
    for (const argv of [
      ['--endp', 'http://evil', 's3', 'ls'],
      ['s3', '--endp', 'http://evil', 'ls'],
      ['s3', 'ls', '--endp', 'http://evil'],
      ['s3api', 'list-buckets', '--endpoint=http://evil'],
    ]) {
      const r = parse(...argv);
      expect(r.globals['endpoint-url']).toBe('http://evil');
      expect(r.risks).toContain('endpoint_override');
      expect(r.canonicalArgv.slice(0, 2)).toEqual(['--endpoint-url', 'http://evil']);
      expect(r.canonicalArgv.some((t) => t.startsWith('--endp') && !t.startsWith('--endpoint-url'))).toBe(false);
    }
  });
  it('--prof and a bare --p after the operation are --profile (credential_override)', () => {
    expect(parse('--prof', 'x', 'sts', 'get-caller-identity').globals.profile).toBe('x');
    const r = parse('s3api', 'list-objects-v2', '--bucket', 'b', '--p', 'other');
    expect(r.globals.profile).toBe('other');
    expect(r.risks).toContain('credential_override');
    expect(r.canonicalArgv).toEqual(['--profile', 'other', 's3api', 'list-objects-v2', '--bucket', 'b']);
    // --pre is not a global prefix: it is the operation's --prefix
    expect(parse('s3api', 'list-objects-v2', '--bucket', 'b', '--pre', 'x/').params.Prefix).toBe('x/');
  });
  it('operation argument prefixes are expanded', () => {
    const r = parse('s3api', 'list-objects-v2', '--buck', 'example-bucket');
    expect(r.params.Bucket).toBe('example-bucket');
    expect(r.canonicalArgv).toEqual(['s3api', 'list-objects-v2', '--bucket', 'example-bucket']);
    // a value that looks like an option keeps the --name=value form
    expect(parse('s3api', 'list-objects-v2', '--buck=-dash').canonicalArgv).toEqual(['s3api', 'list-objects-v2', '--bucket=-dash']);
  });
  it('ambiguous prefixes are refused, at the top level and for operations', () => {
    expect(parseErr('--c', 'on', 's3', 'ls').message).toMatch(/ambiguous option "--c"/);
    expect(parseErr('s3', 'ls', '--no-', 'x').message).toMatch(/ambiguous/);
    expect(parseErr('s3api', 'list-objects-v2', '--bucket', 'b', '--s', 'x').message).toMatch(/ambiguous option "--s".*--start-after/);
  });
  it('single-dash and unknown options are refused', () => {
    expect(parseErr('s3api', 'list-objects-v2', '-b', 'x').message).toMatch(/token 2 "-b"/);
    expect(parseErr('s3api', 'list-objects-v2', '--Bucket', 'x').message).toMatch(/token 2 "--Bucket"/);
  });
});

describe('option syntax', () => {
  it('"--" is refused anywhere', () => {
    expect(parseErr('--', 's3', 'ls').message).toMatch(/token 0/);
    expect(parseErr('sts', 'get-caller-identity', '--', '--endpoint-url', 'x').message).toMatch(/token 2/);
  });
  it('--opt=value works for globals and operation args, and is refused for flags', () => {
    const r = parse('ec2', 'describe-instances', '--region=ap-southeast-2', '--output', 'json', '--no-paginate');
    expect(r.region).toBe('ap-southeast-2');
    expect(r.globals).toMatchObject({ region: 'ap-southeast-2', output: 'json', 'no-paginate': true });
    expect(parse('s3api', 'list-objects-v2', '--bucket=a=b').params.Bucket).toBe('a=b');
    parseErr('s3api', 'list-buckets', '--no-paginate=yes');
    parseErr('ec2', 'describe-instances', '--dry-run=true');
  });
  it('repeated options: the last one wins, and only it reaches the canonical argv', () => {
    const r = parse('s3api', 'list-objects-v2', '--bucket', 'allowed-bucket', '--bucket', 'forbidden-bucket');
    expect(r.resources).toEqual(['arn:aws:s3:::forbidden-bucket']);
    expect(r.canonicalArgv).toEqual(['s3api', 'list-objects-v2', '--bucket', 'forbidden-bucket']);
    expect(parse('ec2', 'terminate-instances', '--instance-ids', 'i-1', '--instance-ids', 'i-2').resources).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-2',
    ]);
    expect(parse('--region', 'us-west-2', 's3', 'ls', '--region', 'eu-west-1').region).toBe('eu-west-1');
    // boolean pairs share one destination: the later flag wins
    expect(parse('ec2', 'describe-instances', '--dry-run', '--no-dry-run').params.DryRun).toBe(false);
  });
  it('globals are recognised in every position', () => {
    for (const argv of [
      ['--region', 'us-west-2', 's3api', 'list-objects-v2', '--bucket', 'b'],
      ['s3api', '--region', 'us-west-2', 'list-objects-v2', '--bucket', 'b'],
      ['s3api', 'list-objects-v2', '--region', 'us-west-2', '--bucket', 'b'],
      ['s3api', 'list-objects-v2', '--bucket', 'b', '--region', 'us-west-2'],
    ]) {
      const r = parse(...argv);
      expect(r.region).toBe('us-west-2');
      expect(r.params.Bucket).toBe('b');
    }
  });
  it('a value-taking global consumes the next token even when it is a command name', () => {
    const r = parse('--profile', 's3', 's3', 'ls');
    expect(r.globals.profile).toBe('s3');
    expect(r.command).toBe('s3');
  });
  it('a global hidden where a value was expected is still a global (as argparse reads it)', () => {
    // argparse's top-level parser takes --profile first; --message-body is then left without a value.
    expect(parseErr('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', '--profile', 'x').message).toMatch(/--message-body expects a value/);
  });
  it('negative numbers and values with spaces are values; other dash values are not', () => {
    expect(parse('dynamodb', 'scan', '--table-name', 'T', '--max-items', '-1').resources).toEqual(['arn:aws:dynamodb:us-east-1:111122223333:table/T']);
    expect(parse('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', '-x y').actions).toEqual(['sqs:SendMessage']);
    parseErr('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', '-x');
  });
  it('region values are validated', () => {
    expect(parseErr('--region', 'evil.example.com', 's3', 'ls').message).toMatch(/not a region/);
  });
});

describe('hidden inputs and files', () => {
  it('--cli-input-json file:// hiding a Bucket is read; explicit arguments win', () => {
    const r = parse('s3api', 'list-objects-v2', '--cli-input-json', 'file://input.json');
    expect(r.resources).toEqual(['arn:aws:s3:::hidden-bucket']);
    expect(r.risks).toEqual(expect.arrayContaining(['hidden_input', 'local_file_read']));
    expect(r.files).toContainEqual({ path: '/work/project/input.json', mode: 'read', argument: '--cli-input-json' });
    expect(parse('s3api', 'list-objects-v2', '--bucket', 'visible', '--cli-input-json', 'file://input.json').resources).toEqual(['arn:aws:s3:::visible']);
    expect(parse('s3api', 'list-objects-v2', '--cli-input-json', '{"Bucket":"inline"}').resources).toEqual(['arn:aws:s3:::inline']);
    parseErr('s3api', 'list-objects-v2', '--cli-input-json', 'http://example.com/in.json');
    parseErr('s3api', 'list-objects-v2', '--cli-input-json', '[1]');
  });
  it('--cli-input-yaml is v2 only, and read like JSON there', () => {
    expect(parseErr('s3api', 'list-objects-v2', '--cli-input-yaml', 'Bucket: y').message).toMatch(/only in AWS CLI v2/);
    const v2 = { ...ctx, cliVersion: 'v2' as const };
    const r = parseInvocation(['s3api', 'list-objects-v2', '--cli-input-yaml', 'Bucket: yaml-bucket'], v2);
    expect(r.resources).toEqual(['arn:aws:s3:::yaml-bucket']);
    expect(r.risks).toContain('hidden_input');
    expect(() => parseInvocation(['s3api', 'list-objects-v2', '--cli-input-yaml', 'Bucket: y', '--cli-input-json', '{}'], v2)).toThrow(/only one of/);
  });
  it('file://~/.aws/credentials is a local secret read', () => {
    const r = parse('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/orders', '--message-body', 'file://~/.aws/credentials');
    expect(r.risks).toEqual(expect.arrayContaining(['local_file_read', 'secret_read']));
    expect(r.files[0]!.path).toBe('/home/agent/.aws/credentials');
    expect(r.params.MessageBody).toContain('aws_secret_access_key');
    // $VAR expansion, as os.path.expandvars does
    expect(parse('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', 'file://$DATA/body.txt').params.MessageBody).toBe('hello');
  });
  it('unreadable or unprovided files are parse errors naming the token', () => {
    expect(parseErr('iam', 'put-role-policy', '--role-name', 'r', '--policy-name', 'p', '--policy-document', 'file://missing.json').message).toMatch(/token 6/);
    const broker = { ...ctx, fileContents: { 'input.json': '{"Bucket":"from-client"}' } };
    expect(parseInvocation(['s3api', 'list-objects-v2', '--cli-input-json', 'file://input.json'], broker).resources).toEqual(['arn:aws:s3:::from-client']);
    expect(() => parseInvocation(['s3api', 'list-objects-v2', '--cli-input-json', 'file://other.json'], broker)).toThrow(/not provided/);
  });
  it('http(s):// parameter values are refused, except where the CLI takes URLs literally', () => {
    expect(parseErr('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/orders', '--message-body', 'http://127.0.0.1:9/payload').message).toMatch(/remote parameter value/);
    parseErr('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', 'HTTP://127.0.0.1/x');
    // --queue-url is PARAMFILE_DISABLED in awscli/paramfile.py: the URL is the value
    expect(parse('sqs', 'purge-queue', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/orders').resources).toEqual(['arn:aws:sqs:us-east-1:111122223333:orders']);
    parseErr('sqs', 'send-message', '--queue-url', 'https://sqs.us-east-1.amazonaws.com/111122223333/q', '--message-body', 'FILE://x');
  });
  it('URL arguments PARAMFILE_DISABLED names under the aliased event name are literal too (ses, apigateway, sagemaker)', () => {
    // v1 matches PARAMFILE_DISABLED against the event name after botocore's EventAliaser renamed the service
    // (`email` → `ses`, `apigateway` → `api-gateway`, `api.sagemaker` → `sagemaker`): these URLs are values, not
    // fetched, and a table built from the endpoint prefix refused them as remote parameter values.
    const ses = parse('ses', 'create-custom-verification-email-template', '--template-name', 't', '--from-email-address', 'a@example.com',
      '--template-subject', 's', '--template-content', 'c', '--success-redirection-url', 'https://example.com/ok', '--failure-redirection-url', 'https://example.com/no');
    expect(ses.params).toMatchObject({ SuccessRedirectionURL: 'https://example.com/ok', FailureRedirectionURL: 'https://example.com/no' });
    expect(parse('sesv2', 'put-account-details', '--mail-type', 'MARKETING', '--website-url', 'https://example.com', '--use-case-description', 'u').params.WebsiteURL).toBe('https://example.com');
    expect(parse('apigateway', 'put-integration', '--rest-api-id', 'a1', '--resource-id', 'r1', '--http-method', 'GET', '--type', 'HTTP', '--integration-http-method', 'GET',
      '--uri', 'https://backend.example.com/x').params.uri).toBe('https://backend.example.com/x');
    expect(parse('sagemaker', 'create-notebook-instance', '--notebook-instance-name', 'n', '--instance-type', 'ml.t3.medium', '--role-arn', 'arn:aws:iam::111122223333:role/r',
      '--default-code-repository', 'https://git.example.com/repo.git').params.DefaultCodeRepository).toBe('https://git.example.com/repo.git');
    // An argument outside the list still may not name a URL the CLI would fetch.
    expect(parseErr('ses', 'create-custom-verification-email-template', '--template-name', 't', '--from-email-address', 'a@example.com',
      '--template-subject', 'https://example.com/s', '--template-content', 'c', '--success-redirection-url', 'https://example.com/ok', '--failure-redirection-url', 'https://example.com/no').message).toMatch(/remote parameter value/);
  });
  it('--max-items is the API member where the operation has one, the paginator\'s limit elsewhere', () => {
    // waf get-sampled-requests has no paginator: MaxItems is a required request member (botocore model).
    const waf = parse('wafv2', 'get-sampled-requests', '--web-acl-arn', 'arn:aws:wafv2:us-east-1:111122223333:regional/webacl/w/1', '--rule-metric-name', 'm',
      '--scope', 'REGIONAL', '--time-window', 'StartTime=2026-11-01T00:00:00Z,EndTime=2026-11-01T01:00:00Z', '--max-items', '100');
    expect(waf.params.MaxItems).toBe(100);
    expect(parse('route53', 'list-hosted-zones-by-name', '--max-items', '5').params.MaxItems).toBe('5');
    // On a paginated operation it stays the CLI's own argument and never reaches the request.
    expect(parse('s3api', 'list-objects-v2', '--bucket', 'b', '--max-items', '5').params).not.toHaveProperty('MaxItems');
  });
  it('shorthand key@=file:// loads the file', () => {
    const r = parse('ssm', 'put-parameter', '--cli-input-json', '{"Name":"n","Value":"v","Type":"String"}', '--tags', 'Key=a,Value@=file://body.txt');
    expect(r.files.map((f) => f.path)).toContain('/work/project/body.txt');
    expect(r.params.Tags).toEqual([{ Key: 'a', Value: 'hello' }]);
  });
  it('streaming blobs and outfiles are local file reads and writes', () => {
    expect(parse('s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--body', '/etc/passwd').files).toContainEqual({ path: '/etc/passwd', mode: 'read', argument: '--body' });
    expect(parse('s3api', 'get-object', '--bucket', 'b', '--key', 'k', 'out.txt').files).toEqual([{ path: '/work/project/out.txt', mode: 'write', argument: 'outfile' }]);
    expect(parse('s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--body', '~/.ssh/id_rsa').risks).toEqual(expect.arrayContaining(['local_file_read', 'secret_read']));
  });
});

describe('commands', () => {
  it('unknown commands and aliases are refused', () => {
    expect(parseErr('myalias', 'run').message).toMatch(/token 0 "myalias"/);
    expect(parseErr('s3api', 'list-objectz').message).toMatch(/unknown operation at token 1/);
    expect(parseErr('logs', 'tail', '/aws/lambda/x').message).toMatch(/exists only in AWS CLI v2/); // v1 has no logs tail
    expect(parseInvocation(['logs', 'tail', '/aws/lambda/x', '--follow'], { ...ctx, cliVersion: 'v2' }).actions).toEqual(['logs:FilterLogEvents']);
  });
  it('configure and history are local; set changes config, get of a secret reads one', () => {
    const set = parse('configure', 'set', 'region', 'eu-west-1');
    expect(set.kind).toBe('local');
    expect(set.actions).toEqual([]);
    expect(set.risks).toContain('config_change');
    expect(parse('configure', 'set', 'default.endpoint_url', 'http://evil').risks).toContain('config_change');
    expect(parse('configure', 'get', 'aws_secret_access_key').risks).toContain('secret_read');
    expect(parse('configure').risks).toContain('config_change');
    expect(parse('history', 'list').risks).toContain('secret_read');
    // v2-only configure subcommands: unknown on v1, local with their risks on v2
    parseErr('configure', 'export-credentials');
    const exp = parseInvocation(['configure', 'export-credentials', '--format', 'env'], { ...ctx, cliVersion: 'v2' });
    expect(exp.kind).toBe('local');
    expect(exp.risks).toEqual(expect.arrayContaining(['secret_read', 'credential_minting']));
  });
  it('help, --version and --generate-cli-skeleton make no API call', () => {
    for (const argv of [['help'], ['s3', 'help'], ['s3', 'ls', 'help'], ['ec2', 'describe-instances', 'help'], ['--version'], ['s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--generate-cli-skeleton'], ['ec2', 'wait', 'help']]) {
      const r = parse(...argv);
      expect(r.kind).toBe('no_api_call');
      expect(r.actions).toEqual([]);
    }
  });
  it('stray positionals are refused', () => {
    expect(parseErr('s3api', 'list-buckets', 'extra').message).toMatch(/token 2 "extra"/);
  });
  it('--debug discloses the session token; --no-sign-request and --ca-bundle are overrides', () => {
    expect(parse('--debug', 'sts', 'get-caller-identity').risks).toContain('secret_read');
    expect(parse('s3', 'cp', 'body.txt', 's3://b/', '--no-sign-request').risks).toContain('credential_override');
    expect(parse('s3api', 'list-buckets', '--ca-bundle', '/tmp/ca.pem', '--no-verify-ssl').risks).toContain('endpoint_override');
  });
});
