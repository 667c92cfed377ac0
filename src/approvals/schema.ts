import type { Migration } from '../store/migrate.js';

/**
 * Approval tables in the broker's database, versioned as component `approvals` (src/store/migrate.ts).
 * Times are integer milliseconds since the epoch. `status` holds what was decided; `expired` is never stored
 * but derived from `expires_at` at read time, so an approval lapses exactly on time without a sweeper.
 * One row per event: every decision keeps who, when and the comment; events are only ever inserted.
 */
/**
 * v3 (issue 9): indexes for exactly the queries the service runs, so opening a request and listing them cost the
 * same at 100 or 100,000 rows. The duplicate check and the per-requester cap read only open rows of one requester
 * (partial indexes: closed requests are not in them at all); listings walk (created_at, id) newest first and stop
 * at the limit (a cursor continues after the last row), with or without a status. The (status, expires_at) index
 * the planner used to pick for the duplicate check — then scanning every pending request — is dropped.
 */
const V3 = `CREATE INDEX approval_requests_dup ON approval_requests (requester, binding_hash, created_at) WHERE status IN ('pending','approved');
   CREATE INDEX approval_requests_pending ON approval_requests (requester, expires_at) WHERE status = 'pending';
   CREATE INDEX approval_requests_recent ON approval_requests (created_at, id);
   CREATE INDEX approval_requests_status ON approval_requests (status, created_at, id);
   DROP INDEX approval_requests_open;
   DROP INDEX approval_requests_binding;
   DROP INDEX approval_requests_requester;
   CREATE INDEX approval_requests_requester ON approval_requests (requester, created_at, id);`;

/**
 * v4: one row per (request, approver group), so the group-filtered listings — what a caller may see (their own
 * requests and those of their approver groups) and an approver's queue — walk an index of that group's requests
 * newest first and stop at the page's limit, instead of reading every request's `approver_groups` JSON (no index
 * can serve a JSON array: at 100,000 requests a group with a handful of them read all 100,000). `status` is copied
 * from the request and kept in step with it in the same transaction as every status change (approvals/store.ts),
 * so a status filter (the queue: pending) is part of the walk; `created_at` never changes. Existing requests are
 * backfilled from their `approver_groups` in the migration's own transaction.
 */
const GROUPS_INDEXES = `CREATE INDEX approval_groups_recent ON approval_groups (group_name, created_at, approval_id);
   CREATE INDEX approval_groups_status ON approval_groups (group_name, status, created_at, approval_id);`;
const V4_SQLITE = `CREATE TABLE approval_groups (
     approval_id TEXT NOT NULL REFERENCES approval_requests (id),
     group_name  TEXT NOT NULL,
     status      TEXT NOT NULL,
     created_at  INTEGER NOT NULL,
     PRIMARY KEY (approval_id, group_name)
   ) STRICT;
   ${GROUPS_INDEXES}
   INSERT INTO approval_groups (approval_id, group_name, status, created_at)
     SELECT DISTINCT r.id, g.value, r.status, r.created_at FROM approval_requests r, json_each(r.approver_groups) g;`;
const V4_POSTGRES = `CREATE TABLE approval_groups (
     approval_id TEXT NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
     group_name  TEXT NOT NULL,
     status      TEXT NOT NULL,
     created_at  BIGINT NOT NULL,
     PRIMARY KEY (approval_id, group_name)
   );
   ${GROUPS_INDEXES}
   INSERT INTO approval_groups (approval_id, group_name, status, created_at)
     SELECT DISTINCT r.id, g.v, r.status, r.created_at FROM approval_requests r, jsonb_array_elements_text(r.approver_groups::jsonb) g(v);`;

const SQLITE: readonly string[] = [
  `CREATE TABLE approval_requests (
     id              TEXT PRIMARY KEY,
     status          TEXT NOT NULL CHECK (status IN ('pending','approved','denied','used','withdrawn')),
     binding_hash    TEXT NOT NULL,
     requester       TEXT NOT NULL,
     requester_name  TEXT,
     target          TEXT NOT NULL,
     call            TEXT NOT NULL,
     rule            TEXT,
     rule_reason     TEXT NOT NULL,
     rule_source     TEXT,
     reason          TEXT NOT NULL,
     approver_groups TEXT NOT NULL,
     required        INTEGER NOT NULL CHECK (required >= 1),
     created_at      INTEGER NOT NULL,
     expires_at      INTEGER NOT NULL,
     decided_at      INTEGER,
     used_at         INTEGER,
     grant_id        TEXT
   ) STRICT;
   CREATE INDEX approval_requests_requester ON approval_requests (requester, created_at);
   CREATE INDEX approval_requests_open ON approval_requests (status, expires_at);
   CREATE INDEX approval_requests_binding ON approval_requests (binding_hash, status);
   CREATE TABLE approval_events (
     seq         INTEGER PRIMARY KEY AUTOINCREMENT,
     approval_id TEXT NOT NULL REFERENCES approval_requests (id),
     kind        TEXT NOT NULL CHECK (kind IN ('opened','approved','denied','withdrawn','used','refused')),
     actor       TEXT NOT NULL,
     actor_name  TEXT,
     at          INTEGER NOT NULL,
     comment     TEXT
   ) STRICT;
   CREATE INDEX approval_events_by_request ON approval_events (approval_id, seq);
   -- One vote per approver: the same person approving twice can never count twice.
   CREATE UNIQUE INDEX approval_events_one_vote ON approval_events (approval_id, actor) WHERE kind = 'approved';`,
  // v2: several approve rules can match one call; each keeps its own quorum (`requirements`, JSON [{groups, count}],
  // NULL = the single approver_groups/required pair), and each vote records the approver's groups at the time, so
  // a vote counts toward exactly the requirements the approver was eligible for.
  `ALTER TABLE approval_requests ADD COLUMN requirements TEXT;
   ALTER TABLE approval_events ADD COLUMN actor_groups TEXT;`,
  V3,
  V4_SQLITE,
];

const POSTGRES: readonly string[] = [
  `CREATE TABLE approval_requests (
     id              TEXT PRIMARY KEY,
     status          TEXT NOT NULL CHECK (status IN ('pending','approved','denied','used','withdrawn')),
     binding_hash    TEXT NOT NULL,
     requester       TEXT NOT NULL,
     requester_name  TEXT,
     target          TEXT NOT NULL,
     call            TEXT NOT NULL,
     rule            TEXT,
     rule_reason     TEXT NOT NULL,
     rule_source     TEXT,
     reason          TEXT NOT NULL,
     approver_groups TEXT NOT NULL,
     required        INTEGER NOT NULL CHECK (required >= 1),
     created_at      BIGINT NOT NULL,
     expires_at      BIGINT NOT NULL,
     decided_at      BIGINT,
     used_at         BIGINT,
     grant_id        TEXT
   );
   CREATE INDEX approval_requests_requester ON approval_requests (requester, created_at);
   CREATE INDEX approval_requests_open ON approval_requests (status, expires_at);
   CREATE INDEX approval_requests_binding ON approval_requests (binding_hash, status);
   CREATE TABLE approval_events (
     seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     approval_id TEXT NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
     kind        TEXT NOT NULL CHECK (kind IN ('opened','approved','denied','withdrawn','used','refused')),
     actor       TEXT NOT NULL,
     actor_name  TEXT,
     at          BIGINT NOT NULL,
     comment     TEXT
   );
   CREATE INDEX approval_events_by_request ON approval_events (approval_id, seq);
   CREATE UNIQUE INDEX approval_events_one_vote ON approval_events (approval_id, actor) WHERE kind = 'approved';`,
  `ALTER TABLE approval_requests ADD COLUMN requirements TEXT;
   ALTER TABLE approval_events ADD COLUMN actor_groups TEXT;`,
  V3,
  V4_POSTGRES,
];

/** Both dialects' steps, version by version (src/store/migrate.ts). */
export const APPROVALS_SCHEMA: readonly Migration[] = SQLITE.map((sqlite, i) => ({ sqlite, postgres: POSTGRES[i]! }));
