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
  /**
   * Tells the other brokers on this database (their `listen(channel)`) a short payload. PostgreSQL: NOTIFY, which
   * inside a transaction is delivered only when it commits and never when it rolls back (PostgreSQL docs, "NOTIFY").
   * SQLite: nothing — one broker owns the file and tells its own listeners in-process. `payload` must stay under
   * 8000 bytes (PostgreSQL's limit) and carry no secret: any session on the database may LISTEN.
   */
  notify(channel: string, payload: string): Promise<void>;
}

/** What a `listen` hears. Neither may block; both are called outside any transaction. */
export interface ListenHandlers {
  /** One notification's payload, in commit order. */
  message(payload: string): void;
  /**
   * The listening connection was lost and is back: notifications sent in between were missed, so whoever keeps
   * state from them must re-read it.
   */
  resync(): void;
  /** The listening connection failed or was lost (for the log; the message names no password). */
  error?(e: GuardError): void;
}

export interface Listening {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
}

export interface ListenOptions {
  /** First reconnect delay after a lost connection (doubled per failed attempt, with jitter). Default 200 ms. */
  minDelayMs?: number;
  /** Longest reconnect delay. Default 5 s. */
  maxDelayMs?: number;
}

export interface Db extends Sql {
  /**
   * Hears `notify(channel, …)` of every broker on this database (PostgreSQL: LISTEN on one dedicated connection,
   * not taken from the pool, reconnected with backoff for as long as the listening lasts; `resync` after each
   * reconnect). Resolves after the first connection attempt, listening or not (a failed attempt is retried in the
   * background and reported to `error`). SQLite: never hears anything (see `notify`).
   */
  listen(channel: string, handlers: ListenHandlers, o?: ListenOptions): Promise<Listening>;
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
    async notify(channel: string, payload: string) {
      checkNotify(channel, payload);
    },
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
    notify: direct.notify,
    async listen(channel: string) {
      checkChannel(channel);
      return { async close() {} };
    },
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
  const connection = {
    connectionString: u.toString(),
    ssl,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
    // BIGINT (counts, millisecond times, sequence numbers) as numbers: all stay far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  };
  const pool = new pg.Pool({ ...connection, max: o.poolSize ?? 10, idleTimeoutMillis: 30_000 });
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
    async notify(channel: string, payload: string) {
      checkNotify(channel, payload);
      try {
        // pg_notify is NOTIFY with parameters: the payload is never spliced into SQL.
        await c.query('SELECT pg_notify($1, $2)', [channel, payload]);
      } catch (e) {
        fail(e);
      }
    },
  });
  const direct = on(pool as unknown as Q);
  const listening = new Set<Listening>();
  const db: Db = {
    ...direct,
    async listen(channel: string, h: ListenHandlers, lo: ListenOptions = {}): Promise<Listening> {
      checkChannel(channel);
      if (closed) throw new GuardError('store_unavailable', `storage: the database at ${where} is closed`);
      const l = await listenOn(() => new pg.Client({ ...connection, keepAlive: true, keepAliveInitialDelayMillis: 10_000 }), channel, h, lo, (e) =>
        isUnavailable(e) || closed
          ? new GuardError('store_unavailable', `storage: listening for changes on ${where} failed (${describe(e)})`, { cause: e })
          : new GuardError('internal', `storage: listening for changes on ${where} failed (${describe(e)})`, { cause: e }),
      );
      const entry: Listening = {
        close: async () => {
          listening.delete(entry);
          await l.close();
        },
      };
      listening.add(entry);
      return entry;
    },
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
      await Promise.all([...listening].map((l) => l.close()));
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

/** Channel names are SQL identifiers and LISTEN takes no parameters: only plain lower-case names are accepted. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new GuardError('internal', `storage: invalid notification channel name ${JSON.stringify(channel.slice(0, 80))} (lower-case letters, digits, _)`);
}

function checkNotify(channel: string, payload: string): void {
  checkChannel(channel);
  // "The payload string … must be shorter than 8000 bytes" (PostgreSQL docs, NOTIFY).
  const bytes = Buffer.byteLength(payload, 'utf8');
  if (bytes >= 8000) throw new GuardError('internal', `storage: notification payload on ${channel} is ${bytes} bytes (PostgreSQL takes under 8000)`);
}

/** The part of a pg.Client a listening connection uses (injected so the reconnect loop can take any client). */
interface ListenClient {
  connect(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'notification', fn: (m: { channel: string; payload?: string | undefined }) => void): unknown;
  on(event: 'error', fn: (e: Error) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
}

/**
 * One dedicated connection that LISTENs on `channel`, kept for as long as the listening lasts: when it fails or the
 * server drops it (a restart, a failover), a new one is made after a jittered exponential backoff, and once it
 * listens again `resync` says that notifications may have been missed meanwhile (NOTIFY is not queued for a
 * session that is not listening). Not taken from the pool: LISTEN belongs to a session, and a pooled connection
 * would carry it to whoever takes the connection next.
 */
async function listenOn(
  make: () => ListenClient,
  channel: string,
  h: ListenHandlers,
  o: ListenOptions,
  wrap: (e: unknown) => GuardError,
): Promise<Listening> {
  const minDelay = Math.max(1, o.minDelayMs ?? 200);
  const maxDelay = Math.max(minDelay, o.maxDelayMs ?? 5000);
  let current: ListenClient | undefined;
  let stopped = false;
  let attempt = 0;
  // Whether notifications may have been missed since listening last started (a failed first attempt counts).
  let missed = false;
  let timer: NodeJS.Timeout | undefined;
  const report = (e: unknown) => {
    try {
      h.error?.(wrap(e));
    } catch {
      // a logging failure does not stop the listening
    }
  };
  const retry = () => {
    if (stopped || timer) return;
    missed = true;
    const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt++, 20));
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay * (0.5 + Math.random() / 2));
    // A broker that is otherwise done must not be kept alive by a reconnect timer.
    timer.unref();
  };
  const lost = (c: ListenClient, e?: unknown) => {
    if (current !== c) return;
    current = undefined;
    c.end().catch(() => {});
    if (stopped) return;
    report(e ?? new Error('Connection terminated'));
    retry();
  };
  const connect = async (): Promise<void> => {
    if (stopped) return;
    const c = make();
    c.on('error', (e) => lost(c, e));
    c.on('end', () => lost(c));
    c.on('notification', (m) => {
      if (current !== c || m.channel !== channel || typeof m.payload !== 'string') return;
      try {
        h.message(m.payload);
      } catch {
        // a listener's failure is its own; the next notification still arrives
      }
    });
    current = c;
    try {
      await c.connect();
      // The channel is checked to be a plain lower-case identifier; quoted as one all the same.
      await c.query(`LISTEN "${channel}"`);
    } catch (e) {
      if (current === c) {
        current = undefined;
        c.end().catch(() => {});
        if (!stopped) {
          report(e);
          retry();
        }
      }
      return;
    }
    if (stopped || current !== c) return;
    attempt = 0;
    if (missed) {
      missed = false;
      try {
        h.resync();
      } catch {
        // as for message
      }
    }
  };
  await connect();
  return {
    async close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const c = current;
      current = undefined;
      await c?.end().catch(() => {});
    },
  };
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
