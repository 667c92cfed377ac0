import { afterAll, beforeAll, expect, it } from 'vitest';
import { startStack, type Stack } from './harness.js';
import { plainAwsAt } from './harness.js';
import { testClis } from '../helpers/aws.js';

/**
 * A long call on the broker streams: `logs tail --follow` (AWS CLI v2, which the broker runs here: its aws is
 * GUARD_AWS_AWS_BIN) prints events as they come, and Ctrl-C on the client ends it. Real parts: the built CLI,
 * the broker over HTTP, moto as CloudWatch Logs.
 */
// Both tests need AWS CLI v2 (v1 has no `logs tail`): skipped only when GUARD_AWS_TEST_CLIS leaves v2 out.
const v2 = testClis().find((c) => c.name === 'v2');
let s: Stack;
let alice: string;
const saved = process.env.GUARD_AWS_AWS_BIN;

beforeAll(async () => {
  // The broker runs in this process and finds its aws through this process's environment.
  if (v2) process.env.GUARD_AWS_AWS_BIN = v2.path;
  s = await startStack({ execution: { people: 'broker', workloads: 'broker' } });
  alice = await s.token('alice');
}, 120_000);
afterAll(async () => {
  if (saved === undefined) delete process.env.GUARD_AWS_AWS_BIN;
  else process.env.GUARD_AWS_AWS_BIN = saved;
  await s?.close();
});

// aws (Python) would block-buffer its stdout into the masker's pipe; the sealed environment sets PYTHONUNBUFFERED=1
// (src/runner/sandbox.ts), so events reach the caller as they happen. Runs with AWS CLI v2 (v1's logs has no tail).
(v2 ? it : it.skip)('logs tail --follow streams events while it runs; Ctrl-C ends it', async () => {
  const at = (plain: string[]) => expect(plainAwsAt(s, plain, v2!.path).status, plain.join(' ')).toBe(0);
  at(['logs', 'create-log-group', '--log-group-name', '/remote/follow']);
  at(['logs', 'create-log-stream', '--log-group-name', '/remote/follow', '--log-stream-name', 'one']);
  const event = (msg: string) => JSON.stringify([{ timestamp: Date.now(), message: msg }]);
  at(['logs', 'put-log-events', '--log-group-name', '/remote/follow', '--log-stream-name', 'one', '--log-events', event('first-event-streamed')]);
  // The client reads the argv with the same release's table for its early checks (it has v2 too).
  const child = s.spawn(['logs', 'tail', '/remote/follow', '--follow', '--since', '1h'], { token: alice, env: { GUARD_AWS_AWS_BIN: v2!.path } });
  child.stdin!.end();
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  const until = async (cond: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (cond()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return cond();
  };
  const seen = await until(() => out.includes('first-event-streamed'), 20_000);
  if (!seen) child.kill('SIGKILL');
  expect(seen, `stdout: ${out}\nstderr: ${err}`).toBe(true);
  // Still running: the output arrived while the call goes on, not at its end.
  expect(child.exitCode).toBeNull();
  at(['logs', 'put-log-events', '--log-group-name', '/remote/follow', '--log-stream-name', 'one', '--log-events', event('second-event-streamed')]);
  expect(await until(() => out.includes('second-event-streamed'), 20_000), err).toBe(true);
  child.kill('SIGINT');
  const code = await exited;
  expect([130, 0]).toContain(code);
}, 90_000);

(v2 ? it : it.skip)('a caller without any aws runs a v2-only command the broker runs with its v2', async () => {
  const { mkdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const empty = join(s.dir, 'empty-bin');
  mkdirSync(empty, { recursive: true });
  expect(plainAwsAt(s, ['logs', 'create-log-group', '--log-group-name', '/remote/plain'], v2!.path).status).toBe(0);
  const r = await s.run(['logs', 'tail', '/remote/plain', '--since', '1h'], { token: alice, env: { PATH: empty } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});
