import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import type { Transcript, TranscriptEnvelope } from './types.js';

/**
 * Domain separation: the signed bytes start with a fixed label so a transcript signature can never be
 * replayed as a signature over some other guard-aws message made with the same key.
 */
export const SIGNING_PREFIX = 'guard-aws transcript v1\n';

/** A key pair made for one grant. `publicKey` is what goes into GrantRequest.transcriptKey. */
export interface TranscriptKey {
  /** base64url of the raw 32-byte Ed25519 public key (RFC 8032 §5.1.5 encoding). */
  publicKey: string;
  privateKey: KeyObject;
}

export function createTranscriptKey(): TranscriptKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: rawPublicKey(publicKey), privateKey };
}

/** base64url raw 32-byte public key, read from the JWK form (its `x` member is exactly that, RFC 8037 §2). */
export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as { x?: string; crv?: string };
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new TypeError('not an Ed25519 key');
  return jwk.x;
}

/** Builds a KeyObject from a base64url raw Ed25519 public key; throws TypeError when it is not one. */
export function publicKeyFromRaw(raw: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(raw)) throw new TypeError('transcript key must be 32 bytes, base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }) as string;
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem' });
}

export function signedBytes(t: Transcript): Buffer {
  return Buffer.from(SIGNING_PREFIX + canonicalJson(t), 'utf8');
}

export function signTranscript(t: Transcript, privateKey: KeyObject): TranscriptEnvelope {
  // Ed25519 signs the message itself (pure EdDSA, RFC 8032 §5.1.6): the digest argument must be null.
  const sig = sign(null, signedBytes(t), privateKey).toString('base64url');
  return { transcript: t, alg: 'Ed25519', sig };
}

/**
 * True only when `env.sig` is a valid Ed25519 signature by `publicKey` (KeyObject or base64url raw) over the
 * canonical form of `env.transcript`. Any malformed input is simply `false`.
 */
export function verifyTranscript(env: TranscriptEnvelope, publicKey: KeyObject | string): boolean {
  try {
    if (!env || env.alg !== 'Ed25519' || typeof env.sig !== 'string') return false;
    const key = typeof publicKey === 'string' ? publicKeyFromRaw(publicKey) : publicKey;
    const sig = Buffer.from(env.sig, 'base64url');
    // Canonical encoding only: the decoder ignores the last character's unused bits (see canonicalBase64url).
    if (sig.length !== 64 || sig.toString('base64url') !== env.sig) return false;
    return verify(null, signedBytes(env.transcript), key, sig);
  } catch {
    return false;
  }
}
