import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alice, approveDecision, deleteBucket } from './fixtures.js';
import { startApprovalsServer, type ApprovalsServer } from './helpers/approvals-server.js';

// The built CLI as a separate process (`node bin/guard-aws.js`, needs dist/: `npm test` builds it), so exit codes
// and stdout/stderr are what a person or a CI job really gets.
const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const bin = join(repo, 'bin/guard-aws.js');
let srv: ApprovalsServer;
const home = mkdtempSync(join(tmpdir(), 'guard-aws-cli-proc-'));

beforeAll(async () => {
  if (!existsSync(join(repo, 'dist/cli/commands/approvals.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  srv = await startApprovalsServer();
});
afterAll(async () => {
  await srv?.close();
  rmSync(home, { recursive: true, force: true });
});

function run(who: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [bin, 'approvals', ...args], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        XDG_CONFIG_HOME: home,
        XDG_STATE_HOME: home,
        GUARD_AWS_TOKEN_STORE: 'file',
        GUARD_AWS_BROKER: srv.url,
        GUARD_AWS_TOKEN: srv.tokens[who]!,
        CI: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('guard-aws approvals (process)', () => {
  it('exit codes and one-line errors as documented', async () => {
    const a = await srv.service.open({ requester: alice, invocation: deleteBucket('proc'), target: 'prod', decision: approveDecision(), reason: 'proc test' });
    const usage = await run('bob', ['list', '--bogus']);
    expect([usage.code, usage.stdout]).toEqual([64, '']);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    const self = await run('alice', ['approve', a.id]);
    expect(self.code).toBe(77);
    expect(self.stderr.trim().split('\n')).toHaveLength(1);
    const shown = await run('bob', ['show', a.id, '--json']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: a.id, status: 'pending', canDecide: true });
    const ok = await run('bob', ['approve', a.id, '--comment', 'ok']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${a.id}: approved`);
    expect((await srv.service.get(a.id))!.status).toBe('approved');
  });
});
