import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { GuardError } from '../errors.js';

/**
 * The broker's own signing key for the audit log.
 *
 * Algorithm: RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key ("RS256", RFC 7518 §3.3) — what CloudTrail
 * signs its digest files with (SHA256withRSA). Chosen over Ed25519 for the log because an auditor verifies
 * every record's signature: RSA verification (public exponent 65537) is ~4× faster than Ed25519's on the same
 * CPU, which keeps `audit verify` above 20,000 records/s; signing (once per record, at the broker) is slower
 * but far above any transcript rate. verifyChain also accepts Ed25519 keys ("EdDSA").
 *
 * Persistence: a PKCS#8 PEM file, mode 0600, created once with O_EXCL (two brokers starting together cannot
 * both write it). It is kept OUT of the database on purpose: whoever can only write the database cannot
 * re-sign a forged chain. Default path: `<database file>.audit-key.pem`.
 */
export type AuditAlg = 'RS256' | 'EdDSA';

export interface BrokerKey {
  alg: AuditAlg;
  /** First 16 hex digits of SHA-256 over the SubjectPublicKeyInfo DER: names the key in /v1/keys. */
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key, for `GET /v1/keys` and `audit verify --key`. */
  publicPem: string;
}

/** A public key's id: the first 16 hex digits of SHA-256 over its SubjectPublicKeyInfo DER. */
export function kidOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);
}

function fromPrivate(privateKey: KeyObject): BrokerKey {
  const publicKey = createPublicKey(privateKey);
  const type = privateKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ed25519') throw new GuardError('config_invalid', `audit key: unsupported key type ${type}`);
  return {
    alg: type === 'rsa' ? 'RS256' : 'EdDSA',
    kid: kidOf(publicKey),
    privateKey,
    publicKey,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }) as string,
  };
}

export function generateBrokerKey(alg: AuditAlg = 'RS256'): BrokerKey {
  const { privateKey } =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  return fromPrivate(privateKey);
}

/**
 * The public halves of every key the broker has signed the log with, oldest first: `<key file>.history.json`
 * (next to the key, out of the database like it). Kept so that records signed before a rotation can still be
 * verified, also when the old private key is gone; served by `GET /v1/keys`.
 */
export interface PublicKeyEntry {
  kid: string;
  alg: AuditAlg;
  pem: string;
  /**
   * When this key entered the history (ISO 8601): from then on it may sign records. Absent in histories written
   * before it existed. With several brokers the history file is copied from the broker that made the key.
   */
  addedAt?: string;
}

export function historyPath(keyPath: string): string {
  return `${keyPath}.history.json`;
}

export function readKeyHistory(keyPath: string): PublicKeyEntry[] {
  const p = historyPath(keyPath);
  if (!existsSync(p)) return [];
  try {
    const list = JSON.parse(readFileSync(p, 'utf8')) as PublicKeyEntry[];
    if (!Array.isArray(list)) throw new Error('not a list');
    // Each entry must be a public key whose kid is what the entry says.
    for (const e of list) if (kidOf(createPublicKey({ key: e.pem, format: 'pem' })) !== e.kid) throw new Error(`kid ${e.kid} does not match its key`);
    return list;
  } catch (e) {
    throw new GuardError('config_invalid', `audit key history ${p} is damaged: ${(e as Error).message}`);
  }
}

/** Adds `key`'s public half to the history (once), replacing the file atomically. */
export function recordKeyInHistory(keyPath: string, key: BrokerKey): PublicKeyEntry[] {
  const list = readKeyHistory(keyPath);
  if (list.some((e) => e.kid === key.kid)) return list;
  const next = [...list, { kid: key.kid, alg: key.alg, pem: key.publicPem, addedAt: new Date().toISOString() }];
  const tmp = `${historyPath(keyPath)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, historyPath(keyPath));
  return next;
}

/**
 * Starts a new signing key at `path` for an explicit rotation: an existing key file is kept as
 * `<path>.retired-<kid>` (0600), never deleted. The caller records the rotation in the chain.
 */
export function replaceBrokerKey(path: string, alg: AuditAlg = 'RS256'): { key: BrokerKey; previous: BrokerKey | undefined } {
  let previous: BrokerKey | undefined;
  if (existsSync(path)) {
    previous = loadOrCreateBrokerKey(path, alg);
    renameSync(path, `${path}.retired-${previous.kid}`);
  }
  return { key: loadOrCreateBrokerKey(path, alg), previous };
}

/** Loads the key at `path`, creating it (0600, exclusive) the first time. */
export function loadOrCreateBrokerKey(path: string, alg: AuditAlg = 'RS256'): BrokerKey {
  if (!existsSync(path)) {
    const key = generateBrokerKey(alg);
    const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new GuardError('config_invalid', `audit key: cannot create ${path}: ${(e as NodeJS.ErrnoException).code}`);
      }
      return loadOrCreateBrokerKey(path, alg);
    }
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return key;
  }
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new GuardError('config_invalid', `audit key: ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  try {
    return fromPrivate(createPrivateKey({ key: readFileSync(path, 'utf8'), format: 'pem' }));
  } catch (e) {
    if (isGuardErrorLike(e)) throw e;
    throw new GuardError('config_invalid', `audit key: ${path} is not a PEM private key`);
  }
}

function isGuardErrorLike(e: unknown): boolean {
  return e instanceof GuardError;
}

/**
 * Reads a public key for offline verification: SPKI PEM ("BEGIN PUBLIC KEY"), a JWK (JSON), the JSON of
 * `GET /v1/keys`, or a raw Ed25519 key as base64url.
 */
export function parsePublicKey(text: string): KeyObject {
  return parsePublicKeys(text)[0]!;
}

/**
 * Every public key in `text`: all keys of a `GET /v1/keys` document (current and earlier ones, so a log that went
 * through a key rotation verifies), several PEM blocks one after another, or one key in any form parsePublicKey
 * reads.
 */
export function parsePublicKeys(text: string): KeyObject[] {
  const s = text.trim();
  try {
    if (s.startsWith('{')) {
      const j = JSON.parse(s) as { keys?: { pem?: string; jwk?: object }[] };
      if (Array.isArray(j.keys) && j.keys.length > 1) {
        return j.keys.map((k) => (k.pem ? createPublicKey({ key: k.pem, format: 'pem' }) : createPublicKey({ key: k.jwk as never, format: 'jwk' })));
      }
    } else {
      const blocks = s.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g);
      if (blocks && blocks.length > 1) return blocks.map((b) => createPublicKey({ key: b, format: 'pem' }));
    }
  } catch {
    // fall through to the single-key reading and its one error
  }
  return [parseOnePublicKey(s)];
}

function parseOnePublicKey(text: string): KeyObject {
  const s = text.trim();
  try {
    if (s.startsWith('{')) {
      const j = JSON.parse(s) as { keys?: { pem?: string; jwk?: object }[] } & Record<string, unknown>;
      if (Array.isArray(j.keys) && j.keys[0]) {
        const k = j.keys[0];
        if (k.pem) return createPublicKey({ key: k.pem, format: 'pem' });
        if (k.jwk) return createPublicKey({ key: k.jwk as never, format: 'jwk' });
      }
      return createPublicKey({ key: j as never, format: 'jwk' });
    }
    if (s.includes('-----BEGIN')) return createPublicKey({ key: s, format: 'pem' });
    if (/^[A-Za-z0-9_-]{43}$/.test(s)) return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: s }, format: 'jwk' });
  } catch {
    // fall through to the one error below
  }
  throw new GuardError('usage', 'audit key: not a PEM public key, a JWK, GET /v1/keys output or a base64url Ed25519 key');
}

export const RECORD_LABEL = 'guard-aws audit record v1\n';
const HEAD_LABEL = 'guard-aws audit head v1\n';
const EXPORT_LABEL = 'guard-aws audit export v1\n';

/**
 * Signs what an export claims about itself (its header — `since`, `exportedAt` — the first record's position and
 * the head), so a file cannot be turned into a "partial" export by cutting its first records and adding `since`,
 * nor re-dated. The label keeps export, record and head signatures from being swapped for one another.
 */
export function signExport(key: KeyObject, text: string): string {
  return sign(algOf(key), Buffer.from(EXPORT_LABEL + text, 'utf8'), key).toString('base64url');
}

export function verifyExport(key: KeyObject, text: string, sig: unknown): boolean {
  try {
    const bytes = typeof sig === 'string' ? canonicalBase64url(sig) : null;
    return !!bytes && verify(algOf(key), Buffer.from(EXPORT_LABEL + text, 'utf8'), key, bytes);
  } catch {
    return false;
  }
}

function algOf(key: KeyObject): 'sha256' | null {
  return key.asymmetricKeyType === 'rsa' ? 'sha256' : null;
}

/** Signs a record hash (hex). The label keeps record and head signatures from being swapped for each other. */
export function signRecordHash(key: KeyObject, hashHex: string): string {
  return sign(algOf(key), Buffer.from(RECORD_LABEL + hashHex, 'utf8'), key).toString('base64url');
}

/**
 * Decodes a signature only when it is the canonical base64url of its bytes. Node's decoder ignores the unused low
 * bits of the last character (RFC 4648 §3.5 allows decoders to), so "...A" and "...B" can carry the same
 * signature: a flipped bit in a stored record would then go unnoticed. Canonical or nothing.
 */
export function canonicalBase64url(text: string): Buffer | null {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

export function verifyRecordHash(key: KeyObject, hashHex: string, sig: string): boolean {
  try {
    const bytes = canonicalBase64url(sig);
    if (!bytes) return false;
    return verify(algOf(key), Buffer.from(RECORD_LABEL + hashHex, 'utf8'), key, bytes);
  } catch {
    return false;
  }
}

export function signHead(key: KeyObject, seq: number, hashHex: string): string {
  return sign(algOf(key), Buffer.from(`${HEAD_LABEL}${seq}\n${hashHex}`, 'utf8'), key).toString('base64url');
}

export function verifyHead(key: KeyObject, seq: number, hashHex: string, sig: string): boolean {
  try {
    const bytes = canonicalBase64url(sig);
    if (!bytes) return false;
    return verify(algOf(key), Buffer.from(`${HEAD_LABEL}${seq}\n${hashHex}`, 'utf8'), key, bytes);
  } catch {
    return false;
  }
}

/** `GET /v1/keys` body: the current key first, then earlier keys (newest first) that signed older records. */
export function publicKeysDocument(
  key: BrokerKey,
  earlier: readonly PublicKeyEntry[] = [],
): { keys: { kid: string; alg: AuditAlg; use: 'audit'; pem: string; jwk: object; current: boolean; addedAt?: string }[] } {
  const rest = [...earlier].reverse().filter((e) => e.kid !== key.kid);
  const since = (e: PublicKeyEntry | undefined) => (e?.addedAt ? { addedAt: e.addedAt } : {});
  return {
    keys: [
      { kid: key.kid, alg: key.alg, use: 'audit', pem: key.publicPem, jwk: key.publicKey.export({ format: 'jwk' }), current: true, ...since(earlier.find((e) => e.kid === key.kid)) },
      ...rest.map((e) => ({ kid: e.kid, alg: e.alg, use: 'audit' as const, pem: e.pem, jwk: createPublicKey({ key: e.pem, format: 'pem' }).export({ format: 'jwk' }), current: false, ...since(e) })),
    ],
  };
}
