import { existsSync } from 'node:fs';
import type { Db } from '../store/db.js';
import { GuardError } from '../errors.js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  generateBrokerKey,
  loadOrCreateBrokerKey,
  readKeyHistory,
  recordKeyInHistory,
  replaceBrokerKey,
  type AuditAlg,
  type BrokerKey,
  type PublicKeyEntry,
} from './broker-key.js';
import type { ApprovalLookup, GrantFacts } from './ingest.js';
import { createKeyGuard } from './key-guard.js';
import { AuditLog } from './store.js';

export const DEFAULT_AUDITOR_GROUPS: readonly string[] = ['auditors'];

export interface AuditServiceOptions {
  /** The broker's database, migrated. */
  db: Db;
  /**
   * The broker key; else loaded/created at `keyPath`; else `<db file>.audit-key.pem` (SQLite); in-memory SQLite
   * gets an ephemeral key. A PostgreSQL store has no file to sit next to: the broker passes `keyPath` from its config.
   */
  key?: BrokerKey;
  keyPath?: string;
  alg?: AuditAlg;
  getGrant: (id: string) => Promise<GrantFacts | undefined> | GrantFacts | undefined;
  listGrants?: (filter: { subject?: string | undefined; since?: string | undefined; limit?: number }) => Promise<GrantFacts[]> | GrantFacts[];
  /** The approval a grant used, so its transcript's record keeps what was approved (ingest.ts `approvedFacts`). */
  getApproval?: ApprovalLookup;
  /** Groups whose members may read the audit log (default `[auditors]`; broker config `auditorGroups`). */
  auditorGroups?: readonly string[];
  clock?: () => number;
  /**
   * Start signing with a new key (`guard-aws broker --rotate-audit-key`): the old key file, if any, is kept as
   * `<key>.retired-<kid>`, both public halves go to the key history, and a `key_rotation` record opens the new
   * key's part of the chain. The only way to a new key once the log has records.
   */
  rotateKey?: boolean;
}

/** What the transcript and audit routes share: one log, one key, the grant lookups. */
export interface AuditService {
  log: AuditLog;
  key: BrokerKey;
  auditorGroups: readonly string[];
  /** Public halves of every key that signed the log, oldest first (the current key last): what verify trusts. */
  history: PublicKeyEntry[];
  publicKeys: KeyObject[];
  getGrant: AuditServiceOptions['getGrant'];
  listGrants: NonNullable<AuditServiceOptions['listGrants']>;
  getApproval: ApprovalLookup | undefined;
  clock: () => number;
}

export function defaultKeyPath(db: Db): string | undefined {
  return db.file ? `${db.file}.audit-key.pem` : undefined;
}

export async function createAuditService(o: AuditServiceOptions): Promise<AuditService> {
  const path = o.keyPath ?? defaultKeyPath(o.db);
  const clock = o.clock ?? Date.now;
  let key: BrokerKey;
  let history: PublicKeyEntry[] = [];
  let rotation: { previousKid: string | null; reason: 'rotation' | 'key missing' } | undefined;
  if (o.key) {
    key = o.key;
  } else if (!path) {
    key = generateBrokerKey(o.alg);
  } else if (o.rotateKey) {
    const before = readKeyHistory(path);
    const { key: fresh, previous } = replaceBrokerKey(path, o.alg);
    key = fresh;
    if (previous) keepHistory(() => recordKeyInHistory(path, previous), path);
    history = keepHistory(() => recordKeyInHistory(path, fresh), path);
    rotation = { previousKid: previous?.kid ?? before.at(-1)?.kid ?? null, reason: previous ? 'rotation' : 'key missing' };
  } else {
    if (!existsSync(path)) {
      // A new key for a log that already has records would make every earlier record fail `audit verify` — and
      // silently replacing a lost key is what someone who deleted it to re-sign a forged log would want.
      const n = Number((await o.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_log'))?.n ?? 0);
      if (n > 0) {
        throw new GuardError(
          'config_invalid',
          `audit key: ${path} is missing but the audit log has ${n} records signed with it; restore the key from a backup (mode 0600), or start once with --rotate-audit-key to sign from now on with a new key (recorded in the chain)`,
        );
      }
    }
    key = loadOrCreateBrokerKey(path, o.alg);
    history = keepHistory(() => recordKeyInHistory(path, key), path);
  }
  const log = new AuditLog(o.db, key, clock);
  if (!history.length) history = [{ kid: key.kid, alg: key.alg, pem: key.publicPem }];
  // Several brokers, one key (src/audit/key-guard.ts): never sign over a head another key signed; pick up a
  // rotated key once it is deployed to the key file.
  log.keyGuard = createKeyGuard({
    key,
    keyPath: path,
    history,
    // In place: the broker's routes may hold copies of the service object, never of these arrays.
    onReload: (next, list) => {
      history.splice(0, history.length, ...list);
      if (!publicKeys.some((k) => k.equals(next.publicKey))) publicKeys.push(next.publicKey);
    },
  });
  const publicKeys = history.map((e) => (e.kid === key.kid ? key.publicKey : createPublicKey({ key: e.pem, format: 'pem' })));
  // A broker of an earlier version that stopped between an append and its batched head signature left records after
  // the signed head (SECURITY.md, "The audit log"); batches now commit with their head, so this finds nothing new.
  await log.repairHead();
  if (rotation) {
    await log.append({
      kind: 'key_rotation',
      grantId: null,
      subject: null,
      body: { kid: key.kid, alg: key.alg, publicPem: key.publicPem, previousKid: rotation.previousKid, reason: rotation.reason },
    });
  }
  const svc: AuditService = {
    log,
    key,
    auditorGroups: o.auditorGroups ?? DEFAULT_AUDITOR_GROUPS,
    history,
    publicKeys,
    getGrant: o.getGrant,
    listGrants: o.listGrants ?? (() => []),
    getApproval: o.getApproval,
    clock,
  };
  return svc;
}

function keepHistory(write: () => PublicKeyEntry[], path: string): PublicKeyEntry[] {
  try {
    return write();
  } catch (e) {
    if (e instanceof GuardError) throw e;
    throw new GuardError('config_invalid', `audit key: cannot write the key history next to ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
