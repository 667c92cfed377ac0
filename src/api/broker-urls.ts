import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../config/paths.js';

/**
 * Several brokers behind one name (docs/deployment.md): `GUARD_AWS_BROKER`, `--broker` and the login's saved broker
 * may list several URLs, comma-separated ("https://a.example,https://b.example"). They are one service: the same
 * database, the same identity provider, the same login. This module decides which URL a request goes to first,
 * and whether a failed request may go to the next one.
 *
 * The failover rule (README "Several brokers"; SECURITY.md):
 * - An idempotent request — any GET, and POST /v1/transcripts (the broker records one transcript per grant and
 *   answers `already_recorded` to a second upload) — is tried on the next URL when a broker cannot be reached, its
 *   connection broke, or it answered 502/503/504.
 * - Any other request (POST /v1/grants, POST /v1/runs, approval votes and withdrawals …) is tried on the next URL
 *   ONLY when it provably never reached a broker: the connection was refused, the name did not resolve, the
 *   network/host was unreachable, the connect or TLS handshake did not complete — in each case before a byte of the
 *   request was written. Once written, a broken answer is final (exit 69): the broker may have issued the grant,
 *   and asking another broker would issue a second one.
 */

/** A broker setting split into its URLs (empty items dropped). Normalisation is client-config's job. */
export function brokerUrls(setting: string): string[] {
  return setting
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Whether the request may be sent to another broker after it reached one (see the rule above). */
export function idempotent(method: string, path: string): boolean {
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') return true;
  const route = path.replace(/^\/+/, '').split('?')[0]!;
  // One transcript per grant (the broker deduplicates): sending it twice records it once.
  if (m === 'POST' && route === 'v1/transcripts') return true;
  // A body chunk names its offset: a repeat of one the broker already holds is answered 409 body_offset with the
  // broker's offset, and the upload goes on from there (src/audit/bodies/uploads.ts).
  return m === 'PUT' && /^v1\/transcripts\/[^/]+\/body$/.test(route);
}

/**
 * Network error codes that happen before the request is written: no broker saw it. Used for a transport that
 * cannot tell us itself whether the socket connected (an injected fetch); nodeHttpSend marks its errors `unsent`
 * from the socket's own state instead.
 */
const UNSENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);

/** True when the error says the request never left this machine (safe to send to another broker). */
export function neverSent(e: unknown): boolean {
  if ((e as { unsent?: unknown })?.unsent === true) return true;
  if ((e as { unsent?: unknown })?.unsent === false) return false;
  const code = (e as { code?: string })?.code ?? (e as { cause?: { code?: string } })?.cause?.code;
  return typeof code === 'string' && UNSENT_CODES.has(code);
}

/**
 * How long a broker that answered stays first in line after another URL of the list failed. Each guarded call is
 * its own process, so the choice is kept in a small cache file: without it every call would first wait for the
 * dead broker (a refused connect is instant, an unanswered SYN costs the connect timeout). Short, so traffic goes
 * back to the first URL soon after its broker is back.
 */
export const HEALTHY_TTL_MS = 60_000;

/** Per process, so several requests of one call agree without reading the file again. */
const remembered = new Map<string, { url: string; until: number }>();

interface PickFile {
  list: string;
  url: string;
  until: number;
}

function pickPath(env: NodeJS.ProcessEnv): string {
  return join(cacheDir(env), 'broker-pick.json');
}

/**
 * The URLs in the order to try them: the remembered healthy one first (while fresh), then the list in its order.
 * One URL: nothing is read.
 */
export function orderUrls(urls: readonly string[], env: NodeJS.ProcessEnv, now: number): string[] {
  if (urls.length < 2) return [...urls];
  const key = urls.join(',');
  let pick = remembered.get(key);
  if (!pick) {
    try {
      const f = JSON.parse(readFileSync(pickPath(env), 'utf8')) as PickFile;
      if (f && f.list === key && typeof f.url === 'string' && typeof f.until === 'number') pick = { url: f.url, until: f.until };
    } catch {
      // No file, or a damaged one: a cache, so the list's own order.
    }
  }
  // A clock set back must not keep a choice for ever: `until` more than one TTL ahead is ignored too.
  if (!pick || pick.until <= now || pick.until > now + HEALTHY_TTL_MS || !urls.includes(pick.url)) return [...urls];
  return [pick.url, ...urls.filter((u) => u !== pick!.url)];
}

/**
 * Remembers that `url` answered after an earlier URL of the list failed (or forgets the choice when the first URL
 * answered again). Writing is best effort: a cache that cannot be written costs time, never correctness.
 */
export function rememberHealthy(urls: readonly string[], url: string, env: NodeJS.ProcessEnv, now: number): void {
  if (urls.length < 2) return;
  const key = urls.join(',');
  const pick = { url, until: now + HEALTHY_TTL_MS };
  remembered.set(key, pick);
  try {
    const dir = cacheDir(env);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${pickPath(env)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ list: key, ...pick } satisfies PickFile)}\n`, { mode: 0o600 });
    renameSync(tmp, pickPath(env));
  } catch {
    // best effort (see above)
  }
}

/** Tests: forget what this process remembered. */
export function forgetHealthy(): void {
  remembered.clear();
}
