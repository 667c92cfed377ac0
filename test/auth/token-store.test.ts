import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenStore, KeychainTokenStore, openTokenStore, type KeytarLike } from '../../src/auth/token-store.js';
import { configDir, tokenCacheDir } from '../../src/config/paths.js';
import { readClientConfig, resolveBrokerUrl, writeClientConfig, normalizeBrokerUrl } from '../../src/config/client-config.js';
import { GuardError } from '../../src/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guard-aws-store-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('FileTokenStore', () => {
  test('round-trips, keeps files 0600 in a 0700 directory, leaves no temporary files', async () => {
    const s = new FileTokenStore(join(dir, 'a', 'tokens'));
    expect(await s.get('https://broker.example')).toBeUndefined();
    await s.set('https://broker.example', 'v1');
    await s.set('https://broker.example', 'v2');
    await s.set('https://other.example', 'w');
    expect(await s.get('https://broker.example')).toBe('v2');
    expect(await s.get('https://other.example')).toBe('w');
    const files = await readdir(join(dir, 'a', 'tokens'));
    expect(files).toHaveLength(2);
    expect(files.every((f) => /^[0-9a-f]{64}\.json$/.test(f))).toBe(true);
    expect((await stat(join(dir, 'a', 'tokens'))).mode & 0o777).toBe(0o700);
    for (const f of files) expect((await stat(join(dir, 'a', 'tokens', f))).mode & 0o777).toBe(0o600);
    await s.delete('https://broker.example');
    await s.delete('https://never-stored.example');
    expect(await s.get('https://broker.example')).toBeUndefined();
    expect(s.kind).toBe('file');
    expect(s.describe()).toContain(join(dir, 'a', 'tokens'));
  });

  test('tightens a directory that already existed with wider permissions', async () => {
    const d = join(dir, 'wide');
    await mkdir(d, { mode: 0o755 });
    await chmod(d, 0o755);
    await new FileTokenStore(d).set('k', 'v');
    expect((await stat(d)).mode & 0o777).toBe(0o700);
  });

  test('a crash mid-write cannot leave a partial token (old value stays until the rename)', async () => {
    const d = join(dir, 't');
    const s = new FileTokenStore(d);
    await s.set('k', 'old');
    // A leftover temp file from a crashed writer is neither read nor in the way.
    const [f] = await readdir(d);
    await writeFile(join(d, `.${f}.999.abcdef.tmp`), 'half', { mode: 0o600 });
    expect(await s.get('k')).toBe('old');
    await s.set('k', 'new');
    expect(await s.get('k')).toBe('new');
  });
});

describe('openTokenStore', () => {
  const throwing: KeytarLike = {
    getPassword: async () => {
      throw new Error('Cannot autolaunch D-Bus without X11 $DISPLAY');
    },
    setPassword: async () => {
      throw new Error('no');
    },
    deletePassword: async () => false,
  };

  test('falls back quietly to the file store when there is no keychain or it does not answer', async () => {
    const env = { GUARD_AWS_CONFIG_DIR: dir };
    expect((await openTokenStore({ env, keytar: null })).kind).toBe('file');
    expect((await openTokenStore({ env, keytar: throwing })).kind).toBe('file');
    const s = await openTokenStore({ env, keytar: throwing });
    expect(s.describe()).toContain(tokenCacheDir(env));
  });

  // Skipped only inside a desktop session, where a real keychain may legitimately answer.
  test.skipIf(!!process.env.DBUS_SESSION_BUS_ADDRESS)('without a Secret Service session, the real keytar (if installed) falls back too', async () => {
    const env = { GUARD_AWS_CONFIG_DIR: dir };
    expect((await openTokenStore({ env })).kind).toBe('file');
  });

  test('GUARD_AWS_TOKEN_STORE forces a backend, and fails loudly for an unusable keychain', async () => {
    const working = new Map<string, string>();
    const fake: KeytarLike = {
      getPassword: async (s, a) => working.get(`${s}/${a}`) ?? null,
      setPassword: async (s, a, p) => void working.set(`${s}/${a}`, p),
      deletePassword: async (s, a) => working.delete(`${s}/${a}`),
    };
    expect((await openTokenStore({ env: { GUARD_AWS_CONFIG_DIR: dir, GUARD_AWS_TOKEN_STORE: 'file' }, keytar: fake })).kind).toBe('file');
    expect((await openTokenStore({ env: { GUARD_AWS_CONFIG_DIR: dir }, keytar: fake })).kind).toBe('keychain');
    await expect(openTokenStore({ env: { GUARD_AWS_TOKEN_STORE: 'keychain' }, keytar: throwing })).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(openTokenStore({ env: { GUARD_AWS_TOKEN_STORE: 'vault' }, keytar: null })).rejects.toBeInstanceOf(GuardError);
    const k = new KeychainTokenStore(fake);
    await k.set('https://b', 'x');
    expect(await k.get('https://b')).toBe('x');
    expect(working.has('guard-aws/https://b')).toBe(true);
    await k.delete('https://b');
    expect(await k.get('https://b')).toBeUndefined();
  });
});

describe('config directory and client config', () => {
  test('GUARD_AWS_CONFIG_DIR > XDG_CONFIG_HOME > ~/.config, relative values ignored', () => {
    expect(configDir({ GUARD_AWS_CONFIG_DIR: '/x/y', XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/x/y');
    expect(configDir({ XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/xdg/guard-aws');
    expect(configDir({ XDG_CONFIG_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.config/guard-aws');
    expect(configDir({ GUARD_AWS_CONFIG_DIR: 'rel', HOME: '/home/u' })).toBe('/home/u/.config/guard-aws');
  });

  test('broker URL: flag > GUARD_AWS_BROKER > saved config', async () => {
    const env: NodeJS.ProcessEnv = { GUARD_AWS_CONFIG_DIR: dir };
    expect(await resolveBrokerUrl(undefined, env)).toBeUndefined();
    await writeClientConfig({ broker: 'https://saved.example' }, env);
    expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
    expect(await resolveBrokerUrl(undefined, env)).toBe('https://saved.example');
    env.GUARD_AWS_BROKER = 'https://env.example/';
    expect(await resolveBrokerUrl(undefined, env)).toBe('https://env.example');
    expect(await resolveBrokerUrl('https://flag.example/base/?q=1#f', env)).toBe('https://flag.example/base');
  });

  test('bad config and bad URLs are one-line errors naming where', async () => {
    const env = { GUARD_AWS_CONFIG_DIR: dir };
    await writeFile(join(dir, 'config.json'), '{"broker": 42}');
    const e = await readClientConfig(env).catch((x) => x as GuardError);
    expect(e).toMatchObject({ code: 'config_invalid' });
    expect((e as GuardError).message).toContain(`${join(dir, 'config.json')}: field broker`);
    await writeFile(join(dir, 'config.json'), '{nope');
    await expect(readClientConfig(env)).rejects.toMatchObject({ code: 'config_invalid' });
    expect(() => normalizeBrokerUrl('ftp://x', '--broker')).toThrow(/--broker: must be an http\(s\) URL/);
    expect(() => normalizeBrokerUrl('https://user:pw@x', '--broker')).toThrow(/credentials/);
    expect(() => normalizeBrokerUrl('not a url', '--broker')).toThrow(/--broker: not a URL/);
    // Tokens only travel to a broker over TLS, except on loopback.
    expect(() => normalizeBrokerUrl('http://broker.example', '--broker', {})).toThrow(/must use https/);
    expect(normalizeBrokerUrl('http://127.0.0.1:8080/', '--broker', {})).toBe('http://127.0.0.1:8080');
    expect(normalizeBrokerUrl('http://localhost:8080', '--broker', {})).toBe('http://localhost:8080');
    expect(normalizeBrokerUrl('http://broker.lab', '--broker', { GUARD_AWS_INSECURE_HTTP: '1' })).toBe('http://broker.lab');
  });
});
