import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ApiError } from '../api/http-error.js';
import { isGuardError } from '../errors.js';

/**
 * HTTP status for each approval refusal. The body's `code` is the GuardError code itself, so a client maps it
 * back to the same exit code (BrokerClient.brokerError).
 */
const STATUS: Record<string, ContentfulStatusCode> = {
  usage: 400,
  approval_not_found: 404,
  forbidden: 403,
  self_approval: 403,
  not_approver: 403,
  approval_mismatch: 403,
  approval_denied: 403,
  approval_pending: 409,
  approval_closed: 409,
  approval_used: 409,
  approval_expired: 409,
  approval_duplicate: 409,
};

/** A GuardError from the approval service as an ApiError (message is safe to show); anything else is rethrown. */
export function toApiError(e: unknown, extra: ConstructorParameters<typeof ApiError>[3] = {}): ApiError {
  if (isGuardError(e)) {
    const status = STATUS[e.code];
    if (status !== undefined) return new ApiError(status, e.code, e.message, extra);
  }
  throw e;
}
