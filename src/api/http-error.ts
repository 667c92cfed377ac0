import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isGuardError, type GuardError } from '../errors.js';
import { httpStatus, wireCodeOf, type BrokerErrorCode } from './errors.js';
import type { ErrorResponse } from './types.js';

/**
 * An answer other than 2xx that a handler or middleware chose deliberately: the one HTTP error type. Its status
 * follows from its code (src/api/errors.ts). Its message is shown to the client, so it must never carry internals
 * or secrets; anything else thrown becomes a generic 500.
 */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: BrokerErrorCode,
    message: string,
    readonly extra: Omit<ErrorResponse['error'], 'code' | 'message'> = {},
    /** `status` only where a code covers several (hono's own 4xx for an unreadable request). */
    options: { headers?: Record<string, string>; status?: ContentfulStatusCode } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = options.status ?? httpStatus(code);
    this.headers = options.headers ?? {};
  }

  body(): ErrorResponse {
    return { error: { code: this.code, message: this.message, ...this.extra } };
  }

  /**
   * A GuardError from a module the broker mounts (approvals, audit) as the answer it stands for, under its wire
   * code; undefined when the code is not one the broker answers with (then it is a bug: 500).
   */
  static fromGuardError(e: GuardError, extra: Omit<ErrorResponse['error'], 'code' | 'message'> = {}): ApiError | undefined {
    // `internal` is a bug whose message may name internals: it goes to the error handler's generic 500 instead;
    // `store_unavailable` names the database: the error handler answers it with a message of its own (503).
    const code = e.code === 'internal' || e.code === 'store_unavailable' ? undefined : wireCodeOf(e.code);
    return code === undefined ? undefined : new ApiError(code, e.message, extra);
  }
}

/** A refusal from a mounted module (a GuardError the broker answers with) as its ApiError; anything else is rethrown. */
export function refusal(e: unknown, extra: Omit<ErrorResponse['error'], 'code' | 'message'> = {}): ApiError {
  const answer = isGuardError(e) ? ApiError.fromGuardError(e, extra) : undefined;
  if (answer) return answer;
  throw e;
}
