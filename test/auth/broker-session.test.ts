import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerSession } from '../../src/auth/broker-session.js';
import type { TokenStore } from '../../src/auth/token-store.js';
import { writeClientConfig } from '../../src/config/client-config.js';
import { GuardError } from '../../src/errors.js';
import { rejection } from '../helpers/rejection.js';

const dir = mkdtempSync(join(tmpdir(), 'guard-aws-session-'));

/** An unsigned JWT-shaped token: the client only reads its claims (the broker verifies it). */
function jwt(sub: string, exp: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub, exp, groups: ['dev'] })}.c2ln`;
}

/** A store that fails the test if it is opened: workload tokens must not touch the keychain or files. */
const untouchable: TokenStore = {
  kind: 'file',
  get: () => Promise.reject(new Error('store opened')),
  set: () => Promise.reject(new Error('store opened')),
  delete: () => Promise.reject(new Error('store opened')),
  describe: () => 'untouchable',
};

describe('brokerSession: the one way a command reaches the broker', () => {
  it('no broker anywhere is the one "no broker" usage error (exit 64), naming the ways to give one', async () => {
    const e = await rejection(brokerSession({ env: { GUARD_AWS_CONFIG_DIR: join(dir, 'empty') } }));
    expect(e).toBeInstanceOf(GuardError);
    expect((e as GuardError).code).toBe('usage');
    expect((e as GuardError).exitCode).toBe(64);
    expect((e as GuardError).message).toMatch(/--broker URL.*GUARD_AWS_BROKER.*guard-aws login --broker URL/);
  });

  it('--broker > GUARD_AWS_BROKER > the last login, normalised; plain http off loopback is refused', async () => {
    const env = { GUARD_AWS_CONFIG_DIR: join(dir, 'saved') };
    await writeClientConfig({ broker: 'https://saved.example/' }, env);
    expect((await brokerSession({ env })).brokerUrl).toBe('https://saved.example');
    expect((await brokerSession({ env: { ...env, GUARD_AWS_BROKER: 'https://env.example' } })).brokerUrl).toBe('https://env.example');
    expect((await brokerSession({ flag: 'https://flag.example/?x=1', env: { ...env, GUARD_AWS_BROKER: 'https://env.example' } })).brokerUrl).toBe(
      'https://flag.example',
    );
    const e = await rejection(brokerSession({ flag: 'http://broker.example', env }));
    expect((e as GuardError).code).toBe('usage');
    expect((e as GuardError).message).toMatch(/--broker: .* must use https/);
  });

  it('fetches the token on first use, keeps it until a minute before expiry, and shares one fetch', async () => {
    const file = join(dir, 'token');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    writeFileSync(file, jwt('alice', exp));
    let now = Date.now();
    const s = await brokerSession({ flag: 'https://b.example', env: { GUARD_AWS_TOKEN_FILE: file }, store: untouchable, now: () => now });
    expect(s.subject).toBeUndefined();
    const [a, b] = await Promise.all([s.token(), s.token()]);
    expect(a).toBe(b);
    expect(s.subject).toBe('alice');
    expect(s.groups).toEqual(['dev']);
    // Rotated in place (as Kubernetes does): the kept token is still good, so it is used...
    writeFileSync(file, jwt('alice-rotated', exp + 3600));
    expect(await s.token()).toBe(a);
    // ...until it is within a minute of expiring.
    now = exp * 1000 - 30_000;
    expect(await s.token()).not.toBe(a);
    expect(s.subject).toBe('alice-rotated');
  });

  it('a stored login is read through the store only when a token is asked for', async () => {
    let opened = 0;
    const store: TokenStore = { ...untouchable, get: async () => (opened++, undefined) };
    const s = await brokerSession({ flag: 'https://b.example', env: { GUARD_AWS_CONFIG_DIR: join(dir, 'none') }, store });
    expect(opened).toBe(0);
    const e = await rejection(s.token());
    expect((e as GuardError).code).toBe('auth_required');
    expect(opened).toBe(1);
  });
});
