import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, repoRoot, startStack, type Stack } from './harness.js';

/**
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
  return JSON.parse(r.stdout) as { id: string; status: string; argv: string[] }[];
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
