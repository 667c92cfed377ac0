import type { Database } from 'better-sqlite3';
import { migrate } from '../store/migrate.js';

/**
 * Approval tables in the broker's SQLite file, versioned as component `approvals` (src/store/migrate.ts).
 * Times are integer milliseconds since the epoch. `status` holds what was decided; `expired` is never stored
 * but derived from `expires_at` at read time, so an approval lapses exactly on time without a sweeper.
 * One row per event: every decision keeps who, when and the comment; events are only ever inserted.
 */
const MIGRATIONS: readonly string[] = [
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
];

export function migrateApprovals(db: Database): void {
  migrate(db, 'approvals', MIGRATIONS);
}
