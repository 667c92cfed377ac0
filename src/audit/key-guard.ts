import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { GuardError } from '../errors.js';
import { loadOrCreateBrokerKey, recordKeyInHistory, verifyHead, type BrokerKey, type PublicKeyEntry } from './broker-key.js';
import type { AuditHead } from './types.js';

/**
 * Several brokers, one chain, one signing key at a time (SECURITY.md, "Several brokers: one audit key").
 *
 * The chain verifier (src/audit/chain.ts) accepts exactly one key in force at any point of the chain, and moves to
 * the next only at a `key_rotation` record naming it. So every broker appending to one database signs with the
 * same key — the key file is deployed to each broker (out of the database, like a TLS key) — and a rotation
 * (`guard-aws broker --rotate-audit-key` on one broker) must stop the others from signing with the retired key.
 *
 * This guard runs inside the append transaction, after the chain lock, before anything is signed: the chain's
 * signed head must verify under this broker's key. If it does not, another key signs the chain now (another
 * broker rotated, or a broker was started with a key of its own). The broker then re-reads its key file — the
 * operator may have deployed the new key already — and carries on with it if it verifies the head; otherwise the
 * append is refused (`audit_key_retired`, HTTP 503: fail closed, nothing recorded; the client keeps the transcript
 * in its spool and tries again, or another broker). No record is ever signed by a key that is not the key in force,
 * so `audit verify` holds after any rotation.
 *
 * A database writer cannot use this to slip a key in: the head must verify under a key from this broker's own key
 * file, never under one found in the database. Writing a bogus head only stops appends (as deleting rows would).
 */
export interface KeyGuard {
  /** Throws `audit_key_retired` unless the head (null: empty log) is signed by this broker's key, reloading it once. */
  check(head: AuditHead | null, o?: { rotatingFrom?: KeyObject; previousKid?: string | null | undefined }): void;
  /** The key history as this broker knows it now (after any reload), oldest first. */
  history(): PublicKeyEntry[];
}

export interface KeyGuardOptions {
  /** The key the broker signs with: replaced IN PLACE (same object) when a reload finds the key in force. */
  key: BrokerKey;
  /** The key file to re-read; undefined (in-memory test brokers): never reloaded. */
  keyPath: string | undefined;
  history: PublicKeyEntry[];
  /** Called after a reload switched keys (the broker logs it; /v1/keys serves the new history). */
  onReload?: (next: BrokerKey, history: PublicKeyEntry[]) => void;
}

export function createKeyGuard(o: KeyGuardOptions): KeyGuard {
  let history = o.history;
  // The last head this broker saw verified (its own signatures mostly): checked once, not on every append.
  let trusted: { seq: number; hash: string; sig: string } | undefined;
  const ok = (head: AuditHead, key: KeyObject) => verifyHead(key, head.seq, head.hash, head.sig);
  return {
    history: () => history,
    check(head, c = {}) {
      if (!head) return;
      if (trusted && trusted.seq === head.seq && trusted.hash === head.hash && trusted.sig === head.sig) return;
      // The rotating broker's own key_rotation record follows a head of the key it retires (from its own history).
      const retiring = c.rotatingFrom ?? retiredKey(history, c.previousKid);
      if (ok(head, o.key.publicKey) || (retiring && ok(head, retiring))) {
        trusted = { ...head };
        return;
      }
      // Another key signs the chain now. The key file may hold it already (deployed after another broker's rotation).
      if (o.keyPath && existsSync(o.keyPath)) {
        let next: BrokerKey | undefined;
        try {
          next = loadOrCreateBrokerKey(o.keyPath, o.key.alg);
        } catch {
          next = undefined;
        }
        if (next && next.kid !== o.key.kid && ok(head, next.publicKey)) {
          // Same object: the audit log holds a reference to it and signs with whatever it holds from now on.
          Object.assign(o.key, next);
          try {
            history = recordKeyInHistory(o.keyPath, o.key);
          } catch {
            history = [...history.filter((e) => e.kid !== o.key.kid), { kid: o.key.kid, alg: o.key.alg, pem: o.key.publicPem }];
          }
          trusted = { ...head };
          o.onReload?.(o.key, history);
          return;
        }
      }
      throw new GuardError(
        'audit_key_retired',
        // Shown to clients: the kid is public, the key file's path is not named (the broker's log has the context).
        `this broker's audit key ${o.key.kid} no longer signs the audit log (another broker rotated the key, or this broker was given a key of its own); nothing was recorded — deploy the current audit key file to this broker`,
        { details: { kid: o.key.kid } },
      );
    },
  };
}

function retiredKey(history: readonly PublicKeyEntry[], kid: string | null | undefined): KeyObject | undefined {
  const e = kid ? history.find((x) => x.kid === kid) : undefined;
  return e ? createPublicKey({ key: e.pem, format: 'pem' }) : undefined;
}
