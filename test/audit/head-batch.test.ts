/**
 * Transcript appends sign the chain head once per batch (issue 14): the batch must never leave an acknowledged
 * record outside a signed head, and a broker that stopped before signing must neither hide nor invent records.
 * Real SQLite files; tampering as in chain.test.ts (SQL with the append-only triggers dropped).
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey } from '../../src/audit/broker-key.js';
import { verifyChain } from '../../src/audit/chain.js';
import { AuditLog } from '../../src/audit/store.js';
import { tempDir } from '../transcript/helpers.js';

const key = generateBrokerKey();
const body = (i: number) => ({ envelope: { marker: `m-${i}` }, uploadedBy: 'x', callerVerified: true });

function open(path: string) {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  return { db, log: new AuditLog(db, key) };
}
/** What another process reading the file sees: the stored head, without any flushing by this log. */
function storedHead(path: string): number | null {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM audit_head WHERE one = 1').get() as { seq: number } | undefined)?.seq ?? null;
  } finally {
    db.close();
  }
}
function verifyFile(path: string) {
  const db = new BetterSqlite3(path);
  try {
    const log = new AuditLog(db, key);
    return verifyChain(log.iterate(), key.publicKey, { head: log.head() });
  } finally {
    db.close();
  }
}

describe('batched head signatures', () => {
  it('one head over a batch of deferred appends, stored before headSigned() resolves', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const { db, log } = open(path);
    log.append({ kind: 'transcript', grantId: 'g0', subject: 's', body: body(0) });
    expect(storedHead(path)).toBe(1);
    for (let i = 1; i <= 5; i++) log.append({ kind: 'transcript', grantId: `g${i}`, subject: 's', body: body(i), deferHead: true });
    expect(storedHead(path)).toBe(1); // not yet: one signature will cover all five
    await log.headSigned();
    expect(storedHead(path)).toBe(6);
    expect(log.head()!.seq).toBe(6);
    db.close();
    expect(verifyFile(path)).toMatchObject({ ok: true, count: 6 });
  });

  it('reading the head signs what is pending first, and an ordinary append covers a pending batch', () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const { db, log } = open(path);
    log.append({ kind: 'transcript', grantId: 'a', subject: 's', body: body(1), deferHead: true });
    expect(log.head()!.seq).toBe(1);
    log.append({ kind: 'transcript', grantId: 'b', subject: 's', body: body(2), deferHead: true });
    log.append({ kind: 'unreported', grantId: 'c', subject: 's', body: body(3) });
    expect(storedHead(path)).toBe(3);
    db.close();
    expect(verifyFile(path)).toMatchObject({ ok: true, count: 3 });
  });

  it('a broker stopped before signing: verify reports the unsigned tail until the broker repairs it', () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const first = open(path);
    first.log.append({ kind: 'transcript', grantId: 'a', subject: 's', body: body(1) });
    first.log.append({ kind: 'transcript', grantId: 'b', subject: 's', body: body(2), deferHead: true });
    first.log.append({ kind: 'transcript', grantId: 'c', subject: 's', body: body(3), deferHead: true });
    first.db.close(); // "crash": the batch's head was never signed
    expect(storedHead(path)).toBe(1);
    expect(verifyFile(path).firstBroken?.reason).toMatch(/after the signed head/);
    const again = open(path);
    expect(again.log.repairHead()).toBe(true);
    again.db.close();
    expect(verifyFile(path)).toMatchObject({ ok: true, count: 3 });
  });

  it('never repairs over a tail that is not the broker\'s: a changed record stays reported', () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const first = open(path);
    first.log.append({ kind: 'transcript', grantId: 'a', subject: 's', body: body(1) });
    first.log.append({ kind: 'transcript', grantId: 'b', subject: 's', body: body(2), deferHead: true });
    first.db.close();
    const db = new BetterSqlite3(path);
    db.exec('DROP TRIGGER audit_log_no_update');
    db.exec(`UPDATE audit_log SET body = replace(body, 'm-2', 'm-X') WHERE seq = 2`);
    db.close();
    const again = open(path);
    expect(again.log.repairHead()).toBe(false);
    again.db.close();
    expect(verifyFile(path).ok).toBe(false);
    expect(storedHead(path)).toBe(1);
  });

  it('a head never moves backwards (two brokers on one file)', async () => {
    const path = join(tempDir('guard-audit-'), 'broker.db');
    const a = open(path);
    const b = open(path);
    a.log.append({ kind: 'transcript', grantId: 'a', subject: 's', body: body(1), deferHead: true });
    b.log.append({ kind: 'transcript', grantId: 'b', subject: 's', body: body(2) });
    expect(storedHead(path)).toBe(2);
    await a.log.headSigned(); // a's pending head (seq 1) is covered by b's: not written over it
    expect(storedHead(path)).toBe(2);
    a.db.close();
    b.db.close();
    expect(verifyFile(path)).toMatchObject({ ok: true, count: 2 });
  });
});
