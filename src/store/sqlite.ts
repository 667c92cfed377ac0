import type { Db } from './db.js';
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

/** The broker's migrations, applied by openStore (src/broker/storage.ts) with every other component's. */
export const BROKER_SCHEMA = BROKER_MIGRATIONS.map((m) => ({ sqlite: m, postgres: m.replace(/\) STRICT;/g, ');') }));

/** The broker's grant and refusal records on an open, migrated database. */
export function createBrokerStore(db: Db): BrokerStore {
  const grantCols = `id, created_at, subject, groups_json, name, argv_json, target, account, region, decision, rule, reason,
      actions_json, session_policy, role_session, source_identity, expires_at, transcript_key, approval_id, request_id`;
  const where = (f: ListFilter) => {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (f.subject !== undefined) (clauses.push('subject = ?'), params.push(f.subject));
    if (f.target !== undefined) (clauses.push('target = ?'), params.push(f.target));
    if (f.since !== undefined) (clauses.push('created_at >= ?'), params.push(f.since));
    params.push(Math.max(1, Math.min(f.limit ?? 100, 10_000)));
    return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
  };

  return {
    db,
    async recordGrant(r: GrantRecord) {
      await db.run(`INSERT INTO grants (${grantCols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, [
        r.id, r.createdAt, r.subject, JSON.stringify(r.groups), r.name ?? null, JSON.stringify(r.argv), r.target, r.account,
        r.region, r.decision, r.rule, r.reason, JSON.stringify(r.actions), r.sessionPolicy, r.roleSessionName,
        r.sourceIdentity, r.expiresAt, r.transcriptKey, r.approvalId ?? null, r.requestId ?? null,
      ]);
    },
    async recordRefusal(r: RefusalRecord) {
      await db.run(
        `INSERT INTO refusals (id, created_at, subject, groups_json, argv_json, target, code, decision, rule, reason, request_id)
         VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
        [r.id, r.createdAt, r.subject, JSON.stringify(r.groups), JSON.stringify(r.argv), r.target, r.code, r.decision, r.rule, r.reason, r.requestId ?? null],
      );
    },
    async getGrant(id: string) {
      const row = await db.get<GrantRow>('SELECT * FROM grants WHERE id = ?', [id]);
      return row ? grantFromRow(row) : undefined;
    },
    async listGrants(filter: ListFilter = {}) {
      const { sql, params } = where(filter);
      return (await db.all<GrantRow>(`SELECT * FROM grants ${sql} ORDER BY created_at DESC, id LIMIT ?`, params)).map(grantFromRow);
    },
    async listRefusals(filter: ListFilter = {}) {
      const { sql, params } = where(filter);
      return (await db.all<RefusalRow>(`SELECT * FROM refusals ${sql} ORDER BY created_at DESC, id LIMIT ?`, params)).map(refusalFromRow);
    },
    async close() {
      await db.close();
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
