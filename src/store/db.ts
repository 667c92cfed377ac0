import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import { GuardError } from '../errors.js';

/**
 * The SQL port every store (broker grants, approvals, audit log, console sessions) is written against: readable
 * SQL with one placeholder style (`?`, positional), run by one of two adapters — better-sqlite3 (the embedded
 * default) or `pg` (PostgreSQL, shared by several brokers). No ORM: where the dialects differ, the store holds
 * both statements side by side (`db.dialect`).
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Sql {
  readonly dialect: Dialect;
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Inside a transaction: waits until no other transaction holding the same key is open, on any broker, and holds
   * the key until this one ends (PostgreSQL: pg_advisory_xact_lock). On SQLite it is a no-op: a transaction there
   * is IMMEDIATE, holding the database's only write lock from its first statement.
   */
  lock(key: string): Promise<void>;
}

export interface Db extends Sql {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly closed: boolean;
  /** Where the data lives, for messages: the SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** The SQLite file (undefined for `:memory:` and PostgreSQL): files kept next to it (the audit key) derive from it. */
  readonly file: string | undefined;
  /** The better-sqlite3 handle (SQLite only): tests and tools that tamper with or inspect the file directly. */
  readonly raw: Database | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite

/** Opens (creating its directory, mode 0700) a SQLite database behind the port. */
export function openSqliteDb(path: string): Db {
  let raw: Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    raw = new BetterSqlite3(path);
    // WAL: readers (approvers, auditors) never block the writer, and a crash loses at most the last commit.
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('foreign_keys = ON');
    // Waiting briefly for another process's write lock beats failing a decision with SQLITE_BUSY.
    raw.pragma('busy_timeout = 5000');
  } catch (e) {
    throw new GuardError('config_invalid', `storage: cannot open SQLite database ${path}: ${(e as Error).message}`, { cause: e });
  }
  return sqliteDb(raw);
}

/** Wraps an open better-sqlite3 handle (tests keep theirs to tamper with the file). */
export function sqliteDb(raw: Database): Db {
  const cache = new Map<string, Statement>();
  const prepare = (sql: string): Statement => {
    let s = cache.get(sql);
    if (!s) {
      s = raw.prepare(sql);
      // Listings build their SQL from filters: a bounded cache, not one entry per distinct string forever.
      if (cache.size > 500) cache.clear();
      cache.set(sql, s);
    }
    return s;
  };
  const args = (p: readonly unknown[] | undefined) => (p ?? []).map((v) => (v === undefined ? null : typeof v === 'boolean' ? (v ? 1 : 0) : v));
  const direct: Sql = {
    dialect: 'sqlite',
    async all<T>(sql: string, p?: readonly unknown[]) {
      return prepare(sql).all(...args(p)) as T[];
    },
    async get<T>(sql: string, p?: readonly unknown[]) {
      return prepare(sql).get(...args(p)) as T | undefined;
    },
    async run(sql: string, p?: readonly unknown[]) {
      return prepare(sql).run(...args(p)).changes;
    },
    async exec(sql: string) {
      raw.exec(sql);
    },
    async lock() {},
  };
  // One connection: while a transaction awaits between its statements, every other caller in this process waits
  // for it to end, so nothing outside the transaction slips into it. Transactions take the connection in turn
  // through one promise chain: the turn is claimed synchronously at the call, so two begun in the same tick queue
  // instead of both seeing it free (which ended in "cannot start a transaction within a transaction").
  let tail: Promise<unknown> = Promise.resolve();
  let waiting = 0; // transactions holding the connection or queued for it
  const inTurn = <R>(f: () => Promise<R>): Promise<R> => {
    const turn = tail.then(f);
    tail = turn.catch(() => undefined);
    return turn;
  };
  // better-sqlite3 runs a statement synchronously inside the call, so with no transaction held or queued it runs
  // at once; otherwise it waits its turn behind them.
  const outside = <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    ((...a: A) => (waiting === 0 ? f(...a) : inTurn(() => f(...a)))) as (...a: A) => Promise<R>;
  return {
    dialect: 'sqlite',
    all: outside(direct.all) as Sql['all'],
    get: outside(direct.get) as Sql['get'],
    run: outside(direct.run),
    exec: outside(direct.exec),
    async lock() {},
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      waiting++;
      try {
        return await inTurn(async () => {
          raw.exec('BEGIN IMMEDIATE');
          try {
            const out = await fn(direct);
            raw.exec('COMMIT');
            return out;
          } catch (e) {
            if (raw.inTransaction) raw.exec('ROLLBACK');
            throw e;
          }
        });
      } finally {
        waiting--;
      }
    },
    async close() {
      while (waiting > 0) await tail;
      if (raw.open) raw.close();
    },
    get closed() {
      return !raw.open;
    },
    location: raw.name,
    file: raw.name && raw.name !== ':memory:' && !raw.memory ? raw.name : undefined,
    raw,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

export interface PostgresOptions {
  /** postgres://user:password@host:port/database?… (libpq URL syntax). */
  url: string;
  /**
   * TLS to the server (libpq's sslmode names): `disable`, `require` (encrypted, server not checked), `verify-ca`
   * and `verify-full` (certificate checked against `caFile` or the system CAs; verify-full also checks the host
   * name). Default: what the URL says, else `disable` for a unix socket or loopback, `verify-full` otherwise.
   */
  sslmode?: 'disable' | 'require' | 'verify-ca' | 'verify-full' | undefined;
  /** PEM file of the CA(s) that sign the server's certificate. */
  caFile?: string | undefined;
  /** Connections per broker (default 10). */
  poolSize?: number | undefined;
  /** How long to wait for a connection before failing the request closed (default 5 s). */
  connectTimeoutMs?: number | undefined;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** `?` → `$1, $2…` outside quoted strings, identifiers and comments; cached per statement. */
const converted = new Map<string, string>();
export function toDollar(sql: string): string {
  const hit = converted.get(sql);
  if (hit !== undefined) return hit;
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (quote) {
      out += ch;
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else out += ch;
  }
  if (converted.size > 2000) converted.clear();
  converted.set(sql, out);
  return out;
}

/**
 * Errors that mean "the database cannot be reached or stopped serving" (not "this statement is wrong"): the broker
 * then fails closed with `store_unavailable` (HTTP 503, exit 69) instead of an internal error. SQLSTATE classes
 * 08 (connection exception) and 57P (operator intervention: shutdown, crash), plus the socket errors of pg.
 */
export function isUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  if (/^08/.test(code) || /^57P0[1-4]$/.test(code) || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT'].includes(code)) return true;
  // A server whose certificate does not verify (sslmode verify-ca / verify-full) is not one to talk to: the same
  // answer, with the TLS reason in the message (Node's certificate error codes).
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) return true;
  const msg = typeof err?.message === 'string' ? err.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|does not support SSL/i.test(msg);
}

export async function openPostgresDb(o: PostgresOptions): Promise<Db> {
  const pg = (await import('pg')).default;
  const where = redactUrl(o.url);
  let ssl: import('node:tls').ConnectionOptions | false | undefined;
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    // Not echoed: the URL may carry the password.
    throw new GuardError('config_invalid', 'storage.postgres: the database URL cannot be parsed (postgres://user:password@host:port/database)');
  }
  const mode = sslModeOf(u, o.sslmode);
  // pg reads sslmode from the URL itself with its own (older) meanings; the TLS settings here are the ones used.
  for (const k of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) u.searchParams.delete(k);
  let ca: string | undefined;
  if (o.caFile) {
    try {
      ca = readFileSync(o.caFile, 'utf8');
    } catch (e) {
      throw new GuardError('config_invalid', `storage.postgres.caFile: cannot read ${o.caFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  switch (mode) {
    case 'disable':
      ssl = false;
      break;
    case 'require':
      ssl = { rejectUnauthorized: false };
      break;
    case 'verify-ca':
      // The chain is checked, the host name is not (libpq's verify-ca).
      ssl = { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined };
      break;
    case 'verify-full':
      ssl = { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
      break;
    default:
      throw new GuardError('config_invalid', `storage.postgres: unknown sslmode ${String(mode)} (disable, require, verify-ca or verify-full)`);
  }
  const pool = new pg.Pool({
    connectionString: u.toString(),
    ssl,
    max: o.poolSize ?? 10,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    // BIGINT (counts, millisecond times, sequence numbers) as numbers: all stay far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle connection the server dropped (restart, failover) must not crash the broker; the next query reconnects.
  pool.on('error', () => {});
  let closed = false;
  const fail = (e: unknown): never => {
    if (e instanceof GuardError) throw e;
    if (isUnavailable(e) || closed) {
      throw new GuardError('store_unavailable', `storage: the database at ${where} is unavailable (${describe(e)})`, { cause: e });
    }
    throw e;
  };
  type Q = { query: (text: string, values?: unknown[]) => Promise<{ rows: unknown[]; rowCount: number | null }> };
  const on = (c: Q): Sql => ({
    dialect: 'postgres',
    async all<T>(sql: string, p?: readonly unknown[]) {
      try {
        return (await c.query(toDollar(sql), p ? [...p] : [])).rows as T[];
      } catch (e) {
        return fail(e);
      }
    },
    async get<T>(sql: string, p?: readonly unknown[]) {
      try {
        return (await c.query(toDollar(sql), p ? [...p] : [])).rows[0] as T | undefined;
      } catch (e) {
        return fail(e);
      }
    },
    async run(sql: string, p?: readonly unknown[]) {
      try {
        return (await c.query(toDollar(sql), p ? [...p] : [])).rowCount ?? 0;
      } catch (e) {
        return fail(e);
      }
    },
    async exec(sql: string) {
      try {
        await c.query(sql);
      } catch (e) {
        fail(e);
      }
    },
    async lock(key: string) {
      try {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
      } catch (e) {
        fail(e);
      }
    },
  });
  const direct = on(pool as unknown as Q);
  const db: Db = {
    ...direct,
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      let client: import('pg').PoolClient;
      try {
        client = await pool.connect();
      } catch (e) {
        return fail(e);
      }
      let broken = false;
      try {
        await on(client as unknown as Q).exec('BEGIN');
        const out = await fn(on(client as unknown as Q));
        await on(client as unknown as Q).exec('COMMIT');
        return out;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw e;
      } finally {
        // A connection that could not even roll back is discarded, not handed to the next caller.
        client.release(broken ? true : undefined);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
    get closed() {
      return closed;
    },
    location: where,
    file: undefined,
    raw: undefined,
  };
  return db;
}

/** The sslmode in force: the option, else the URL's, else none on loopback or a unix socket and verify-full off it. */
export function sslModeOf(u: URL, given?: PostgresOptions['sslmode']): string {
  return given ?? u.searchParams.get('sslmode') ?? (isLocal(u) ? 'disable' : 'verify-full');
}

function isLocal(u: URL): boolean {
  const host = u.searchParams.get('host') ?? u.hostname;
  return host === '' || host.startsWith('/') || host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1';
}

function describe(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  const msg = typeof err?.message === 'string' ? err.message.split('\n')[0]! : String(e);
  // pg's messages name host and port, never the password; still, keep it short.
  return code ? `${code}: ${msg}`.slice(0, 200) : msg.slice(0, 200);
}
