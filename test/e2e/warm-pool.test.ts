import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapAvailable } from '../../src/runner/isolation.js';
import { plainAwsAt, startStack, type Stack } from './harness.js';

/**
 * Issue 16 end to end: a broker with execution.warmPool enabled (the built CLI as the client, the real aws v1 on
 * the broker, moto, the embedded IdP, HTTP). Its calls print what plain aws prints, and each broker-attested
 * transcript says how aws was started: `runner: warm` once the pool is ready.
 */
const ok = bwrapAvailable() && process.getuid?.() === 0;
let s: Stack;
let alice: string;
let carol: string;

beforeAll(async () => {
  if (!ok) return;
  s = await startStack({ execution: { people: 'broker', workloads: 'broker', warmPool: { enabled: true } } });
  alice = await s.token('alice');
  carol = await s.token('carol');
  expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'e2e-warm']).status).toBe(0);
}, 120_000);
afterAll(async () => {
  await s?.close();
});

async function runnerOf(word: string): Promise<string | undefined> {
  const list = await s.run(['audit', 'list', '--json'], { token: carol });
  const rows = JSON.parse(list.stdout) as { grantId: string; argv?: string[] }[];
  const mine = rows.filter((x) => x.argv?.includes(word)).at(-1);
  if (!mine) return undefined;
  const shown = await s.run(['audit', 'show', mine.grantId, '--json'], { token: carol });
  return (JSON.parse(shown.stdout) as { body: { envelope: { transcript: { runner?: string } } } }).body.envelope.transcript.runner;
}

// Skipped only where the warm pool cannot run (no bubblewrap, not root); CI has both, so it runs there.
describe.skipIf(!ok)('a broker with a warm CLI pool', () => {
  it('runs calls forked from the pool, byte-identical to plain aws, and the transcript says runner: warm', async () => {
    // The pool starts with the broker; give its supervisor the time a first import takes.
    let runner: string | undefined;
    const args = ['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'text'];
    for (let i = 0; i < 20 && runner !== 'warm'; i++) {
      const r = await s.run(args, { token: alice });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(plainAwsAt(s, args).stdout);
      runner = await runnerOf('list-buckets');
      expect(['warm', 'fresh']).toContain(runner);
      if (runner !== 'warm') await new Promise((res) => setTimeout(res, 500));
    }
    expect(runner).toBe('warm');
    // Errors and their exit codes too.
    const missing = ['s3api', 'head-object', '--bucket', 'e2e-warm', '--key', 'nope'];
    const remote = await s.run(missing, { token: alice });
    const plain = plainAwsAt(s, missing);
    expect({ status: remote.status, out: remote.stdout, err: remote.stderr }).toEqual({ status: plain.status, out: plain.stdout, err: plain.stderr });
    expect(await runnerOf('head-object')).toBe('warm');
    const verify = await s.run(['audit', 'verify', '--json'], { token: carol });
    expect(JSON.parse(verify.stdout).ok).toBe(true);
  }, 120_000);
});
