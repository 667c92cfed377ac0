import type { Db } from './db.js';
import type { Effect } from '../policy/types.js';

/**
 * What the broker keeps about every grant and every refusal. Never credentials, never tokens: a record holds
 * who asked, for what, what was decided and the session policy — enough for an auditor, useless to an attacker.
 */
export interface GrantRecord {
  /** Grant id (also the `guard-aws:grant` session tag on the STS session). */
  id: string;
  /** ISO-8601 time the grant was issued. */
  createdAt: string;
  subject: string;
  groups: string[];
  name?: string | null;
  /** Canonical argv the grant is for, with secret parameter values masked. */
  argv: string[];
  target: string;
  account: string;
  region: string;
  decision: Effect;
  rule: string | null;
  reason: string;
  /** Unique IAM actions the session policy allows. */
  actions: string[];
  /** The exact session policy sent to STS. */
  sessionPolicy: string;
  roleSessionName: string;
  sourceIdentity: string;
  /** ISO-8601 expiry of the issued session. */
  expiresAt: string;
  /** Ed25519 public key (base64url) the client signs this run's transcript with. */
  transcriptKey: string;
  approvalId?: string | null;
  requestId?: string | null;
}

/** Why a request was refused: stable codes matching the HTTP error codes. */
export type RefusalCode =
  | 'denied'
  | 'approval_required'
  | 'unparseable'
  | 'unknown_target'
  | 'policy_too_large'
  | 'sts_failed'
  | (string & {});

export interface RefusalRecord {
  id: string;
  createdAt: string;
  subject: string;
  groups: string[];
  /** As sent (canonical when parsing succeeded), secret parameter values masked. */
  argv: string[];
  /** Target name as resolved (or as requested when unknown). */
  target: string | null;
  code: RefusalCode;
  /** Policy effect when a decision was reached. */
  decision: Effect | null;
  rule: string | null;
  reason: string;
  requestId?: string | null;
}

/** Each field narrows the list when it is not undefined (query parameters are passed straight through). */
export interface ListFilter {
  subject?: string | undefined;
  target?: string | undefined;
  /** ISO-8601 lower bound (inclusive) on createdAt. */
  since?: string | undefined;
  /** Newest first; default 100, at most 10,000. */
  limit?: number;
}

/**
 * Storage behind the broker. Approvals, the audit log and console sessions live in the same
 * database: they reach it through `db` (the SQL port of src/store/db.ts); src/broker/storage.ts migrates them all.
 */
export interface BrokerStore {
  recordGrant(rec: GrantRecord): Promise<void>;
  recordRefusal(rec: RefusalRecord): Promise<void>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  listGrants(filter?: ListFilter): Promise<GrantRecord[]>;
  listRefusals(filter?: ListFilter): Promise<RefusalRecord[]>;
  close(): Promise<void>;
  /** The database behind it (SQLite or PostgreSQL): approvals, the audit log and console sessions share it. */
  readonly db: Db;
}
