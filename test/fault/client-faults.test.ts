import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, plainAwsAt, type Stack } from '../e2e/harness.js';
import { closingServer, drippingServer, slowServer, type FaultServer } from './helpers.js';

// issue 12: the client under faults and load, on the real system (built CLI, real aws, moto_server, the embedded
// IdP, the broker with SQLite). One stack for the whole file; each test uses its own state directory (spool) so
// they do not see one another's transcripts. Needs `npm run build`.

let s: Stack;
let alice: string;
let drip: FaultServer;

const stateOf = (name: string) => join(s.dir, `state-${name}`);
const db = () => new Database(join(s.dir, 'broker.sqlite'), { readonly: true, fileMustExist: true });
const grantCount = () => {
  const d = db();
  try {
    return (d.prepare('SELECT COUNT(*) AS n FROM grants').get() as { n: number }).n;
  } finally {
    d.close();
  }
};
const transcriptsFor = (grantIds: string[]) => {
  const d = db();
  try {
    const q = d.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE kind = 'transcript' AND grant_id = ?");
    return grantIds.map((g) => (q.get(g) as { n: number }).n);
  } finally {
    d.close();
  }
};
const grantsSince = (n: number): string[] => {
  const d = db();
  try {
    return (d.prepare('SELECT id FROM grants ORDER BY rowid').all() as { id: string }[]).slice(n).map((r) => r.id);
  } finally {
    d.close();
  }
};
/** Spool entries (not rejected/). */
const entries = (spool: string) => (existsSync(spool) ? readdirSync(spool).filter((n) => n !== 'rejected') : []);

/** Mounts a tmpfs (root only; CI runs as root); returns undefined where that is not possible. */
function tmpfs(dir: string, size: string, readOnly = false): (() => void) | undefined {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700${readOnly ? ',ro' : ''}`, 'tmpfs', dir]);
  if (r.status !== 0) return undefined;
  return () => void spawnSync('umount', ['-l', dir]);
}

beforeAll(async () => {
  s = await startStack();
  alice = await s.token('alice');
  drip = await drippingServer(500);
}, 120_000);
afterAll(async () => {
  await drip?.close();
  await s?.close();
});

describe('parallel runs sharing one spool (item 1)', () => {
  it('50 concurrent guarded calls: every one exits 0 with exactly one transcript, and the spool ends empty', async () => {
    const before = grantCount();
    const env = { XDG_STATE_HOME: stateOf('parallel') };
    const runs = await Promise.all(Array.from({ length: 50 }, () => s.run(['sts', 'get-caller-identity'], { token: alice, env })));
    const bad = runs.filter((r) => r.status !== 0).map((r) => `${r.status}: ${r.stderr.trim()}`);
    if (bad.length) console.log(`FAILS ${bad.length}:\n${[...new Set(bad)].slice(0, 5).join("\n")}`);
    expect(bad).toEqual([]);
    for (const r of runs) expect(r.stdout).toContain('"Account"');
    const grants = grantsSince(before);
    expect(grants).toHaveLength(50);
    expect(transcriptsFor(grants)).toEqual(grants.map(() => 1));
    expect(entries(join(stateOf('parallel'), 'guard-aws', 'spool'))).toEqual([]);
  }, 240_000);
});

describe('local checks come before the grant (item 2)', () => {
  it('an aws that does not say its release fails before the broker is asked: no grant is spent', async () => {
    const fake = join(s.dir, 'fake-aws');
    writeFileSync(fake, '#!/bin/sh\nexit 3\n');
    chmodSync(fake, 0o755);
    const before = grantCount();
    const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_AWS_BIN: fake, XDG_STATE_HOME: stateOf('fakeaws') } });
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/did not say which AWS CLI it is/);
    expect(grantCount()).toBe(before);
  });
});

describe('slow and dripping brokers (item 3)', () => {
  it('a dripping proxy: exit 69 within the documented deadline (GUARD_AWS_BROKER_TIMEOUT), with a clear message', async () => {
    const t0 = Date.now();
    const r = await s.run(['sts', 'get-caller-identity'], {
      token: alice,
      env: { GUARD_AWS_BROKER: drip.url, GUARD_AWS_BROKER_TIMEOUT: '2', XDG_STATE_HOME: stateOf('drip') },
    });
    const took = Date.now() - t0;
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/no complete answer within 2 s/);
    expect(took).toBeLessThan(2_000 + 4_000); // the deadline plus process start-up
  });

  it('`audit flush` against a dripping proxy: 69 within the deadline, transcript kept', async () => {
    const spool = join(stateOf('dripflush'), 'guard-aws', 'spool');
    // A real finished transcript, made by a real run, left spooled because the broker went away.
    const made = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { XDG_STATE_HOME: stateOf('dripflush'), GUARD_AWS_BROKER_TIMEOUT: '2' } });
    expect(made.status).toBe(0);
    mkdirSync(join(spool, 'grant_keepme'), { recursive: true, mode: 0o700 });
    writeFileSync(join(spool, 'grant_keepme', 'envelope.json'), JSON.stringify({ transcript: { grantId: 'grant_keepme', status: 'complete' }, sig: 'x' }), { mode: 0o600 });
    const t0 = Date.now();
    const r = await s.run(['audit', 'flush'], { token: alice, env: { GUARD_AWS_BROKER: drip.url, GUARD_AWS_BROKER_TIMEOUT: '2', XDG_STATE_HOME: stateOf('dripflush') } });
    expect(r.status, r.stderr).toBe(69);
    expect(Date.now() - t0).toBeLessThan(2_000 + 4_000);
    expect(entries(spool)).toContain('grant_keepme');
  });
});

describe('closing and slow proxies', () => {
  it('a proxy that closes the connection: 69 at once, naming the broker; a slow 503: 69 after it answers; no grant either way', async () => {
    const closing = await closingServer();
    const slow = await slowServer(1_500);
    try {
      for (const [server, words, max] of [
        [closing, /broker unreachable at http:\/\/127\.0\.0\.1:\d+: (ECONNRESET|socket hang up|connection closed)/, 4_000],
        [slow, /broker error 503/, 1_500 + 4_000],
      ] as const) {
        const before = grantCount();
        const t0 = Date.now();
        const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { GUARD_AWS_BROKER: server.url, XDG_STATE_HOME: stateOf('proxies') } });
        expect(r.status, r.stderr).toBe(69);
        expect(r.stderr).toMatch(words);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(Date.now() - t0).toBeLessThan(max);
        expect(grantCount()).toBe(before);
      }
    } finally {
      await closing.close();
      await slow.close();
    }
  });
});

describe('damaged spool entries (item 5)', () => {
  it('a truncated envelope.json is moved to rejected/ with a clear message, and the rest flows', async () => {
    const state = stateOf('damaged');
    const spool = join(state, 'guard-aws', 'spool');
    mkdirSync(join(spool, 'grant_torn'), { recursive: true, mode: 0o700 });
    writeFileSync(join(spool, 'grant_torn', 'envelope.json'), '{"transcript":{"v":1,"grantId":"grant_to', { mode: 0o600 });
    const flush = await s.run(['audit', 'flush'], { token: alice, env: { XDG_STATE_HOME: state } });
    expect(flush.status, flush.stderr).toBe(0);
    expect(flush.stderr).toMatch(/grant_torn.*damaged.*rejected/);
    expect(entries(spool)).toEqual([]);
    expect(readdirSync(join(spool, 'rejected')).some((n) => n.startsWith('grant_torn'))).toBe(true);
    // The next run neither warns nor fails about it.
    const run = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { XDG_STATE_HOME: state } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/kept in|busy|damaged/);
  });
});

describe('errors are named for what they are (item 6)', () => {
  it('a binary token file is an authentication problem (67), not an unreachable broker', async () => {
    const file = join(s.dir, 'binary-token');
    writeFileSync(file, Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x80, 0x0a]));
    const r = await s.run(['sts', 'get-caller-identity'], { env: { GUARD_AWS_TOKEN_FILE: file, XDG_STATE_HOME: stateOf('bintoken') } });
    expect(r.status, r.stderr).toBe(67);
    expect(r.stderr).toMatch(/GUARD_AWS_TOKEN_FILE/);
  });

  it('a read-only spool is refused before the grant (74, names the directory), not a bug (70) after it', async () => {
    const state = stateOf('rofs');
    const spool = join(state, 'guard-aws', 'spool');
    const unmount = tmpfs(spool, '1m', true);
    if (!unmount) return void console.warn('skipped: cannot mount a tmpfs here (not root)');
    try {
      const before = grantCount();
      const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { XDG_STATE_HOME: state } });
      expect(r.status, r.stderr).toBe(74);
      expect(r.stderr).toContain(spool);
      expect(r.stderr).toMatch(/EROFS|read-only/);
      expect(grantCount()).toBe(before);
    } finally {
      unmount();
    }
  });

  it('a full spool is refused before the grant (74), not a bug (70) after it', async () => {
    const state = stateOf('full');
    const spool = join(state, 'guard-aws', 'spool');
    const unmount = tmpfs(spool, '256k');
    if (!unmount) return void console.warn('skipped: cannot mount a tmpfs here (not root)');
    try {
      // Fill it.
      spawnSync('dd', ['if=/dev/zero', `of=${join(spool, 'filler')}`, 'bs=4k', 'count=1000']);
      const before = grantCount();
      const r = await s.run(['sts', 'get-caller-identity'], { token: alice, env: { XDG_STATE_HOME: state } });
      expect(r.status, r.stderr).toBe(74);
      expect(r.stderr).toMatch(/ENOSPC|no space/i);
      expect(grantCount()).toBe(before);
    } finally {
      unmount();
    }
  });

  it('reusing a spent approval says the approval was already used', async () => {
    const bob = await s.token('bob');
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'fault-spent']).status).toBe(0);
    const argv = ['s3api', 'delete-bucket', '--bucket', 'fault-spent'];
    const env = { XDG_STATE_HOME: stateOf('spent') };
    const first = await s.run(argv, { token: alice, env });
    expect(first.status, first.stderr).toBe(75);
    const id = /(apr_[A-Za-z0-9_-]+)/.exec(first.stderr)![1]!;
    expect((await s.run(['approvals', 'approve', id, '--yes'], { token: bob })).status).toBe(0);
    expect((await s.run(['--approval', id, ...argv], { token: alice, env })).status).toBe(0);
    expect(plainAwsAt(s, ['s3api', 'create-bucket', '--bucket', 'fault-spent']).status).toBe(0);
    const again = await s.run(['--approval', id, ...argv], { token: alice, env });
    expect(again.status).toBe(77);
    expect(again.stderr).toMatch(/already (been )?used/);
    expect(again.stderr).not.toMatch(/deleting a bucket needs an approver/);
  });
});
