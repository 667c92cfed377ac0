import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, plainAwsAt, startStack, type Stack } from '../e2e/harness.js';

// issue 12 item 7 and the kill -9 part of the fault suite: a guard-aws killed with SIGKILL while aws runs must
// not leave aws running with the scoped credentials, its private HOME is swept by the next run, and the
// transcript it was writing is recovered (partial) by the next run. Real processes, real signals. Needs a build.

let s: Stack;
let alice: string;
beforeAll(async () => {
  s = await startStack();
  alice = await s.token('alice');
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-kill']).status).toBe(0);
}, 120_000);
afterAll(() => s?.close());

/** Where a local run under TMPDIR=tmp puts its private HOME: this user's own directory (src/runner/sandbox.ts). */
const runRoot = (tmp: string) => join(tmp, `guard-aws-${process.getuid!()}`);

/** Pids whose environment has HOME inside `tmp` (the sealed aws runs with its private HOME there). */
function awsProcessesUnder(tmp: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'latin1').split('\0');
      if (env.some((v) => v.startsWith(`HOME=${runRoot(tmp)}/guard-aws-run-`))) found.push(Number(p));
    } catch {
      /* gone or not readable */
    }
  }
  return found;
}

const waitFor = async (what: string, ok: () => boolean, ms: number) => {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('kill -9 of guard-aws while aws runs', () => {
  it('aws dies with it, the next run sweeps the private HOME and recovers the transcript as partial', async () => {
    const tmp = join(s.dir, 'tmp-kill');
    mkdirSync(tmp, { recursive: true });
    const env = s.env(alice, { TMPDIR: tmp, XDG_STATE_HOME: join(s.dir, 'state-kill') });
    // `s3 cp -` reads stdin until it closes: aws is alive, holding the credentials, for as long as we like.
    const child = spawn(process.execPath, [cli, 's3', 'cp', '-', 's3://e2e-kill/k'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b));
    child.stdin!.write('some bytes\n');
    await waitFor(`aws to start (${err})`, () => awsProcessesUnder(tmp).length > 0, 60_000);
    const awsPids = awsProcessesUnder(tmp);
    const homes = readdirSync(runRoot(tmp)).filter((n) => n.startsWith('guard-aws-run-'));
    expect(homes).toHaveLength(1);
    // Let the plugin load (it ties aws to its parent first thing when imported).
    await new Promise((r) => setTimeout(r, 1_500));

    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    // aws must be gone at once (PR_SET_PDEATHSIG) or within a second or two (the parent watch).
    await waitFor('aws to die with guard-aws', () => awsPids.every((p) => !existsSync(`/proc/${p}`) || /\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))), 5_000);
    expect(existsSync(join(runRoot(tmp), homes[0]!))).toBe(true); // nobody could clean up after SIGKILL

    // The next run (same TMPDIR, same spool) sweeps the dead run's HOME and sends its transcript, marked partial.
    const next = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { TMPDIR: tmp, XDG_STATE_HOME: join(s.dir, 'state-kill') } });
    expect(next.status, next.stderr).toBe(0);
    expect(existsSync(join(runRoot(tmp), homes[0]!))).toBe(false);
    expect(readdirSync(runRoot(tmp)).filter((n) => n.startsWith('guard-aws-run-'))).toEqual([]);
    const db = new Database(join(s.dir, 'broker.sqlite'), { readonly: true });
    try {
      const rows = db
        .prepare("SELECT a.body FROM audit_log a JOIN grants g ON g.id = a.grant_id WHERE a.kind = 'transcript' AND g.argv_json LIKE '%e2e-kill%'")
        .all() as { body: string }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]!.body).toContain('"status":"partial"');
    } finally {
      db.close();
    }
  }, 120_000);

  it('a HOME whose owner is alive, or whose name carries no owner, is never swept', async () => {
    const tmp = join(s.dir, 'tmp-keep');
    mkdirSync(join(runRoot(tmp), 'guard-aws-run-abc123'), { recursive: true, mode: 0o700 });
    // A live owner: a process that is running now (this test process's own stamp is used by the CLI child only,
    // so make one for a sleeping process).
    const sleeper = spawn('sleep', ['30']);
    try {
      const { stampToken, pidStartTime } = await import('../../src/io/liveness.js');
      const { bootId } = await import('../../src/io/liveness.js');
      const { hostname } = await import('node:os');
      const live = stampToken({ pid: sleeper.pid!, host: hostname(), bootId: bootId(), pidStart: pidStartTime(sleeper.pid!) });
      mkdirSync(join(runRoot(tmp), `guard-aws-run-${live}-zzzzzz`));
      const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { TMPDIR: tmp, XDG_STATE_HOME: join(s.dir, 'state-keep') } });
      expect(r.status, r.stderr).toBe(0);
      expect(readdirSync(runRoot(tmp)).sort()).toEqual(['guard-aws-run-abc123', `guard-aws-run-${live}-zzzzzz`].sort());
    } finally {
      sleeper.kill('SIGKILL');
    }
    expect(spawnSync('true').status).toBe(0);
  }, 60_000);
});
