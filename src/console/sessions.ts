import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Caller } from '../policy/types.js';
import type { Db } from '../store/db.js';

/**
 * Console sign-ins, in the broker's database so several broker processes behind one name share them. The
 * cookie carries a random 256-bit id; the table keeps only its SHA-256, so a copy of the database opens no
 * session. No token is stored: the access token is verified once at sign-in (the same verifier as the API) and
 * the caller it names — subject, groups, name — is what the session keeps until it expires.
 */
const SQLITE = [
  `CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    caller     TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);`,
];

/** Both dialects' steps (src/store/migrate.ts); PostgreSQL keeps millisecond times in BIGINT. */
export const CONSOLE_SCHEMA = SQLITE.map((sqlite) => ({
  sqlite,
  postgres: sqlite.replace(') STRICT;', ');').replace(/INTEGER/g, 'BIGINT'),
}));

export interface ConsoleSession {
  caller: Caller;
  /** Synchronizer token every state-changing form carries (OWASP CSRF Prevention Cheat Sheet). */
  csrf: string;
  expiresAt: number;
}

const hash = (id: string) => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  /** `db` must be migrated (src/broker/storage.ts migrateAll). */
  constructor(private readonly db: Db, private readonly now: () => number) {}

  /** A new session; returns the cookie value (the only place the id exists in clear). */
  async create(caller: Caller, ttlMs: number): Promise<{ id: string; session: ConsoleSession }> {
    const now = this.now();
    await this.db.run('DELETE FROM console_sessions WHERE expires_at <= ?', [now]);
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = { caller: { subject: caller.subject, groups: [...caller.groups], ...(caller.name ? { name: caller.name } : {}) }, csrf: randomBytes(32).toString('base64url'), expiresAt: now + ttlMs };
    await this.db.run('INSERT INTO console_sessions (id_hash, caller, csrf, created_at, expires_at) VALUES (?,?,?,?,?)', [
      hash(id), JSON.stringify(session.caller), session.csrf, now, session.expiresAt,
    ]);
    return { id, session };
  }

  async get(id: string | undefined): Promise<ConsoleSession | undefined> {
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const row = await this.db.get<{ caller: string; csrf: string; expires_at: number }>(
      'SELECT caller, csrf, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?',
      [hash(id), this.now()],
    );
    return row ? { caller: JSON.parse(row.caller) as Caller, csrf: row.csrf, expiresAt: row.expires_at } : undefined;
  }

  async delete(id: string | undefined): Promise<void> {
    if (id) await this.db.run('DELETE FROM console_sessions WHERE id_hash = ?', [hash(id)]);
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function sameToken(given: string | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}
