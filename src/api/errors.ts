import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ERRORS, type ErrorCode, type WireGuardCode } from '../errors.js';

/**
 * The broker's error vocabulary on the wire (`{"error":{"code":…}}`, docs/openapi.yaml). It is closed: the
 * GuardError codes the broker answers with (those with an `http` status in src/errors.ts, e.g. `denied`,
 * `approval_closed`), plus the codes below that exist only on the wire. Each has one HTTP status and one
 * GuardError code a client raises for it, so its exit code follows from src/errors.ts. `bad_request` (the request
 * itself is malformed: body, query, path parameter or Authorization header; `field` names it) is GuardError
 * `usage` on the wire.
 */
export const BROKER_ONLY_ERRORS = {
  /** The aws invocation cannot be understood (the token at fault is named). */
  unparseable: { http: 400, client: 'parse' },
  unknown_target: { http: 400, client: 'usage' },
  unauthorized: { http: 401, client: 'auth_rejected' },
  invalid_token: { http: 401, client: 'auth_rejected' },
  token_expired: { http: 401, client: 'auth_rejected' },
  approval_required: { http: 403, client: 'denied' },
  transcript_signature_invalid: { http: 403, client: 'denied' },
  transcript_mismatch: { http: 403, client: 'denied' },
  /** No such endpoint, audit record or grant. */
  not_found: { http: 404, client: 'usage' },
  transcript_conflict: { http: 409, client: 'usage' },
  /** A transcript body chunk was sent at another offset than the broker has; `details.offset` is where to go on. */
  body_offset: { http: 409, client: 'usage' },
  /** A transcript was posted before the broker had its whole body (upload it first: PUT /v1/transcripts/{grant}/body). */
  transcript_body_missing: { http: 409, client: 'usage' },
  payload_too_large: { http: 413, client: 'usage' },
  sts_failed: { http: 502, client: 'broker_unreachable' },
  /** POST /v1/grants for a call the broker runs itself (execution `broker`): credentials never leave the broker. */
  execution_on_broker: { http: 403, client: 'denied' },
  /** A remote run was started, fed or cancelled twice, or after it ended. */
  run_state: { http: 409, client: 'usage' },
  /** The broker runs as many calls as its config allows (execution.maxConcurrent); try again shortly. */
  too_many_runs: { http: 429, client: 'broker_unreachable' },
  /**
   * An input uploaded for a run is not the blob the call was decided on (its SHA-256 or size differ from the
   * request's `blobs`): the run ends unstarted.
   */
  input_mismatch: { http: 409, client: 'denied' },
  /** The call cannot run on the broker (a local file it cannot carry over, a directory upload); names why. */
  run_unsupported: { http: 400, client: 'unsupported' },
  /** The broker cannot run aws itself (none installed there); the call cannot run anywhere. */
  execution_unavailable: { http: 503, client: 'broker_unreachable' },
} as const satisfies Record<string, { http: ContentfulStatusCode; client: ErrorCode }>;

export type BrokerOnlyCode = keyof typeof BROKER_ONLY_ERRORS;
/** Every code a broker of this version writes into an error body. */
export type BrokerErrorCode = WireGuardCode | BrokerOnlyCode;

/**
 * Codes older brokers wrote, and the code they became. A client still understands them (a newer CLI may talk to an
 * older broker); a broker never writes them.
 */
export const LEGACY_WIRE_CODES = {
  invalid_request: 'bad_request',
  record_not_found: 'not_found',
  grant_not_found: 'not_found',
  idp_unavailable: 'idp_unreachable',
  usage: 'bad_request',
} as const satisfies Record<string, BrokerErrorCode>;

const WIRE_GUARD: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.keys(ERRORS) as ErrorCode[]).flatMap((code) => {
    const e = ERRORS[code] as { http?: number; wire?: string };
    return e.http === undefined ? [] : [[e.wire ?? code, code] as const];
  }),
);

/** Every wire code, for docs/openapi.yaml's enum (test/broker/openapi.test.ts keeps them equal). */
export const BROKER_ERROR_CODES: readonly BrokerErrorCode[] = [
  ...(WIRE_GUARD.keys() as Iterable<WireGuardCode>),
  ...(Object.keys(BROKER_ONLY_ERRORS) as BrokerOnlyCode[]),
].sort();

export function isBrokerErrorCode(code: unknown): code is BrokerErrorCode {
  return typeof code === 'string' && (Object.hasOwn(BROKER_ONLY_ERRORS, code) || WIRE_GUARD.has(code));
}

/** The wire code in an answer, with legacy spellings mapped to today's; undefined when this version does not know it. */
export function wireCode(raw: unknown): BrokerErrorCode | undefined {
  if (typeof raw !== 'string') return undefined;
  const code = Object.hasOwn(LEGACY_WIRE_CODES, raw) ? LEGACY_WIRE_CODES[raw as keyof typeof LEGACY_WIRE_CODES] : raw;
  return isBrokerErrorCode(code) ? code : undefined;
}

/** HTTP status of a wire code. */
export function httpStatus(code: BrokerErrorCode): ContentfulStatusCode {
  if (Object.hasOwn(BROKER_ONLY_ERRORS, code)) return BROKER_ONLY_ERRORS[code as BrokerOnlyCode].http;
  const guard = WIRE_GUARD.get(code);
  // The type rules out unknown codes; one smuggled in by a cast is a bug: 500.
  return guard === undefined ? 500 : (ERRORS[guard] as { http: ContentfulStatusCode }).http;
}

/** The GuardError code a client raises for a wire code (and so its exit code). */
export function clientCode(code: BrokerErrorCode): ErrorCode {
  if (Object.hasOwn(BROKER_ONLY_ERRORS, code)) return BROKER_ONLY_ERRORS[code as BrokerOnlyCode].client;
  return WIRE_GUARD.get(code)!;
}

/** The wire code for a GuardError code, when the broker may answer with it. */
export function wireCodeOf(code: ErrorCode): WireGuardCode | undefined {
  const e = ERRORS[code] as { http?: number; wire?: string };
  return e.http === undefined ? undefined : ((e.wire ?? code) as WireGuardCode);
}
