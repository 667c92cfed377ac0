import { GuardError } from '../errors.js';
import type { Db, Dialect } from './db.js';

/** One schema step: the same SQL for both dialects, or each its own. */
export type Migration = string | Readonly<Record<Dialect, string>>;

/**
 * Versioned schema changes for one component of the store (`broker`, `approvals`, `audit`, `console`).
 * `migrations[i]` takes the component from version i to i+1. All steps run in one transaction together with the
 * version bump, so a crash never leaves a half-applied step behind. On PostgreSQL the transaction first takes an
 * advisory lock: several brokers starting at once apply each step exactly once, the others wait and then find the
 * schema current. (SQLite: the transaction is IMMEDIATE, which serialises them the same way.)
 */
export async function migrate(db: Db, component: string, migrations: readonly Migration[]): Promise<number> {
  await db.transaction(async (tx) => {
    await tx.lock('guard-aws schema');
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)${db.dialect === 'sqlite' ? ' STRICT' : ''}`,
    );
    const row = await tx.get<{ version: number }>('SELECT version FROM schema_version WHERE component = ?', [component]);
    const current = row?.version ?? 0;
    if (current > migrations.length) throw aheadError(component, current, migrations.length);
    for (let v = current; v < migrations.length; v++) {
      const m = migrations[v]!;
      await tx.exec(typeof m === 'string' ? m : m[db.dialect]);
      await tx.run(
        'INSERT INTO schema_version (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version',
        [component, v + 1],
      );
    }
  });
  return migrations.length;
}

/** A newer guard-aws wrote this database; running older code on it could corrupt it (exit 78). */
export function aheadError(component: string, current: number, known: number): GuardError {
  return new GuardError(
    'config_invalid',
    `storage: schema of ${component} is version ${current}, this guard-aws knows up to ${known}; upgrade guard-aws (a broker never runs on a database newer than its code)`,
    { details: { component, version: current, known } },
  );
}

/** Components whose stored version differs from `expected` (readiness: a database a newer broker migrated is not ours). */
export async function schemaDrift(db: Db, expected: Readonly<Record<string, number>>): Promise<string[]> {
  const rows = await db.all<{ component: string; version: number }>('SELECT component, version FROM schema_version');
  const have = new Map(rows.map((r) => [r.component, r.version]));
  return Object.entries(expected)
    .filter(([c, v]) => have.get(c) !== v)
    .map(([c, v]) => `${c} is at ${have.get(c) ?? 'none'}, expected ${v}`);
}
