import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_TOTAL_CHARS, MAX_VALUE_CHARS, shownParameters } from '../../src/approvals/parameters.js';
import { parameterLines, renderApproval } from '../../src/approvals/render.js';
import { slackMessage, webhookBody } from '../../src/approvals/webhook.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { alice, approveDecision, newService } from './fixtures.js';

// What approvers are shown of a call: the real parser's decoded parameters (file contents given as the broker
// gets them, in `fileContents`), rendered as `approvals show` and the Slack webhook render them.
const BOOT = '#!/bin/bash\nyum install -y nginx\nexport AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n';
const ctx = {
  account: '123456789012',
  region: 'us-east-1',
  cwd: '/work',
  fileContents: {
    '/work/boot.sh': BOOT,
    '/work/db.json': JSON.stringify({ DBInstanceIdentifier: 'orders', Engine: 'postgres', MasterUsername: 'admin', MasterUserPassword: 'hunter2-hunter2' }),
  },
};
const parse = (argv: string[]) => parseInvocation(argv, ctx);
const byName = (argv: string[]) => Object.fromEntries(shownParameters(parse(argv)).map((p) => [p.name, p]));

describe('decoded parameters for approvers', () => {
  it('run-instances --user-data file://: the script as the instance gets it, its source, secrets inside masked', async () => {
    const p = byName(['ec2', 'run-instances', '--image-id', 'ami-12c6146b', '--user-data', 'file://boot.sh']);
    expect(p.UserData).toMatchObject({ source: 'file /work/boot.sh', secretsMasked: true, bytes: Buffer.byteLength(BOOT) });
    expect(p.UserData!.value).toBe('#!/bin/bash\nyum install -y nginx\nexport AWS_SECRET_ACCESS_KEY=<masked>\n');
    expect(p.UserData!.masked).toBeUndefined();
    // Pinned to the whole file: sha256 of what the file holds (sha256sum boot.sh).
    expect(p.UserData!.sha256).toBe(createHash('sha256').update(BOOT).digest('hex'));
  });

  it("a launch template's base64 UserData is decoded (gzip too); the structure itself is shown as JSON", async () => {
    const script = '#cloud-config\nruncmd:\n  - curl https://example.test/x | sh\n';
    const plain = byName(['ec2', 'create-launch-template', '--launch-template-name', 'web', '--launch-template-data', JSON.stringify({ ImageId: 'ami-1', UserData: Buffer.from(script).toString('base64') })]);
    expect(plain['LaunchTemplateData.UserData']).toMatchObject({ value: script, encoding: 'base64, decoded' });
    expect(JSON.parse(plain.LaunchTemplateData!.value)).toMatchObject({ ImageId: 'ami-1' });
    const zipped = byName(['ec2', 'create-launch-template', '--launch-template-name', 'web', '--launch-template-data', JSON.stringify({ UserData: gzipSync(script).toString('base64') })]);
    expect(zipped['LaunchTemplateData.UserData']).toMatchObject({ value: script, encoding: 'base64 and gzip, decoded' });
  });

  it('binary content is described, not dumped', async () => {
    const p = byName(['ec2', 'create-launch-template', '--launch-template-name', 'web', '--launch-template-data', JSON.stringify({ UserData: Buffer.from([0xff, 0xfe, 0, 1, 2]).toString('base64') })]);
    expect(p['LaunchTemplateData.UserData']).toMatchObject({ value: '(binary, 5 bytes)', encoding: 'base64, decoded: binary', bytes: 5 });
  });

  it('--cli-input-json members are shown with their source; a secret-typed member is masked whatever its source', async () => {
    const p = byName(['rds', 'create-db-instance', '--cli-input-json', 'file://db.json', '--db-instance-class', 'db.t3.micro']);
    expect(p.DBInstanceIdentifier).toMatchObject({ value: 'orders', source: '--cli-input-json (file /work/db.json)' });
    expect(p.MasterUserPassword).toMatchObject({ value: '<masked>', masked: true, source: '--cli-input-json (file /work/db.json)' });
    expect(p.DBInstanceClass).toMatchObject({ value: 'db.t3.micro' });
    expect(p.DBInstanceClass!.source).toBeUndefined();
    expect(JSON.stringify(p)).not.toContain('hunter2');
  });

  it('a password given in the argv is masked too, and so are secret keys inside a structure', async () => {
    const p = byName(['rds', 'create-db-instance', '--db-instance-identifier', 'x', '--db-instance-class', 'db.t3.micro', '--engine', 'mysql', '--master-user-password', 'hunter2-hunter2']);
    expect(p.MasterUserPassword).toMatchObject({ value: '<masked>', masked: true });
    const auth = byName(['cognito-idp', 'initiate-auth', '--client-id', 'c', '--auth-flow', 'USER_PASSWORD_AUTH', '--auth-parameters', 'USERNAME=u,PASSWORD=pw-secret-1']);
    expect(JSON.stringify(auth)).not.toContain('pw-secret-1');
  });

  it('long values are cut with a marker and pinned by size and hash; the total is bounded', async () => {
    const long = 'a'.repeat(MAX_VALUE_CHARS * 3);
    const p = byName(['ec2', 'run-instances', '--image-id', 'ami-1', '--user-data', long]);
    expect(p.UserData).toMatchObject({ truncated: true, bytes: long.length, sha256: createHash('sha256').update(long).digest('hex') });
    expect(p.UserData!.value).toHaveLength(MAX_VALUE_CHARS);
    const lines = parameterLines(Object.values(p));
    expect(lines.join('\n')).toContain(`… cut: the first ${MAX_VALUE_CHARS} characters of ${long.length} bytes are shown; the whole value has sha256 ${p.UserData!.sha256}`);
    // Six long members: each is cut at MAX_VALUE_CHARS, all of them together at MAX_TOTAL_CHARS; the ones past
    // the total are listed, cut to nothing, still with size and hash.
    const params = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`Member${i}`, `${i}`.repeat(MAX_VALUE_CHARS + 10)]));
    const all = shownParameters({ params, operation: 'Anything', files: [], canonicalArgv: [] });
    expect(all).toHaveLength(6);
    expect(all.every((x) => x.truncated && x.bytes === MAX_VALUE_CHARS + 10)).toBe(true);
    expect(all.reduce((n, x) => n + x.value.length, 0)).toBe(MAX_TOTAL_CHARS);
    expect(all.at(-1)!.value).toBe('');
  });

  it('approvals show and the Slack message show the parameters with control characters made visible', async () => {
    const { service } = await newService();
    const evil = '#!/bin/sh\necho ok\x1b[2J\x1b]52;c;ZXZpbA==\x07\u202eevil\rfake line\n';
    const inv = parse(['ec2', 'run-instances', '--image-id', 'ami-1', '--user-data', evil]);
    const a = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: 'web fleet' });
    expect(a.parameters!.find((p) => p.name === 'UserData')!.value).toBe(evil);
    const text = renderApproval(a, Date.now());
    expect(text).toContain('    │ #!/bin/sh\n    │ echo ok\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\u202eevil\\x0dfake line');
    expect(text).not.toMatch(/[\x1b\x07\r\u202e]/);
    const slack = JSON.stringify(slackMessage({ type: 'approval.requested', deliveryId: 'd', at: a.createdAt, actor: 'alice', approval: a }));
    expect(slack).toContain('echo ok\\\\x1b[2J');
    expect(slack).not.toMatch(/\\u001b|\\u0007|\u202e/);
    // The JSON webhook carries the summary itself, parameters included, exact (JSON escaping makes it safe).
    const json = JSON.parse(webhookBody({ type: 'approval.requested', deliveryId: 'd', at: a.createdAt, actor: 'alice', approval: a }, 'json'));
    expect(json.approval.parameters.find((p: { name: string }) => p.name === 'UserData').value).toBe(evil);
  });

  it("the policies' masking patterns apply to what approvers are shown", async () => {
    const { service } = await newService({ masking: { fields: [], patterns: ['corp-token-[0-9]{4}'] } });
    const inv = parse(['ec2', 'run-instances', '--image-id', 'ami-1', '--user-data', '#!/bin/sh\nTOKEN=corp-token-1234 ./setup\n']);
    const a = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
    expect(a.parameters!.find((p) => p.name === 'UserData')).toMatchObject({ value: '#!/bin/sh\nTOKEN=<masked> ./setup\n', secretsMasked: true });
  });

  it('what is shown is what is bound: a different file content is a different request', async () => {
    const { service } = await newService();
    const open = (content: string) =>
      service.open({
        requester: alice,
        invocation: parseInvocation(['ec2', 'run-instances', '--image-id', 'ami-1', '--user-data', 'file://boot.sh'], { ...ctx, fileContents: { '/work/boot.sh': content } }),
        target: 'prod',
        decision: approveDecision(),
        reason: '',
      });
    const first = await open('#!/bin/sh\necho one\n');
    const again = await open('#!/bin/sh\necho one\n');
    const other = await open('#!/bin/sh\necho two\n');
    expect(again.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    expect(other.bindingHash).not.toBe(first.bindingHash);
    expect(other.parameters!.find((p) => p.name === 'UserData')!.value).toBe('#!/bin/sh\necho two\n');
  });
});
