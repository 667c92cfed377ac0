import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainAwsAt, startStack, type Stack } from './harness.js';

/**
 * Issue 4 through the built CLI on real parts: people logged in through the device flow (the login form over
 * HTTP), approvals asked for by one and decided by another, and the transcripts every run leaves in the broker's
 * signed, chained audit log.
 */
let s: Stack;
/** Each person's access token, one login after another (as before: the IdP's login form, one at a time). */
let t: { alice: string; bob: string; carol: string; dave: string; erin: string };

beforeAll(async () => {
  s = await startStack();
  t = { alice: await s.token('alice'), bob: await s.token('bob'), carol: await s.token('carol'), dave: await s.token('dave'), erin: await s.token('erin') };
}, 180_000);
afterAll(async () => s?.close());

function approvalIdFrom(stderr: string): string {
  const m = /--approval (apr_[A-Za-z0-9_-]+)/.exec(stderr) ?? /(apr_[A-Za-z0-9_-]+)/.exec(stderr);
  if (!m) throw new Error(`no approval id in: ${stderr}`);
  return m[1]!;
}

const bucketExists = (name: string) => plainAwsAt(s, ['s3api', 'head-bucket', '--bucket', name]).status === 0;

describe('approvals', () => {
  it('a CI-style run exits 75, then runs once and only once with --approval after an approver says yes', async () => {
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-doomed']).status).toBe(0);
    const argv = ['s3api', 'delete-bucket', '--bucket', 'e2e-doomed'];
    const first = await s.run(argv, { token: t.alice });
    expect(first.status, first.stderr).toBe(75);
    const id = approvalIdFrom(first.stderr);
    expect(bucketExists('e2e-doomed')).toBe(true);

    // Still pending: re-running with the id waits (not at all here) and exits 75 again.
    expect((await s.run(['--approval', id, ...argv], { token: t.alice })).status).toBe(75);

    const shown = await s.run(['approvals', 'show', id, '--json'], { token: t.bob });
    expect(shown.status, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, status: 'pending', requester: 'alice', rule: 'approve-bucket-delete' });

    const ok = await s.run(['approvals', 'approve', id, '--comment', 'fine', '--yes'], { token: t.bob });
    expect(ok.status, ok.stderr).toBe(0);

    const run = await s.run(['--approval', id, ...argv], { token: t.alice });
    expect(run.status, run.stderr).toBe(0);
    expect(bucketExists('e2e-doomed')).toBe(false);

    // Once only.
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-doomed']).status).toBe(0);
    const again = await s.run(['--approval', id, ...argv], { token: t.alice });
    expect(again.status).toBe(77);
    expect(bucketExists('e2e-doomed')).toBe(true);
  });

  it('refuses self-approval, outsiders, and use for another call, target or person', async () => {
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-keep-a']).status).toBe(0);
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-keep-b']).status).toBe(0);
    // dave is in approvers himself: still cannot approve his own request.
    const mine = await s.run(['s3api', 'delete-bucket', '--bucket', 'e2e-keep-a'], { token: t.dave });
    expect(mine.status).toBe(75);
    const id = approvalIdFrom(mine.stderr);
    const self = await s.run(['approvals', 'approve', id, '--yes'], { token: t.dave });
    expect(self.status).toBe(77);
    expect(self.stderr).toMatch(/own/);
    // erin is not an approver.
    const outsider = await s.run(['approvals', 'approve', id, '--yes'], { token: t.erin });
    expect(outsider.status).toBe(77);
    // bob approves; only dave's exact call may use it.
    expect((await s.run(['approvals', 'approve', id, '--yes'], { token: t.bob })).status).toBe(0);
    const otherCall = await s.run(['--approval', id, 's3api', 'delete-bucket', '--bucket', 'e2e-keep-b'], { token: t.dave });
    expect(otherCall.status).toBe(77);
    const otherPerson = await s.run(['--approval', id, 's3api', 'delete-bucket', '--bucket', 'e2e-keep-a'], { token: t.erin });
    expect(otherPerson.status).toBe(77);
    const otherTarget = await s.run(['--approval', id, '--profile', 'prod', 's3api', 'delete-bucket', '--bucket', 'e2e-keep-a'], {
      token: t.dave,
    });
    expect(otherTarget.status, otherTarget.stderr).toBe(77);
    expect(bucketExists('e2e-keep-a')).toBe(true);
    expect(bucketExists('e2e-keep-b')).toBe(true);
  });

  it('a denial exits 77 with the approver’s comment', async () => {
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-denied']).status).toBe(0);
    const argv = ['s3api', 'delete-bucket', '--bucket', 'e2e-denied'];
    const first = await s.run(argv, { token: t.alice });
    const id = approvalIdFrom(first.stderr);
    const no = await s.run(['approvals', 'deny', id, '--comment', 'not on a Friday', '--yes'], { token: t.bob });
    expect(no.status, no.stderr).toBe(0);
    const run = await s.run(['--approval', id, ...argv], { token: t.alice });
    expect(run.status).toBe(77);
    expect(run.stderr).toMatch(/not on a Friday/);
    expect(bucketExists('e2e-denied')).toBe(true);
  });
});

describe('transcripts', () => {
  it('every run leaves one signed transcript in the chained log, which verifies', async () => {
    const r = await s.run(['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'text'], { token: t.alice });
    expect(r.status, r.stderr).toBe(0);
    const list = await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol });
    expect(list.status, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { grantId: string; argv?: string[]; kind: string; status?: string }[];
    const mine = rows.filter((x) => x.kind === 'transcript' && x.argv?.includes('list-buckets'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.status).toBe('complete');

    const replay = await s.run(['audit', 'replay', mine[0]!.grantId, '--speed', 'max'], { token: t.carol });
    expect(replay.status, replay.stderr).toBe(0);
    expect(replay.stdout).toBe(r.stdout);

    const verify = await s.run(['audit', 'verify', '--json'], { token: t.carol });
    expect(verify.status, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
  });

  it("audit list has a header row and its first column is what show and replay take; show names the approvers", async () => {
    const list = await s.run(['audit', 'list', '--user', 'alice'], { token: t.carol });
    expect(list.status, list.stderr).toBe(0);
    const [head, ...rows] = list.stdout.trimEnd().split('\n');
    expect(head!.split(/\s+/)).toEqual(['ID', 'TIME', 'CALLER', 'OUTCOME', 'TARGET', 'COMMAND']);
    // The run bob approved in the first test (the second attempt was refused before a grant, so one transcript).
    const row = rows.find((r) => r.includes('delete-bucket --bucket e2e-doomed') && r.includes('complete exit 0'));
    expect(row, list.stdout).toBeDefined();
    const id = row!.split(/\s+/)[0]!;
    const show = await s.run(['audit', 'show', id], { token: t.carol });
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/approval: +apr_\S+, requested by alice/);
    expect(show.stdout).toMatch(/approved by bob at \S+: fine/);
    const replay = await s.run(['audit', 'replay', id, '--speed', 'max'], { token: t.carol });
    expect(replay.status, replay.stderr).toBe(0);
  });

  it('only auditors read the log', async () => {
    const r = await s.run(['audit', 'list', '--json'], { token: t.alice });
    expect(r.status).toBe(77);
  });

  it('a transcript made while the broker is down arrives later, exactly once', async () => {
    // A long call (a waiter polling for a table that never appears), interrupted with Ctrl-C while the broker is
    // down: the guard forwards the signal, aws ends, the transcript cannot be sent and stays in the spool.
    const child = s.spawn(['dynamodb', 'wait', 'table-exists', '--table-name', 'never-there'], { token: t.alice });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    // Wait until aws is running (the grant was issued: the broker recorded it).
    const deadline = Date.now() + 60_000;
    let grantId: string | undefined;
    while (!grantId && Date.now() < deadline) {
      const gs = await s.broker.broker.ctx.store.listGrants({ subject: 'alice', limit: 20 });
      grantId = gs.find((g) => g.argv.includes('table-exists'))?.id;
      if (!grantId) await new Promise((r) => setTimeout(r, 200));
    }
    expect(grantId).toBeDefined();
    await new Promise((r) => setTimeout(r, 1500));
    await s.stopBroker();
    child.kill('SIGINT');
    const code = await exited;
    expect(code, err).toBe(130);
    expect(err).toMatch(/kept in/);

    await s.restartBroker();
    const flush = await s.run(['audit', 'flush', '--json'], { token: t.alice });
    expect(flush.status, flush.stderr).toBe(0);
    const again = await s.run(['audit', 'flush', '--json'], { token: t.alice });
    expect(again.status).toBe(0);

    const list = await s.run(['audit', 'list', '--user', 'alice', '--json'], { token: t.carol });
    const rows = JSON.parse(list.stdout) as { grantId: string; kind: string; exitCode?: number }[];
    const forGrant = rows.filter((x) => x.grantId === grantId && x.kind === 'transcript');
    expect(forGrant).toHaveLength(1);
    expect(forGrant[0]!.exitCode).toBe(130);
    const verify = await s.run(['audit', 'verify'], { token: t.carol });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  });
});
