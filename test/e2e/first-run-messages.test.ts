import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, repoRoot, startStack, type Stack } from './harness.js';

/**
 * The moments of a first run that used to look like crashes (issue 15), through the built CLI on real parts.
 *
 * Ctrl-C on a real terminal (a pseudo-terminal from Python's pty module: node has none without a native module).
 * Whether at the reason prompt (enquirer reads the terminal raw, so Ctrl-C arrives as a keypress) or during the
 * wait (cooked mode: the terminal sends SIGINT), the request that was opened is withdrawn and guard-aws exits 130,
 * as a shell reports Ctrl-C — not 70 ("a bug") and not 77 ("denied").
 */
let s: Stack;
let alice: string;

beforeAll(async () => {
  s = await startStack();
  alice = await s.token('alice');
}, 180_000);
afterAll(async () => s?.close());

const driver = join(repoRoot, 'test', 'helpers', 'pty-drive.py');

function onTerminal(args: string[], steps: [string, string][]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    // A terminal and no CI: guard-aws may prompt and show its live status.
    const env = { ...s.env(alice), CI: '', TERM: 'xterm' };
    const child = spawn('python3', [driver, JSON.stringify(steps), '--', process.execPath, cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b));
    child.stderr.on('data', (b: Buffer) => (output += b));
    child.on('close', (status) => resolve({ status, output }));
  });
}

async function myRequests(): Promise<{ id: string; status: string; argv: string[]; reason?: string | null }[]> {
  const r = await s.run(['approvals', 'list', '--mine', '--json'], { token: alice });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { approvals: { id: string; status: string; argv: string[] }[] }).approvals;
}

describe('Ctrl-C on a terminal', () => {
  it('at the reason prompt: an empty reason is asked again, then Ctrl-C withdraws the request and exits 130', async () => {
    const r = await onTerminal(['s3', 'rb', 's3://e2e-ctrl-c-prompt'], [
      ['Reason for the approvers', '\r'],
      ['A reason is needed', ''],
      ['Reason for the approvers', '\x03'],
    ]);
    expect(r.status, r.output).toBe(130);
    expect(r.output).toMatch(/interrupted \(Ctrl-C\); approval request apr_\S+ withdrawn/);
    expect(r.output).not.toContain('internal error');
    const mine = (await myRequests()).filter((a) => a.argv.includes('s3://e2e-ctrl-c-prompt'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.status).toBe('withdrawn');
  }, 90_000);

  it('during the wait: SIGINT from the terminal withdraws the request and exits 130, not 77', async () => {
    const r = await onTerminal(['--reason', 'tidying up', 's3', 'rb', 's3://e2e-ctrl-c-wait'], [['waiting for approval apr_', '\x03']]);
    expect(r.status, r.output).toBe(130);
    expect(r.output).toMatch(/interrupted \(Ctrl-C\); approval request apr_\S+ withdrawn/);
    const mine = (await myRequests()).filter((a) => a.argv.includes('s3://e2e-ctrl-c-wait'));
    expect(mine.map((a) => a.status)).toEqual(['withdrawn']);
  }, 90_000);
});

describe('messages', () => {
  it('a rejected GUARD_AWS_TOKEN tells the job to fix its token, once, on one line (67)', async () => {
    // A real token with its signature changed: it decodes locally, the broker's verification refuses it.
    const forged = `${alice.slice(0, -6)}${alice.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`;
    const r = await s.run(['sts', 'get-caller-identity'], { token: forged });
    expect(r.status, r.stderr).toBe(67);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('check GUARD_AWS_TOKEN');
    expect(r.stderr).not.toContain('run `guard-aws login`');
    expect(r.stderr.match(/the token was rejected/g)).toHaveLength(1);
  });

  it('whoami for an environment token says where it comes from in plain words', async () => {
    const r = await s.run(['whoami'], { token: alice });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^token: +given in the environment variable GUARD_AWS_TOKEN \(guard-aws stores nothing\)$/m);
  });

  it('an approval id the broker does not know is refused like a used one (77), not as a usage error', async () => {
    const r = await s.run(['--approval', 'apr_doesnotexist', 's3', 'rb', 's3://e2e-no-such-approval'], { token: alice });
    expect(r.status, r.stderr).toBe(77);
  });

  it('"no broker" is one message and one exit code (64) for every command', async () => {
    const noBroker = { GUARD_AWS_BROKER: '' };
    const runs = await Promise.all([
      ...[['sts', 'get-caller-identity'], ['approvals', 'list'], ['audit', 'list'], ['logout'], ['login', '--no-input']].map((a) => s.run(a, { token: alice, env: noBroker })),
      // whoami with a token in the environment needs no broker; without one it must say where to log in.
      s.run(['whoami'], { env: noBroker }),
    ]);
    for (const r of runs) {
      expect(r.status, r.stderr).toBe(64);
      expect(r.stderr.trim()).toBe('guard-aws: no broker: pass --broker URL, set GUARD_AWS_BROKER=URL, or log in once with `guard-aws login --broker URL`');
    }
  });
});

describe('help', () => {
  it('guard-aws --help lists the run options that errors point to', async () => {
    const r = await s.run(['--help']);
    expect(r.status).toBe(0);
    for (const o of ['--approval ID', '--wait SECONDS', '--reason TEXT', '--no-input', '--broker URL']) expect(r.stdout).toContain(o);
  });

  it('usage lines name guard-aws; a bad number is a usage error (64) naming the option', async () => {
    const help = await s.run(['dev', '--help']);
    expect(help.stdout).toMatch(/^Usage: guard-aws dev \[options\]/);
    for (const args of [['dev', '--port', 'abc'], ['broker', '--config', 'x.yaml', '--port', '70000'], ['approvals', 'list', '--limit', 'x'], ['audit', 'list', '--limit', '0'], ['audit', 'replay', 'g', '--speed', 'fast']]) {
      const r = await s.run(args, { token: alice });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(64);
      expect(r.stderr).toMatch(/^guard-aws: --(port|limit|speed): "[^"]*" is not /);
    }
  });
});
