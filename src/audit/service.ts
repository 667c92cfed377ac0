import { existsSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import { GuardError } from '../errors.js';
import { generateBrokerKey, loadOrCreateBrokerKey, type AuditAlg, type BrokerKey } from './broker-key.js';
import type { GrantFacts } from './ingest.js';
import { AuditLog } from './store.js';

export const DEFAULT_AUDITOR_GROUP = 'auditors';

export interface AuditServiceOptions {
  db: Database;
  /** The broker key; else loaded/created at `keyPath`; else `<db file>.audit-key.pem`; in-memory DBs get an ephemeral key. */
  key?: BrokerKey;
  keyPath?: string;
  alg?: AuditAlg;
  getGrant: (id: string) => Promise<GrantFacts | undefined> | GrantFacts | undefined;
  listGrants?: (filter: { subject?: string; since?: string; limit?: number }) => Promise<GrantFacts[]> | GrantFacts[];
  /** Group whose members may read the audit log (default `auditors`). */
  auditorGroup?: string;
  clock?: () => number;
}

/** What the transcript and audit routes share: one log, one key, the grant lookups. */
export interface AuditService {
  log: AuditLog;
  key: BrokerKey;
  auditorGroup: string;
  getGrant: AuditServiceOptions['getGrant'];
  listGrants: NonNullable<AuditServiceOptions['listGrants']>;
  clock: () => number;
}

export function defaultKeyPath(db: Database): string | undefined {
  const file = db.name;
  return file && file !== ':memory:' && !db.memory ? `${file}.audit-key.pem` : undefined;
}

export function createAuditService(o: AuditServiceOptions): AuditService {
  const path = o.keyPath ?? defaultKeyPath(o.db);
  if (!o.key && path && !existsSync(path)) {
    // A new key for a log that already has records would make every earlier record fail `audit verify` — and
    // silently replacing a lost key is what someone who deleted it to re-sign a forged log would want.
    const n = recordCount(o.db);
    if (n > 0) {
      throw new GuardError(
        'config_invalid',
        `audit key: ${path} is missing but the audit log has ${n} records signed with it; restore the key from a backup (mode 0600). The broker will not start with a new key for an existing log.`,
      );
    }
  }
  const key = o.key ?? (path ? loadOrCreateBrokerKey(path, o.alg) : generateBrokerKey(o.alg));
  const clock = o.clock ?? Date.now;
  return {
    log: new AuditLog(o.db, key, clock),
    key,
    auditorGroup: o.auditorGroup ?? DEFAULT_AUDITOR_GROUP,
    getGrant: o.getGrant,
    listGrants: o.listGrants ?? (() => []),
    clock,
  };
}

/** Records in the audit log (0 when the table does not exist yet). */
function recordCount(db: Database): number {
  const t = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'").get();
  if (!t) return 0;
  return (db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n;
}
