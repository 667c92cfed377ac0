/**
 * Every exit code guard-aws can return, in one place (sysexits.h numbering, as gh and many Unix tools do).
 * When the real `aws` runs, its own exit code is passed through unchanged instead.
 * The README's "Exit codes" table is written from this list; keep them in step.
 */
export const EXIT = {
  OK: 0,
  /** `policy test`: at least one test case did not hold (like a test runner; not a sysexits code). */
  TEST_FAILED: 1,
  /** Usage error, or an `aws` invocation that cannot be understood (EX_USAGE). */
  USAGE: 64,
  /** Authentication required, expired or rejected (EX_NOUSER). */
  AUTH: 67,
  /** The broker, the identity provider or the real `aws` program cannot be reached (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** Data failed verification, e.g. `audit verify` found a broken chain (EX_DATAERR). */
  DATAERR: 65,
  /** A local disk problem: the transcript spool cannot be written (read-only, full, I/O error) (EX_IOERR). */
  IOERR: 74,
  /** A bug in guard-aws itself (EX_SOFTWARE). */
  INTERNAL: 70,
  /** Approval pending or timed out; try again later (EX_TEMPFAIL). */
  PENDING: 75,
  /** Denied by a policy, the broker or an approver (EX_NOPERM). */
  DENIED: 77,
  /** Configuration error, e.g. an invalid policy or config file (EX_CONFIG). */
  CONFIG: 78,
  /** Interrupted by Ctrl-C before aws ran (128 + SIGINT, what a shell reports); whatever was opened is withdrawn. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
