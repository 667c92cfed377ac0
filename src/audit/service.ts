import type { Database } from 'better-sqlite3';
import { generateBrokerKey, loadOrCreateBrokerKey, type AuditAlg, type BrokerKey } from './broker-key.js';
import type { GrantFacts } from './ingest.js';
import { AuditLog } from './store.js';

export const DEFAULT_AUDITOR_GROUPS: readonly string[] = ['auditors'];

export interface AuditServiceOptions {
  db: Database;
  /** The broker key; else loaded/created at `keyPath`; else `<db file>.audit-key.pem`; in-memory DBs get an ephemeral key. */
  key?: BrokerKey;
  keyPath?: string;
  alg?: AuditAlg;
  getGrant: (id: string) => Promise<GrantFacts | undefined> | GrantFacts | undefined;
  listGrants?: (filter: { subject?: string; since?: string; limit?: number }) => Promise<GrantFacts[]> | GrantFacts[];
  /** Groups whose members may read the audit log (default `[auditors]`; broker config `auditorGroups`). */
  auditorGroups?: readonly string[];
  clock?: () => number;
}

/** What the transcript and audit routes share: one log, one key, the grant lookups. */
export interface AuditService {
  log: AuditLog;
  key: BrokerKey;
  auditorGroups: readonly string[];
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
  const key = o.key ?? (path ? loadOrCreateBrokerKey(path, o.alg) : generateBrokerKey(o.alg));
  const clock = o.clock ?? Date.now;
  const log = new AuditLog(o.db, key, clock);
  log.repairHead();
  return {
    log,
    key,
    auditorGroups: o.auditorGroups ?? DEFAULT_AUDITOR_GROUPS,
    getGrant: o.getGrant,
    listGrants: o.listGrants ?? (() => []),
    clock,
  };
}
