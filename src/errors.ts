import { EXIT, type ExitCode } from './exit-codes.js';

/**
 * Stable error codes. Callers branch on `code`, never on message text. The mapping to exit codes lives here
 * and nowhere else.
 */
export const ERROR_EXIT: Record<string, ExitCode> = {
  usage: EXIT.USAGE,
  parse: EXIT.USAGE,
  unsupported: EXIT.USAGE,
  auth_required: EXIT.AUTH,
  auth_rejected: EXIT.AUTH,
  auth_expired: EXIT.AUTH,
  broker_unreachable: EXIT.UNAVAILABLE,
  idp_unreachable: EXIT.UNAVAILABLE,
  aws_not_found: EXIT.UNAVAILABLE,
  approval_pending: EXIT.PENDING,
  approval_timeout: EXIT.PENDING,
  denied: EXIT.DENIED,
  approval_denied: EXIT.DENIED,
  // Approvals (src/approvals): a refused use or decision is a denial; an expired approval means ask again (75).
  approval_not_found: EXIT.USAGE,
  approval_expired: EXIT.PENDING,
  approval_mismatch: EXIT.DENIED,
  approval_used: EXIT.DENIED,
  approval_closed: EXIT.DENIED,
  approval_duplicate: EXIT.DENIED,
  self_approval: EXIT.DENIED,
  not_approver: EXIT.DENIED,
  forbidden: EXIT.DENIED,
  policy_too_large: EXIT.DENIED,
  policy_invalid: EXIT.CONFIG,
  config_invalid: EXIT.CONFIG,
  // A disk that cannot take the transcript (read-only, full, I/O error) is the machine's problem, not a bug.
  local_io: EXIT.IOERR,
  internal: EXIT.INTERNAL,
  audit_broken: EXIT.DATAERR,
};

export type ErrorCode = keyof typeof ERROR_EXIT & string;

export interface GuardErrorOptions {
  cause?: unknown;
  /** Structured, secret-free facts for `--json` output and tests (rule id, token index, file:line…). */
  details?: Record<string, unknown>;
}

export class GuardError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GuardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GuardError';
    this.code = code;
    this.details = options.details ?? {};
  }

  get exitCode(): ExitCode {
    return ERROR_EXIT[this.code] ?? EXIT.INTERNAL;
  }
}

export function isGuardError(e: unknown): e is GuardError {
  return e instanceof GuardError;
}

/** Exit code for any thrown value: GuardErrors map by code, anything else is a bug (70). */
export function exitCodeFor(e: unknown): ExitCode {
  return isGuardError(e) ? e.exitCode : EXIT.INTERNAL;
}

/** One line, safe to print: newlines folded so an error never spans lines. */
export function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
