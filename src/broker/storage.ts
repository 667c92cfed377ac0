import { GuardError } from '../errors.js';
import { APPROVALS_SCHEMA } from '../approvals/schema.js';
import { OUTBOX_SCHEMA } from '../approvals/outbox.js';
import { AUDIT_SCHEMA } from '../audit/store.js';
import { CONSOLE_SCHEMA } from '../console/sessions.js';
import { openPostgresDb, openSqliteDb, type Db, type PostgresOptions } from '../store/db.js';
import { migrate, schemaDrift, type Migration } from '../store/migrate.js';
import { BROKER_SCHEMA, createBrokerStore } from '../store/sqlite.js';
import type { BrokerStore } from '../store/types.js';

/**
 * The broker's storage, assembled: every component's schema (the broker's own, approvals, the audit log, console
 * sessions) migrated on the configured database. Here and not in src/store/ because the store's SQL port knows
 * none of the modules that keep tables in it (docs/architecture.md).
 */

/** Where the broker keeps its state (broker config `storage:`, resolved). */
export type StorageConfig = { sqlite: string } | { postgres: PostgresOptions };

/** Every component's schema, in the order they are migrated. */
const COMPONENTS: ReadonlyArray<readonly [string, readonly Migration[]]> = [
  ['broker', BROKER_SCHEMA],
  ['approvals', APPROVALS_SCHEMA],
  ['audit', AUDIT_SCHEMA],
  ['console', CONSOLE_SCHEMA],
  ['webhook_outbox', OUTBOX_SCHEMA],
];

/** The schema version this code expects of each component (readiness compares the database with it). */
export const SCHEMA_VERSIONS: Readonly<Record<string, number>> = Object.fromEntries(COMPONENTS.map(([c, m]) => [c, m.length]));

/** Brings every component's tables up to this code's version (refusing a database that is ahead of it). */
export async function migrateAll(db: Db): Promise<void> {
  for (const [component, migrations] of COMPONENTS) await migrate(db, component, migrations);
}

/** Whether the database answers and its schema is exactly this code's: undefined when ready, else why not. */
export async function notReady(db: Db): Promise<string | undefined> {
  try {
    const drift = await schemaDrift(db, SCHEMA_VERSIONS);
    return drift.length ? `schema: ${drift.join('; ')}` : undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Opens the configured database, migrates it, and returns the broker's store on it (owning the database). */
export async function openStore(storage: StorageConfig): Promise<BrokerStore> {
  const db = 'sqlite' in storage ? openSqliteDb(storage.sqlite) : await openPostgresDb(storage.postgres);
  try {
    await migrateAll(db);
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return createBrokerStore(db);
}

/** The broker config's `storage:` section as configured (src/broker/config.ts). */
export interface StorageSection {
  sqlite?: string | undefined;
  postgres?: (Omit<PostgresOptions, "url"> & { url?: string | undefined }) | undefined;
}

/** Env var holding the PostgreSQL URL, so the URL and its password stay out of the config file. */
export const STORE_URL_ENV = 'GUARD_AWS_STORE_URL';

/** Resolves the configured storage: the SQLite file, or PostgreSQL with its URL from GUARD_AWS_STORE_URL or `url`. */
export function storageFrom(section: StorageSection, env: NodeJS.ProcessEnv = process.env): StorageConfig {
  if (section.sqlite !== undefined) return { sqlite: section.sqlite };
  const pg = section.postgres ?? {};
  const url = env[STORE_URL_ENV] || pg.url;
  if (!url) throw new GuardError('config_invalid', `storage.postgres: no database URL; set ${STORE_URL_ENV} (or storage.postgres.url)`);
  if (!/^postgres(ql)?:\/\//.test(url)) throw new GuardError('config_invalid', `${env[STORE_URL_ENV] ? STORE_URL_ENV : 'storage.postgres.url'}: must be a postgres:// URL`);
  return { postgres: { ...pg, url } };
}

/** Opens (creating and migrating as needed) a SQLite store: what `storage: { sqlite: PATH }` configures. */
export function openSqliteStore(options: { path: string }): Promise<BrokerStore> {
  return openStore({ sqlite: options.path });
}
