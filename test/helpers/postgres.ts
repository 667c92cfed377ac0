import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { openPostgresDb, openSqliteDb, type Db, type Dialect } from '../../src/store/db.js';
import { migrateAll } from '../../src/broker/storage.js';
import { freePort } from './ports.js';

/**
 * A real PostgreSQL server for a test file, from Debian's package (`postgresql`, installed by
 * scripts/setup-system.sh): a throwaway data directory, a free loopback port, its unix socket inside the data
 * directory, trust authentication on loopback only. PostgreSQL refuses to run as root, so as root the server runs
 * as the `postgres` user the package creates (runuser); as anyone else, as that user. One server per test file
 * (startPostgres in beforeAll, stop in afterAll); each test takes a fresh schema of it (`fresh`), so tests never
 * see each other's rows and need no server of their own.
 */
export interface TestPostgres {
  /** postgres://… of the server's `guard` database (no password: trust on loopback). */
  url: string;
  port: number;
  /** A new, empty schema as its own URL (search_path set), so every test starts from an empty store. */
  freshUrl(): Promise<string>;
  /** Stops the server (SIGINT: fast shutdown) and removes its data directory. */
  stop(): Promise<void>;
  /** Restarts the server on the same port and data (tests of a database that goes away and comes back). */
  restart(): Promise<void>;
  /** Stops the server without removing anything (restartable with `start`). */
  halt(): Promise<void>;
  start(): Promise<void>;
}

export const PG_BIN = process.env.GUARD_AWS_TEST_PG_BIN ?? findPgBin();

function findPgBin(): string | undefined {
  for (const v of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

/** Whether a real server can be started here (CI installs it; a developer machine may not have it). */
export const HAVE_POSTGRES = PG_BIN !== undefined;

const asRoot = userInfo().uid === 0;
/** argv prefix running a program as the postgres user when we are root. */
const as = (argv: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', ...argv]] : [argv[0]!, argv.slice(1)]);

/**
 * `tls`: the server also speaks TLS with a certificate for the host name `localhost` only (not 127.0.0.1), signed
 * by a throwaway CA made here with openssl; `caFile` is that CA (tests of sslmode verify-ca / verify-full).
 */
export async function startPostgres(o: { tls?: boolean } = {}): Promise<TestPostgres & { caFile?: string }> {
  if (!PG_BIN) throw new Error('PostgreSQL is not installed (apt-get install postgresql, or run scripts/setup-system.sh)');
  const dir = mkdtempSync(join(tmpdir(), 'guard-pg-'));
  if (asRoot) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
  }
  const data = join(dir, 'data');
  const [cmd, args] = as([join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'guard', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const tlsArgs: string[] = [];
  let caFile: string | undefined;
  if (o.tls) {
    const ssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
    };
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=guard-aws test CA']);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
    ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
    chmodSync(join(dir, 'server.key'), 0o600);
    if (asRoot) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      for (const f of ['server.key', 'server.pem']) chownSync(join(dir, f), uid, gid);
    }
    tlsArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.pem')}`, '-c', `ssl_key_file=${join(dir, 'server.key')}`);
    caFile = join(dir, 'ca.pem');
  }
  let proc: ChildProcess | undefined;
  const start = async () => {
    const [c, a] = as([
      join(PG_BIN!, 'postgres'),
      '-D', data,
      '-p', String(port),
      '-k', data,
      '-c', 'listen_addresses=127.0.0.1',
      // A throwaway server: durability off, so tests are fast (never set these on a real database).
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=200',
      ...tlsArgs,
    ]);
    const p = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    let log = '';
    p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc = p;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`postgres exited (${p.exitCode}): ${log}`);
      try {
        const db = await openPostgresDb({ url: `postgres://guard@127.0.0.1:${port}/postgres`, connectTimeoutMs: 1000, poolSize: 1 });
        try {
          await db.get('SELECT 1');
          break;
        } finally {
          await db.close();
        }
      } catch {
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const halt = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    // SIGINT = PostgreSQL's "fast shutdown": clients are disconnected, the server exits cleanly. runuser passes
    // the signal on to postgres.
    // runuser does not pass signals on: signal the postmaster itself (its pid heads postmaster.pid).
    let pid = p.pid;
    try {
      pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]) || p.pid;
    } catch {
      // not written yet: signal the child
    }
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      try {
        process.kill(pid!, 'SIGINT');
      } catch {
        p.kill('SIGINT');
      }
    });
  };
  await start();
  const admin = await openPostgresDb({ url: `postgres://guard@127.0.0.1:${port}/postgres`, poolSize: 1 });
  await admin.exec('CREATE DATABASE guard');
  await admin.close();
  const url = `postgres://guard@127.0.0.1:${port}/guard`;
  let n = 0;
  return {
    url,
    port,
    ...(caFile ? { caFile } : {}),
    async freshUrl() {
      const schema = `t${process.pid}_${++n}`;
      const db = await openPostgresDb({ url, poolSize: 1 });
      await db.exec(`CREATE SCHEMA ${schema}`);
      await db.close();
      return `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await start();
    },
    halt,
    start,
  };
}

/**
 * The store suites run the same tests on both databases: `describe.each(DIALECTS)`. PostgreSQL is left out only
 * where it is not installed and GUARD_AWS_TEST_PG=skip says so (CI installs it, see .ci and setup-system.sh).
 */
export const DIALECTS: Dialect[] = HAVE_POSTGRES || process.env.GUARD_AWS_TEST_PG !== 'skip' ? ['sqlite', 'postgres'] : ['sqlite'];

/**
 * Fresh migrated databases of one dialect for a test file: call `setup()` in beforeAll (starts the server for
 * PostgreSQL), `open()` per test, `teardown()` in afterAll (closes every database it opened and stops the server).
 * `open(key)` with the same key gives another connection to the same database: on SQLite the same file (in a
 * temporary directory), on PostgreSQL another pool on the same schema — several brokers on one store.
 */
export function testDatabases(dialect: Dialect) {
  let pg: TestPostgres | undefined;
  const opened: Db[] = [];
  const schemas = new Map<string, string>();
  let sqliteDir: string | undefined;
  return {
    get server(): TestPostgres | undefined {
      return pg;
    },
    async setup() {
      if (dialect === 'postgres') pg = await startPostgres();
    },
    /** A new empty, migrated database; with `key`, the same database as an earlier open with that key. */
    async open(key?: string, o: { poolSize?: number } = {}): Promise<Db> {
      let db: Db;
      if (dialect === 'sqlite') {
        // The same key = the same file (several connections to one file, as several broker processes would have).
        if (key !== undefined && !sqliteDir) sqliteDir = mkdtempSync(join(tmpdir(), 'guard-store-test-'));
        db = openSqliteDb(key !== undefined ? join(sqliteDir!, `${key}.db`) : ':memory:');
      } else {
        let url = key !== undefined ? schemas.get(key) : undefined;
        if (!url) {
          url = await pg!.freshUrl();
          if (key !== undefined) schemas.set(key, url);
        }
        db = await openPostgresDb({ url, poolSize: o.poolSize ?? 10 });
      }
      await migrateAll(db);
      opened.push(db);
      return db;
    },
    async teardown() {
      for (const db of opened) await db.close().catch(() => {});
      await pg?.stop();
      if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
    },
  };
}

/** A migrated SQLite database behind the port (file or `:memory:`), for tests that need only SQLite. */
export async function migratedSqlite(file = ':memory:'): Promise<Db> {
  const db = openSqliteDb(file);
  await migrateAll(db);
  return db;
}

/**
 * An AuditLog on an open better-sqlite3 handle (tests that tamper with the file keep the raw handle), the file
 * migrated first as the broker's store would.
 */
export async function logOn(raw: import('better-sqlite3').Database, key: import('../../src/audit/broker-key.js').BrokerKey, clock?: () => number) {
  const { AuditLog } = await import('../../src/audit/store.js');
  const { sqliteDb } = await import('../../src/store/db.js');
  const db = sqliteDb(raw);
  await migrateAll(db);
  return new AuditLog(db, key, clock);
}

/** Every item of an async iterable (Array.fromAsync arrived in Node 22). */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
