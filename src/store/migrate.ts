import type { Database } from 'better-sqlite3';
import { GuardError } from '../errors.js';

/**
 * Versioned schema changes for one component of the shared SQLite file (`broker`, `approvals`, `audit`…).
 * `migrations[i]` takes the component from version i to i+1. Each step runs in its own transaction together
 * with the version bump, so a crash never leaves a half-applied step behind.
 */
export function migrate(db: Database, component: string, migrations: readonly string[]): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
  ) STRICT`);
  const row = db.prepare('SELECT version FROM schema_version WHERE component = ?').get(component) as
    | { version: number }
    | undefined;
  const current = row?.version ?? 0;
  if (current > migrations.length) {
    // A newer guard-aws wrote this file; running older code on it could corrupt it.
    throw new GuardError(
      'config_invalid',
      `storage: schema of ${component} is version ${current}, this guard-aws knows up to ${migrations.length}; upgrade guard-aws`,
    );
  }
  const bump = db.prepare(
    'INSERT INTO schema_version (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version',
  );
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      bump.run(component, v + 1);
    })();
  }
  return migrations.length;
}
