import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateBrokerKey, loadOrCreateBrokerKey, publicKeysDocument, readKeyHistory, recordKeyInHistory, signHead, type BrokerKey } from '../../src/audit/broker-key.js';
import { createKeyGuard } from '../../src/audit/key-guard.js';
import { GuardError } from '../../src/errors.js';

// The guard that keeps a broker from signing the shared chain with a key that is not the key in force
// (src/audit/key-guard.ts): each case is a way a retired or foreign key could try to sign on.

const dir = mkdtempSync(join(tmpdir(), 'guard-keyguard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const headBy = (k: BrokerKey, seq = 7, hash = 'a'.repeat(64)) => ({ seq, hash, sig: signHead(k.privateKey, seq, hash) });
const writeKey = (path: string, k: BrokerKey) => {
  writeFileSync(path, k.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
  chmodSync(path, 0o600);
};
function refused(f: () => void): GuardError {
  try {
    f();
  } catch (e) {
    if (e instanceof GuardError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('the audit key guard', () => {
  it('passes an empty log and a head signed by its own key', () => {
    const path = join(dir, 'own.pem');
    const key = loadOrCreateBrokerKey(path);
    const g = createKeyGuard({ key, keyPath: path, history: recordKeyInHistory(path, key) });
    g.check(null);
    g.check(headBy(key));
  });

  it('refuses to sign after another broker rotated, while its key file still holds the retired key (503, exit 69)', () => {
    const path = join(dir, 'retired.pem');
    const old = loadOrCreateBrokerKey(path);
    const g = createKeyGuard({ key: old, keyPath: path, history: recordKeyInHistory(path, old) });
    const rotated = generateBrokerKey();
    const e = refused(() => g.check(headBy(rotated)));
    expect(e.code).toBe('audit_key_retired');
    expect(e.exitCode).toBe(69);
    expect(e.message).toContain(old.kid);
    // Still refused on the next try: nothing is cached from a failure.
    expect(refused(() => g.check(headBy(rotated))).code).toBe('audit_key_retired');
  });

  it('picks up the new key once it is deployed to its key file, without a restart, and lists it', () => {
    const path = join(dir, 'deployed.pem');
    const old = loadOrCreateBrokerKey(path);
    const key = old; // the object the audit log holds
    const reloads: string[] = [];
    const g = createKeyGuard({ key, keyPath: path, history: recordKeyInHistory(path, old), onReload: (k) => reloads.push(k.kid) });
    const oldKid = old.kid;
    const rotated = generateBrokerKey();
    // The rotating broker wrote history [old, rotated]; the operator copies key and history here.
    writeKey(path, rotated);
    g.check(headBy(rotated));
    expect(key.kid).toBe(rotated.kid); // swapped in place: the log signs with the new key from now on
    expect(reloads).toEqual([rotated.kid]);
    expect(g.history().map((e) => e.kid)).toEqual([oldKid, rotated.kid]);
    expect(readKeyHistory(path).map((e) => e.kid)).toEqual([oldKid, rotated.kid]);
    // Each key is listed with when it entered the history (its first possible use), as GET /v1/keys serves it.
    const doc = publicKeysDocument(key, g.history());
    expect(doc.keys.map((k) => [k.kid, k.current, typeof k.addedAt])).toEqual([
      [rotated.kid, true, 'string'],
      [oldKid, false, 'string'],
    ]);
  });

  it('a key file holding yet another key (not the one in force) is refused, and the broker keeps its key', () => {
    const path = join(dir, 'third.pem');
    const mine = loadOrCreateBrokerKey(path);
    const kid = mine.kid;
    const g = createKeyGuard({ key: mine, keyPath: path, history: recordKeyInHistory(path, mine) });
    writeKey(path, generateBrokerKey());
    expect(refused(() => g.check(headBy(generateBrokerKey()))).code).toBe('audit_key_retired');
    expect(mine.kid).toBe(kid);
  });

  it('a head that verifies under no key (a forged row) stops appends rather than being trusted', () => {
    const path = join(dir, 'forged.pem');
    const mine = loadOrCreateBrokerKey(path);
    const g = createKeyGuard({ key: mine, keyPath: path, history: recordKeyInHistory(path, mine) });
    const good = headBy(mine);
    expect(refused(() => g.check({ ...good, hash: 'b'.repeat(64) })).code).toBe('audit_key_retired');
  });

  it('the rotating broker itself may sign its key_rotation record over a head of the key it retires', () => {
    const path = join(dir, 'rotating.pem');
    const previous = generateBrokerKey();
    const fresh = loadOrCreateBrokerKey(path);
    const g = createKeyGuard({ key: fresh, keyPath: path, history: recordKeyInHistory(path, fresh) });
    g.check(headBy(previous), { rotatingFrom: previous.publicKey });
    expect(refused(() => g.check(headBy(previous, 8))).code).toBe('audit_key_retired');
  });
});
