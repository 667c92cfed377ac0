import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * oidc-provider storage adapter kept in this process's memory. Writing our own instead of the library's
 * quick-start one keeps each IdP instance's data separate (two IdPs in one test process must not share tokens) and
 * avoids its production warning on every start.
 *
 * With `persist.file`, what a CLI login leaves behind — refresh tokens and their grants — is also written to that
 * file (0600, replaced atomically on each change) and read back at start, so `guard-aws dev` restarted with the
 * same data directory (and so the same signing key) keeps everyone logged in. Browser sessions are not kept: their
 * cookies are signed with keys made at each start, so a saved session could never be read back; the CLI's refresh
 * tokens do not depend on them (it asks for offline_access). Short-lived entries (device codes, interactions,
 * access tokens) stay in memory only.
 */
const PERSISTED_MODELS = new Set(['RefreshToken', 'Grant']);

interface StoreFile {
  version: 1;
  entries: Record<string, Record<string, { payload: Payload; expiresAt: number | null }>>;
}
type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; consumed?: number };

const EXPIRED_GRACE_SEC = 300;

interface Entry {
  payload: Payload;
  expiresAt: number;
}

export function createMemoryAdapterFactory(now: () => number = Date.now, persist?: { file: string }) {
  const stores = new Map<string, Map<string, Entry>>();
  const byGrant = new Map<string, Set<string>>(); // grantId → "Model:id"

  const index = (name: string, id: string, payload: Payload) => {
    if (!payload.grantId) return;
    let set = byGrant.get(payload.grantId);
    if (!set) byGrant.set(payload.grantId, (set = new Set()));
    set.add(`${name}:${id}`);
  };

  if (persist && existsSync(persist.file)) {
    // A store that cannot be read only costs the logins in it: start empty rather than refuse to start.
    try {
      const data = JSON.parse(readFileSync(persist.file, 'utf8')) as StoreFile;
      for (const [name, entries] of Object.entries(data.version === 1 ? data.entries : {})) {
        if (!PERSISTED_MODELS.has(name)) continue;
        for (const [id, e] of Object.entries(entries)) {
          const expiresAt = e.expiresAt ?? Number.POSITIVE_INFINITY;
          if (expiresAt <= now()) continue;
          live(name).set(id, { payload: e.payload, expiresAt });
          index(name, id, e.payload);
        }
      }
    } catch {
      stores.clear();
      byGrant.clear();
    }
  }

  function save(name: string): void {
    if (!persist || !PERSISTED_MODELS.has(name)) return;
    const out: StoreFile = { version: 1, entries: {} };
    for (const model of PERSISTED_MODELS) {
      const entries: StoreFile['entries'][string] = {};
      for (const [id, e] of stores.get(model) ?? []) {
        if (e.expiresAt > now()) entries[id] = { payload: e.payload, expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : null };
      }
      out.entries[model] = entries;
    }
    const tmp = `${persist.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(out), { mode: 0o600 });
    renameSync(tmp, persist.file);
  }

  function live(name: string): Map<string, Entry> {
    let s = stores.get(name);
    if (!s) stores.set(name, (s = new Map()));
    return s;
  }

  function get(name: string, id: string): Payload | undefined {
    const e = live(name).get(id);
    if (!e) return undefined;
    if (e.expiresAt <= now()) {
      live(name).delete(id);
      return undefined;
    }
    return e.payload;
  }

  return function adapterFor(name: string) {
    return {
      async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
        // Kept a little past expiry: oidc-provider checks expiry itself, and only an entry it can still find lets it
        // answer precisely (a device code past its life gets `expired_token`, RFC 8628 §3.5, not "not found").
        const expiresAt = typeof expiresIn === 'number' ? now() + (expiresIn + EXPIRED_GRACE_SEC) * 1000 : Number.POSITIVE_INFINITY;
        live(name).set(id, { payload: { ...payload }, expiresAt });
        index(name, id, payload);
        save(name);
      },
      async find(id: string): Promise<Payload | undefined> {
        const p = get(name, id);
        return p ? { ...p } : undefined;
      },
      async findByUserCode(userCode: string): Promise<Payload | undefined> {
        for (const [id, e] of live(name)) {
          if (e.payload.userCode === userCode) return get(name, id);
        }
        return undefined;
      },
      async findByUid(uid: string): Promise<Payload | undefined> {
        for (const [id, e] of live(name)) {
          if (e.payload.uid === uid) return get(name, id);
        }
        return undefined;
      },
      async consume(id: string): Promise<void> {
        const e = live(name).get(id);
        if (e) e.payload.consumed = Math.floor(now() / 1000);
        save(name);
      },
      async destroy(id: string): Promise<void> {
        live(name).delete(id);
        save(name);
      },
      async revokeByGrantId(grantId: string): Promise<void> {
        const models = new Set<string>();
        for (const key of byGrant.get(grantId) ?? []) {
          const i = key.indexOf(':');
          models.add(key.slice(0, i));
          stores.get(key.slice(0, i))?.delete(key.slice(i + 1));
        }
        byGrant.delete(grantId);
        for (const m of models) save(m);
      },
    };
  };
}
