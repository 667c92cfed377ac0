import type { Db } from '../../src/store/db.js';
import { GuardError } from '../../src/errors.js';
import { migratedSqlite } from '../helpers/postgres.js';
import type { ParsedInvocation } from '../../src/invocation/types.js';
import type { Caller, Decision } from '../../src/policy/types.js';
import { ApprovalService, type ApprovalServiceOptions } from '../../src/approvals/service.js';

/**
 * Hand-built parsed invocations: the approval service only reads the parse result (argv, region, permissions,
 * params…), so these stand in for parseInvocation's output without depending on the parser's progress.
 */
export function deleteBucket(bucket = 'prod-data', extra: Partial<ParsedInvocation> = {}): ParsedInvocation {
  const argv = ['s3api', 'delete-bucket', '--bucket', bucket];
  return {
    argv,
    canonicalArgv: argv,
    kind: 'api',
    command: 's3api',
    subcommand: 'delete-bucket',
    service: 's3',
    operation: 'DeleteBucket',
    apiCalls: ['DeleteBucket'],
    params: { Bucket: bucket },
    globals: {},
    region: 'us-east-1',
    permissions: [{ action: 's3:DeleteBucket', resources: [`arn:aws:s3:::${bucket}`], derived: true }],
    actions: ['s3:DeleteBucket'],
    resources: [`arn:aws:s3:::${bucket}`],
    accessLevels: { 's3:DeleteBucket': 'Write' },
    risks: ['write', 'destructive'],
    files: [],
    notes: [],
    ...extra,
  };
}

export const alice: Caller = { subject: 'alice', groups: ['developers', 'approvers'], name: 'Alice' };
export const bob: Caller = { subject: 'bob', groups: ['approvers'], name: 'Bob' };
export const carol: Caller = { subject: 'carol', groups: ['approvers', 'sre'] };
export const dave: Caller = { subject: 'dave', groups: ['developers'] };
export const erin: Caller = { subject: 'erin', groups: ['auditors'] };

export function approveDecision(count = 1, groups = ['approvers']): Decision {
  return {
    decision: 'approve',
    rule: 'destructive-needs-approval',
    reason: 'destructive calls need a second person',
    source: 'policies/default.yaml:12',
    approval: { groups, count },
  };
}

export class FakeClock {
  constructor(public ms = Date.parse('2026-11-25T12:00:00Z')) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A service on a fresh in-memory SQLite database, or on `db` (a PostgreSQL one, a shared file). */
export async function newService(opts: ApprovalServiceOptions = {}, given?: Db | string) {
  const db = typeof given === 'object' ? given : await migratedSqlite(given ?? ':memory:');
  const clock = new FakeClock();
  let n = 0;
  const service = new ApprovalService(db, { now: clock.now, newId: () => `apr_test${++n}`, ...opts });
  return { db, clock, service };
}

/** The code of the GuardError `fn` throws (any other error is rethrown; nothing thrown fails the test). */
export async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof GuardError) return e.code;
    throw e;
  }
  throw new Error('expected a GuardError, nothing was thrown');
}
