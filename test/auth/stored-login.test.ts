import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getAccessToken } from '../../src/auth/access-token.js';
import { parseStoredLogin, readStoredLogin, type StoredLogin } from '../../src/auth/stored-login.js';
import { FileTokenStore } from '../../src/auth/token-store.js';
import { rejection } from '../helpers/rejection.js';

// What the token store holds is read back on every guarded call; a damaged or hand-edited entry must say which
// field is wrong (never its value: these are tokens), and the login must not be used half-read.
const good: StoredLogin = {
  version: 1,
  broker: 'http://127.0.0.1:9',
  issuer: 'http://127.0.0.1:8/idp',
  clientId: 'guard-aws',
  audience: 'guard-aws-broker',
  groupsClaim: 'groups',
  accessToken: 'secret-access-token-value',
  refreshToken: 'secret-refresh-token-value',
  expiresAt: '2099-01-01T00:00:00.000Z',
  subject: 'alice',
  groups: ['dev'],
  name: 'Alice',
  savedAt: '2026-01-01T00:00:00.000Z',
};
const text = (o: object) => JSON.stringify(o);

describe('readStoredLogin', () => {
  test('a whole entry reads back as written; fields it does not know are left out', () => {
    expect(readStoredLogin(text(good))).toEqual({ login: good });
    expect(readStoredLogin(text({ ...good, extra: 'x' }))).toEqual({ login: good });
    const { refreshToken: _r, name: _n, ...bare } = good;
    expect(readStoredLogin(text(bare))).toEqual({ login: bare });
  });

  test.each([
    ['not JSON', '{"version":1,', /^not JSON$/],
    ['an array', '[1]', /^not a JSON object$/],
    ['another version', text({ ...good, version: 2 }), /^version: expected 1$/],
    ['a missing field', text({ ...good, accessToken: undefined }), /^accessToken: expected a string$/],
    ['a field of the wrong type', text({ ...good, expiresAt: 4102444800 }), /^expiresAt: expected a string$/],
    ['groups not a list', text({ ...good, groups: 'dev' }), /^groups: expected a list of strings$/],
    ['groups with a non-string', text({ ...good, groups: ['dev', 7] }), /^groups: expected a list of strings$/],
    ['an optional field of the wrong type', text({ ...good, refreshToken: { t: 1 } }), /^refreshToken: expected a string$/],
  ])('%s names what is wrong, never a value', (_what, entry, problem) => {
    const r = readStoredLogin(entry);
    expect(r.login).toBeUndefined();
    expect(r.problem).toMatch(problem);
    expect(r.problem).not.toMatch(/secret/);
    expect(parseStoredLogin(entry)).toBeUndefined();
  });
});

describe('a damaged stored login through getAccessToken', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'guard-aws-sl-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('auth_required (67), one line naming the field and how to log in again, no token in it', async () => {
    const store = new FileTokenStore(join(dir, 'tokens'));
    await store.set(good.broker, text({ ...good, groups: 'dev' }));
    const e = await rejection(getAccessToken({ env: { GUARD_AWS_CONFIG_DIR: dir }, brokerUrl: good.broker, store }));
    expect([e.code, e.exitCode]).toEqual(['auth_required', 67]);
    expect(e.message).toBe(
      `the stored login for ${good.broker} cannot be used (groups: expected a list of strings); run \`guard-aws login --broker ${good.broker}\``,
    );
    expect(e.message).not.toMatch(/secret/);
  });
});
