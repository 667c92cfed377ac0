import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { GuardError } from '../errors.js';
import { groupsFrom } from './claims.js';
import type { Caller } from '../policy/types.js';

/**
 * Broker-side verification of bearer tokens (OIDC / RFC 9068 JWT access tokens, and workload tokens such as CI job
 * tokens). Everything a token claims is checked before it is believed:
 * - the signature, with an allow-list of asymmetric algorithms: never `none` and never HS* (a public key used as an
 *   HMAC secret would otherwise verify a forged token — RFC 8725 §2.1 and §3.1);
 * - `iss` exactly the configured issuer and `aud` containing the broker's audience (RFC 7519 §4.1.1, §4.1.3;
 *   RFC 9068 §4);
 * - `exp` and `nbf` with a small clock tolerance (RFC 7519 §4.1.4, §4.1.5), and `iat` not later than now plus that
 *   tolerance (RFC 7519 §4.1.6: the time the token was issued; jose checks it only with maxTokenAge, so it is done
 *   here — a token "issued" tomorrow was minted with a skewed or hostile clock and is refused);
 * - keys from the issuer's JWKS; an unknown `kid` triggers a refetch (key rotation, OIDC Core §10.1.1), at most once
 *   per cooldown so a flood of bogus kids cannot hammer the issuer.
 * Failures are GuardError('auth_rejected') with a one-line reason that never contains the token.
 */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'ES256', 'EdDSA', 'PS256']);

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  /** JWKS location; default: `jwks_uri` from the issuer's discovery document. */
  jwksUri?: string;
  /** A fixed key set instead of fetching one (tests, air-gapped issuers). */
  jwks?: JSONWebKeySet;
  algorithms?: string[];
  /** Seconds of allowed clock skew for exp/nbf. Default 30. */
  clockToleranceSec?: number;
  /** Claim carrying groups: an array of strings or a space/comma separated string. A dotted path reaches into objects. Default `groups`. */
  groupsClaim?: string;
  /** Require this JOSE `typ` header (e.g. `at+jwt` per RFC 9068 §4). Default: not checked, so CI job tokens (`JWT`) work. */
  requiredTyp?: string;
  /** Clock for exp/nbf (tests freeze it). */
  currentDate?: () => Date;
  fetch?: typeof fetch;
  /** Minimum milliseconds between JWKS refetches on an unknown kid. Default 30 000. */
  jwksCooldownMs?: number;
  /**
   * Claims every token must carry, each with the values allowed (globs, `*` within one value). Needed when the
   * issuer serves other tenants too — GitHub Actions issues tokens to every repository, for any audience — so
   * that only yours get in: `{ repository_owner: ['acme'], sub: ['repo:acme/*'] }`.
   */
  requiredClaims?: Record<string, string[]>;
}

export interface VerifiedCaller extends Caller {
  /** When the token stops being valid. */
  expiresAt?: Date;
  /** OAuth client the token was issued to (`client_id`, RFC 9068 §2.2), when present. */
  clientId?: string;
}

const MAX_TOKEN_LENGTH = 16 * 1024;

function reject(reason: string, cause?: unknown): GuardError {
  return new GuardError('auth_rejected', `token rejected: ${reason}`, cause === undefined ? {} : { cause });
}

function lookup(claims: JWTPayload, path: string): unknown {
  if (path in claims) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Groups from an array of strings, or a string separated by spaces or commas (as some IdPs send them). */
export { groupsFrom };

function checkAlgorithms(algs: string[]): string[] {
  if (algs.length === 0) throw new GuardError('config_invalid', 'token verifier: algorithms must not be empty');
  for (const a of algs) {
    // Symmetric and unsigned algorithms cannot be verified against a public JWKS; allowing them is the classic
    // algorithm-confusion hole (RFC 8725 §2.1).
    if (a === 'none' || /^HS/i.test(a)) throw new GuardError('config_invalid', `token verifier: algorithm ${a} is never allowed`);
  }
  return algs;
}

async function discoverJwksUri(issuer: string, f: typeof fetch): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await f(url, { headers: { accept: 'application/json' }, redirect: 'error' });
  } catch (e) {
    throw new GuardError('idp_unreachable', `cannot reach the identity provider at ${url}`, { cause: e });
  }
  const doc = (await res.json().catch(() => null)) as { issuer?: unknown; jwks_uri?: unknown } | null;
  if (!res.ok || !doc) throw new GuardError('idp_unreachable', `identity provider discovery failed at ${url}: HTTP ${res.status}`);
  // OIDC Discovery §4.3: the document's issuer must equal the issuer it was fetched for.
  if (doc.issuer !== issuer) throw new GuardError('config_invalid', `identity provider at ${url} says its issuer is ${String(doc.issuer)}, not ${issuer}`);
  if (typeof doc.jwks_uri !== 'string') throw new GuardError('idp_unreachable', `identity provider discovery at ${url} has no jwks_uri`);
  return doc.jwks_uri;
}

export function createTokenVerifier(opts: TokenVerifierOptions): (token: string) => Promise<VerifiedCaller> {
  const algorithms = checkAlgorithms(opts.algorithms ?? [...DEFAULT_ALGORITHMS]);
  const tolerance = opts.clockToleranceSec ?? 30;
  const groupsClaim = opts.groupsClaim ?? 'groups';
  const f = opts.fetch ?? fetch;
  const required = Object.entries(opts.requiredClaims ?? {}).map(
    ([claim, globs]) => [claim, globs.map((g) => new RegExp(`^${g.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`))] as const,
  );
  let keys: Promise<JWTVerifyGetKey> | undefined;

  const getKeys = (): Promise<JWTVerifyGetKey> => {
    keys ??= (async () => {
      if (opts.jwks) return createLocalJWKSet(opts.jwks);
      const uri = opts.jwksUri ?? (await discoverJwksUri(opts.issuer, f));
      return createRemoteJWKSet(new URL(uri), {
        cooldownDuration: opts.jwksCooldownMs ?? 30_000,
        cacheMaxAge: 10 * 60_000,
        timeoutDuration: 5_000,
        [customFetch]: (url: string, init: RequestInit) => f(url, init),
      });
    })();
    // A failed discovery is retried on the next call rather than cached forever.
    keys.catch(() => {
      keys = undefined;
    });
    return keys;
  };

  return async function verify(token: string): Promise<VerifiedCaller> {
    if (typeof token !== 'string' || token.length === 0) throw reject('no token');
    if (token.length > MAX_TOKEN_LENGTH) throw reject('token too large');
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) throw reject('not a signed JWT');
    const getKey = await getKeys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'sub'],
        ...(opts.requiredTyp ? { typ: opts.requiredTyp } : {}),
        ...(opts.currentDate ? { currentDate: opts.currentDate() } : {}),
      }));
    } catch (e) {
      throw describe(e, opts);
    }
    if (payload.iat !== undefined) {
      const nowSec = Math.floor((opts.currentDate ? opts.currentDate() : new Date()).getTime() / 1000);
      if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) throw reject('claim iat is missing or invalid');
      if (payload.iat > nowSec + tolerance) throw reject('token issued in the future');
    }
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.trim() === '') throw reject('no subject');
    for (const [claim, allowed] of required) {
      const v = lookup(payload, claim);
      if (typeof v !== 'string' || !allowed.some((re) => re.test(v))) throw reject(`claim ${claim} is not one the broker accepts`);
    }
    const groups = groupsFrom(lookup(payload, groupsClaim));
    const name = [payload.name, payload.preferred_username, payload.email].find((v): v is string => typeof v === 'string' && v !== '');
    return {
      subject,
      groups,
      ...(name ? { name } : {}),
      ...(typeof payload.exp === 'number' ? { expiresAt: new Date(payload.exp * 1000) } : {}),
      ...(typeof payload.client_id === 'string' ? { clientId: payload.client_id } : {}),
    };
  };
}

function describe(e: unknown, opts: TokenVerifierOptions): GuardError {
  if (e instanceof GuardError) return e;
  if (e instanceof joseErrors.JWTExpired) return reject('token expired', e);
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'iss':
        return reject(`issuer is not ${opts.issuer}`, e);
      case 'aud':
        return reject(`audience is not ${opts.audience}`, e);
      case 'nbf':
        return reject('token not yet valid', e);
      case 'iat':
        return reject('token issued in the future', e);
      case 'typ':
        return reject(`token type is not ${opts.requiredTyp}`, e);
      default:
        return reject(`claim ${e.claim} is missing or invalid`, e);
    }
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return reject('signing algorithm not allowed', e);
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return reject('signature does not verify', e);
  if (e instanceof joseErrors.JWKSNoMatchingKey) return reject("no matching key in the issuer's key set", e);
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return reject("ambiguous key in the issuer's key set", e);
  if (e instanceof joseErrors.JWKSTimeout || e instanceof joseErrors.JWKSInvalid || (e instanceof Error && e.name === 'TypeError')) {
    return new GuardError('idp_unreachable', "cannot fetch the issuer's signing keys", { cause: e });
  }
  if (e instanceof joseErrors.JOSENotSupported) return reject('unsupported token format or algorithm', e);
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return reject('malformed token', e);
  if (e instanceof joseErrors.JOSEError) return reject(e.code, e);
  return new GuardError('idp_unreachable', "cannot fetch the issuer's signing keys", { cause: e });
}
