import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { GuardError } from '../errors.js';
import { migrate } from './migrate.js';
import type { BrokerStore, GrantRecord, ListFilter, RefusalRecord } from './types.js';

/** The broker's own tables. Append a new string to change the schema; never edit a shipped one. */
const BROKER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE grants (
     id               TEXT PRIMARY KEY,
     created_at       TEXT NOT NULL,
     subject          TEXT NOT NULL,
     groups_json      TEXT NOT NULL,
     name             TEXT,
     argv_json        TEXT NOT NULL,
     target           TEXT NOT NULL,
     account          TEXT NOT NULL,
     region           TEXT NOT NULL,
     decision         TEXT NOT NULL,
     rule             TEXT,
     reason           TEXT NOT NULL,
     actions_json     TEXT NOT NULL,
     session_policy   TEXT NOT NULL,
     role_session     TEXT NOT NULL,
     source_identity  TEXT NOT NULL,
     expires_at       TEXT NOT NULL,
     transcript_key   TEXT NOT NULL,
     approval_id      TEXT,
     request_id       TEXT
   ) STRICT;
   CREATE INDEX grants_subject ON grants (subject, created_at);
   CREATE INDEX grants_created ON grants (created_at);
   CREATE TABLE refusals (
     id           TEXT PRIMARY KEY,
     created_at   TEXT NOT NULL,
     subject      TEXT NOT NULL,
     groups_json  TEXT NOT NULL,
     argv_json    TEXT NOT NULL,
     target       TEXT,
     code         TEXT NOT NULL,
     decision     TEXT,
     rule         TEXT,
     reason       TEXT NOT NULL,
     request_id   TEXT
   ) STRICT;
   CREATE INDEX refusals_created ON refusals (created_at);`,
];

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. Parent directories are created (mode 0700). */
  path: string;
}

/** Opens (creating and migrating as needed) the broker's SQLite store. */
export function openSqliteStore(options: SqliteStoreOptions): BrokerStore {
  let db: Database;
  try {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
    db = new BetterSqlite3(options.path);
    // WAL: readers (approvers, auditors) never block the writer, and a crash loses at most the last commit.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
  } catch (e) {
    throw new GuardError('config_invalid', `storage: cannot open SQLite database ${options.path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  migrate(db, 'broker', BROKER_MIGRATIONS);

  const insGrant = db.prepare(`INSERT INTO grants (id, created_at, subject, groups_json, name, argv_json, target, account,
      region, decision, rule, reason, actions_json, session_policy, role_session, source_identity, expires_at,
      transcript_key, approval_id, request_id)
    VALUES (@id, @createdAt, @subject, @groups, @name, @argv, @target, @account, @region, @decision, @rule, @reason,
      @actions, @sessionPolicy, @roleSessionName, @sourceIdentity, @expiresAt, @transcriptKey, @approvalId, @requestId)`);
  const insRefusal = db.prepare(`INSERT INTO refusals (id, created_at, subject, groups_json, argv_json, target, code,
      decision, rule, reason, request_id)
    VALUES (@id, @createdAt, @subject, @groups, @argv, @target, @code, @decision, @rule, @reason, @requestId)`);
  const getGrant = db.prepare('SELECT * FROM grants WHERE id = ?');

  const where = (f: ListFilter) => {
    const clauses: string[] = [];
    const params: Record<string, unknown> = {};
    if (f.subject !== undefined) (clauses.push('subject = @subject'), (params.subject = f.subject));
    if (f.target !== undefined) (clauses.push('target = @target'), (params.target = f.target));
    if (f.since !== undefined) (clauses.push('created_at >= @since'), (params.since = f.since));
    params.limit = Math.max(1, Math.min(f.limit ?? 100, 10_000));
    return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
  };

  let closed = false;
  return {
    db,
    async recordGrant(r: GrantRecord) {
      insGrant.run({
        ...r,
        groups: JSON.stringify(r.groups),
        name: r.name ?? null,
        argv: JSON.stringify(r.argv),
        actions: JSON.stringify(r.actions),
        approvalId: r.approvalId ?? null,
        requestId: r.requestId ?? null,
      });
    },
    async recordRefusal(r: RefusalRecord) {
      insRefusal.run({
        ...r,
        groups: JSON.stringify(r.groups),
        argv: JSON.stringify(r.argv),
        requestId: r.requestId ?? null,
      });
    },
    async getGrant(id: string) {
      const row = getGrant.get(id) as GrantRow | undefined;
      return row ? grantFromRow(row) : undefined;
    },
    async listGrants(filter: ListFilter = {}) {
      const { sql, params } = where(filter);
      const rows = db.prepare(`SELECT * FROM grants ${sql} ORDER BY created_at DESC, id LIMIT @limit`).all(params) as GrantRow[];
      return rows.map(grantFromRow);
    },
    async listRefusals(filter: ListFilter = {}) {
      const { sql, params } = where(filter);
      const rows = db.prepare(`SELECT * FROM refusals ${sql} ORDER BY created_at DESC, id LIMIT @limit`).all(params) as RefusalRow[];
      return rows.map(refusalFromRow);
    },
    async close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

interface GrantRow {
  id: string;
  created_at: string;
  subject: string;
  groups_json: string;
  name: string | null;
  argv_json: string;
  target: string;
  account: string;
  region: string;
  decision: GrantRecord['decision'];
  rule: string | null;
  reason: string;
  actions_json: string;
  session_policy: string;
  role_session: string;
  source_identity: string;
  expires_at: string;
  transcript_key: string;
  approval_id: string | null;
  request_id: string | null;
}

interface RefusalRow {
  id: string;
  created_at: string;
  subject: string;
  groups_json: string;
  argv_json: string;
  target: string | null;
  code: string;
  decision: RefusalRecord['decision'];
  rule: string | null;
  reason: string;
  request_id: string | null;
}

/** What a grant and a refusal both record: who asked, for which call, and the decision's rule and reason. */
function callFromRow<R extends GrantRow | RefusalRow>(r: R) {
  return {
    id: r.id,
    createdAt: r.created_at,
    subject: r.subject,
    groups: JSON.parse(r.groups_json) as string[],
    argv: JSON.parse(r.argv_json) as string[],
    target: r.target as R['target'],
    decision: r.decision as R['decision'],
    rule: r.rule,
    reason: r.reason,
    requestId: r.request_id,
  };
}

function grantFromRow(r: GrantRow): GrantRecord {
  return {
    ...callFromRow(r),
    name: r.name,
    account: r.account,
    region: r.region,
    actions: JSON.parse(r.actions_json) as string[],
    sessionPolicy: r.session_policy,
    roleSessionName: r.role_session,
    sourceIdentity: r.source_identity,
    expiresAt: r.expires_at,
    transcriptKey: r.transcript_key,
    approvalId: r.approval_id,
  };
}

function refusalFromRow(r: RefusalRow): RefusalRecord {
  return { ...callFromRow(r), code: r.code };
}
