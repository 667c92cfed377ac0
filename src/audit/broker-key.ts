import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
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

function fromPrivate(privateKey: KeyObject): BrokerKey {
  const publicKey = createPublicKey(privateKey);
  const type = privateKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ed25519') throw new GuardError('config_invalid', `audit key: unsupported key type ${type}`);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    alg: type === 'rsa' ? 'RS256' : 'EdDSA',
    kid: createHash('sha256').update(der).digest('hex').slice(0, 16),
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

/** `GET /v1/keys` body. */
export function publicKeysDocument(key: BrokerKey): { keys: { kid: string; alg: AuditAlg; use: 'audit'; pem: string; jwk: object }[] } {
  return {
    keys: [{ kid: key.kid, alg: key.alg, use: 'audit', pem: key.publicPem, jwk: key.publicKey.export({ format: 'jwk' }) }],
  };
}
