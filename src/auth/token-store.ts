import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GuardError } from '../errors.js';
import { tokenCacheDir } from '../config/paths.js';
import { readOptionalFile, writePrivateFile } from '../config/private-file.js';

/** Where logins are kept. Keys are broker URLs; values are opaque strings (a JSON StoredLogin). */
export interface TokenStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  readonly kind: 'keychain' | 'file';
  /** Human-readable location, for `whoami` ("the OS keychain (Secret Service)", "/home/x/.config/guard-aws/tokens"). */
  describe(): string;
}

/**
 * One file per broker, named by the SHA-256 of the key, under the config directory — the same shape as the AWS
 * CLI's SSO cache (~/.aws/sso/cache/<sha1 of the start URL>.json). 0600 files in a 0700 directory, written atomically.
 */
export class FileTokenStore implements TokenStore {
  readonly kind = 'file' as const;
  constructor(readonly dir: string) {}

  private pathFor(key: string): string {
    return join(this.dir, `${createHash('sha256').update(key).digest('hex')}.json`);
  }
  get(key: string): Promise<string | undefined> {
    return readOptionalFile(this.pathFor(key));
  }
  set(key: string, value: string): Promise<void> {
    return writePrivateFile(this.pathFor(key), value);
  }
  async delete(key: string): Promise<void> {
    await rm(this.pathFor(key), { force: true });
  }
  describe(): string {
    return `file ${this.dir}`;
  }
}

/** The part of keytar's API guard-aws uses (so tests can inject a real keytar or nothing). */
export interface KeytarLike {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
}

export const KEYCHAIN_SERVICE = 'guard-aws';

export class KeychainTokenStore implements TokenStore {
  readonly kind = 'keychain' as const;
  constructor(private readonly keytar: KeytarLike) {}
  async get(key: string): Promise<string | undefined> {
    return (await this.keytar.getPassword(KEYCHAIN_SERVICE, key)) ?? undefined;
  }
  set(key: string, value: string): Promise<void> {
    return this.keytar.setPassword(KEYCHAIN_SERVICE, key, value);
  }
  async delete(key: string): Promise<void> {
    await this.keytar.deletePassword(KEYCHAIN_SERVICE, key);
  }
  describe(): string {
    return `OS keychain (service "${KEYCHAIN_SERVICE}")`;
  }
}

/** keytar is an optional, natively built dependency: absent on many machines. */
export async function loadKeytar(): Promise<KeytarLike | undefined> {
  try {
    const name = 'keytar'; // not a literal import: the type checker must not require it
    const mod = (await import(name)) as { default?: KeytarLike } & KeytarLike;
    const k = mod.default ?? mod;
    return typeof k.getPassword === 'function' ? k : undefined;
  } catch {
    return undefined;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** True when the keychain answers a harmless read (a headless box has no Secret Service: "Cannot autolaunch D-Bus"). */
export async function keychainUsable(keytar: KeytarLike, timeoutMs = 3000): Promise<boolean> {
  try {
    await withTimeout(keytar.getPassword(KEYCHAIN_SERVICE, '__guard-aws-probe__'), timeoutMs);
    return true;
  } catch {
    return false;
  }
}

export interface OpenTokenStoreOptions {
  env?: NodeJS.ProcessEnv;
  /** Injected keychain: a KeytarLike to use it, null for none, undefined to load keytar if installed. */
  keytar?: KeytarLike | null;
}

/**
 * The OS keychain when one is usable, otherwise the file store — quietly, because no keychain is the normal case on
 * CI and agent machines. GUARD_AWS_TOKEN_STORE=file|keychain forces a backend (keychain fails loudly if unusable).
 */
export async function openTokenStore(opts: OpenTokenStoreOptions = {}): Promise<TokenStore> {
  const env = opts.env ?? process.env;
  const forced = env.GUARD_AWS_TOKEN_STORE;
  if (forced !== undefined && forced !== '' && forced !== 'file' && forced !== 'keychain') {
    throw new GuardError('config_invalid', `GUARD_AWS_TOKEN_STORE must be "file" or "keychain", not ${JSON.stringify(forced)}`);
  }
  const file = new FileTokenStore(tokenCacheDir(env));
  if (forced === 'file') return file;
  const keytar = opts.keytar === undefined ? await loadKeytar() : (opts.keytar ?? undefined);
  if (keytar && (await keychainUsable(keytar))) return new KeychainTokenStore(keytar);
  if (forced === 'keychain') {
    throw new GuardError('config_invalid', 'GUARD_AWS_TOKEN_STORE=keychain but no OS keychain is usable (keytar missing or no Secret Service)');
  }
  return file;
}
