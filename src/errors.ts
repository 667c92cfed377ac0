import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { EXIT, type ExitCode } from './exit-codes.js';
import { visible } from './terminal-text.js';

/**
 * Every GuardError code, in one table: its exit code and, for the codes the broker answers with, the HTTP status
 * (and the wire code when it differs; `src/api/errors.ts` holds the codes only the broker uses). Callers branch on
 * `code`, never on message text. Exit codes and statuses live here and nowhere else: a command sets an exit code
 * from `EXIT` or from this table, a broker route gets its status from the code (`ApiError`).
 */
export const ERRORS = {
  // On the wire `bad_request`: the request itself is malformed (body, query, path, Authorization header).
  usage: { exit: EXIT.USAGE, http: 400, wire: 'bad_request' },
  parse: { exit: EXIT.USAGE },
  unsupported: { exit: EXIT.USAGE },
  auth_required: { exit: EXIT.AUTH },
  auth_rejected: { exit: EXIT.AUTH },
  auth_expired: { exit: EXIT.AUTH },
  broker_unreachable: { exit: EXIT.UNAVAILABLE },
  idp_unreachable: { exit: EXIT.UNAVAILABLE, http: 503 },
  // The broker's database (SQLite file or PostgreSQL) cannot be reached: the broker fails closed, another may answer.
  store_unavailable: { exit: EXIT.UNAVAILABLE, http: 503 },
  aws_not_found: { exit: EXIT.UNAVAILABLE },
  approval_pending: { exit: EXIT.PENDING, http: 409 },
  approval_timeout: { exit: EXIT.PENDING },
  denied: { exit: EXIT.DENIED, http: 403 },
  // Approvals (src/approvals): a refused use or decision is a denial; an expired approval means ask again (75).
  approval_denied: { exit: EXIT.DENIED, http: 403 },
  // An id the broker does not know cannot be used or decided either: a denial too, like a used or closed one.
  approval_not_found: { exit: EXIT.DENIED, http: 404 },
  approval_expired: { exit: EXIT.PENDING, http: 409 },
  approval_mismatch: { exit: EXIT.DENIED, http: 403 },
  approval_used: { exit: EXIT.DENIED, http: 409 },
  approval_closed: { exit: EXIT.DENIED, http: 409 },
  approval_duplicate: { exit: EXIT.DENIED, http: 409 },
  self_approval: { exit: EXIT.DENIED, http: 403 },
  not_approver: { exit: EXIT.DENIED, http: 403 },
  forbidden: { exit: EXIT.DENIED, http: 403 },
  policy_too_large: { exit: EXIT.DENIED, http: 403 },
  policy_invalid: { exit: EXIT.CONFIG },
  config_invalid: { exit: EXIT.CONFIG },
  // A disk that cannot take the transcript (read-only, full, I/O error) is the machine's problem, not a bug.
  local_io: { exit: EXIT.IOERR },
  internal: { exit: EXIT.INTERNAL, http: 500 },
  interrupted: { exit: EXIT.INTERRUPTED },
  audit_broken: { exit: EXIT.DATAERR },
  // Another key signs the audit chain now (a rotation on another broker): this broker refuses to sign with its
  // retired key until the current key file is deployed to it (src/audit/key-guard.ts). Fail closed, try another.
  audit_key_retired: { exit: EXIT.UNAVAILABLE, http: 503 },
} as const satisfies Record<string, { exit: ExitCode; http?: ContentfulStatusCode; wire?: string }>;

/** A closed union: `new GuardError('no_such_code', …)` does not compile. */
export type ErrorCode = keyof typeof ERRORS;

type Entry<C extends ErrorCode> = (typeof ERRORS)[C];
/** The GuardError codes the broker may answer with, under the name it writes on the wire. */
export type WireGuardCode = {
  [C in ErrorCode]: Entry<C> extends { http: number } ? (Entry<C> extends { wire: infer W extends string } ? W : C) : never;
}[ErrorCode];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

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
    // The type rules out unknown codes; one smuggled in by a cast is a bug (70), never a silent success.
    return isErrorCode(this.code) ? ERRORS[this.code].exit : EXIT.INTERNAL;
  }
}

export function isGuardError(e: unknown): e is GuardError {
  return e instanceof GuardError;
}

/** Exit code for any thrown value: GuardErrors map by code, anything else is a bug (70). */
export function exitCodeFor(e: unknown): ExitCode {
  return isGuardError(e) ? e.exitCode : EXIT.INTERNAL;
}

/**
 * One line, safe to print: newlines folded so an error never spans lines, and every other control character
 * (an argv token quoted in a parse error, a reason from the broker) shown as an escape (src/terminal-text.ts).
 */
export function oneLine(message: string): string {
  return visible(message.replace(/\s*[\r\n]+\s*/g, ' ').trim());
}
