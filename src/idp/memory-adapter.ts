/**
 * oidc-provider storage adapter kept in this process's memory. The embedded IdP is a development and test
 * server: losing its sessions and tokens on restart is intended (users simply log in again). Writing our own
 * instead of the library's quick-start one keeps each IdP instance's data separate (two IdPs in one test process
 * must not share tokens) and avoids its production warning on every start.
 */
type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; consumed?: number };

const EXPIRED_GRACE_SEC = 300;

interface Entry {
  payload: Payload;
  expiresAt: number;
}

export function createMemoryAdapterFactory(now: () => number = Date.now) {
  const stores = new Map<string, Map<string, Entry>>();
  const byGrant = new Map<string, Set<string>>(); // grantId → "Model:id"

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
        if (payload.grantId) {
          let set = byGrant.get(payload.grantId);
          if (!set) byGrant.set(payload.grantId, (set = new Set()));
          set.add(`${name}:${id}`);
        }
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
      },
      async destroy(id: string): Promise<void> {
        live(name).delete(id);
      },
      async revokeByGrantId(grantId: string): Promise<void> {
        for (const key of byGrant.get(grantId) ?? []) {
          const i = key.indexOf(':');
          stores.get(key.slice(0, i))?.delete(key.slice(i + 1));
        }
        byGrant.delete(grantId);
      },
    };
  };
}
