import { randomBytes } from 'node:crypto';
import type { ApprovalSummary } from '../api/types.js';
import type { ApprovalEventKind, ApprovalNotification } from '../approvals/service.js';
import type { Db, Listening, Sql } from '../store/db.js';
import type { BrokerLog } from './log.js';

/** The PostgreSQL channel approval changes are announced on (one per database; payloads in `FeedMessage`). */
export const APPROVAL_CHANNEL = 'guard_aws_approvals';

/** Told of each committed approval change; `onResync` when changes may have been missed (re-read everything). */
export type ApprovalSubscribe = (fn: (n: ApprovalNotification) => void, onResync?: () => void) => () => void;

/**
 * What one broker tells the others of a change: which request and what happened, and which broker process said
 * so (a random tag, so a broker skips its own). Nothing else — any session on the database may LISTEN, so the
 * request itself (argv, reasons, comments) is re-read from the database by whoever hears it, through the same
 * approval service and visibility checks as any other read.
 */
interface FeedMessage {
  id: string;
  kind: ApprovalEventKind;
  from: string;
}

const KINDS: ReadonlySet<string> = new Set<ApprovalEventKind>(['opened', 'approved', 'denied', 'withdrawn', 'used']);
const ID = /^[A-Za-z0-9_-]{1,128}$/;

export interface ApprovalFeed {
  readonly subscribe: ApprovalSubscribe;
  /** A change this broker committed (the approval service's `notify`): told to this broker's listeners. */
  local(n: ApprovalNotification): void;
  /** Inside the change's transaction: announces it to the other brokers, delivered only if it commits. */
  inTransaction(tx: Sql, n: ApprovalNotification): Promise<void>;
  /** Starts hearing the other brokers' changes (PostgreSQL only; on SQLite there are no others). */
  start(get: (id: string) => Promise<ApprovalSummary | undefined>, log: BrokerLog): Promise<void>;
  close(): Promise<void>;
}

/**
 * The approval changes every live listener of this broker hears — the console's event streams and held long polls
 * (GET /v1/approvals/:id?wait) — whichever broker made them. Changes made here are told in-process right after
 * they commit (as on SQLite, where this broker is the only one). On PostgreSQL each change is also announced with
 * NOTIFY inside its own transaction, and every broker LISTENs on one dedicated connection: a change heard from
 * another broker is re-read by id and told to the same listeners; one this broker announced itself is skipped,
 * so nobody hears it twice. When the listening connection was lost and is back (a database restart), listeners
 * are told to resync: the console pages re-fetch, long polls answer with the current state.
 */
export function approvalFeed(db: Db): ApprovalFeed {
  const listeners = new Set<{ fn: (n: ApprovalNotification) => void; resync: (() => void) | undefined }>();
  const self = randomBytes(12).toString('base64url');
  const shared = db.dialect === 'postgres';
  let listening: Listening | undefined;
  let stopped = false;
  // Remote changes are re-read one after another, so listeners hear them in the order they committed.
  let reading: Promise<void> = Promise.resolve();
  const tell = (n: ApprovalNotification) => {
    for (const l of [...listeners]) {
      try {
        l.fn(n);
      } catch {
        // one listener's failure (a closed stream) does not keep the others from hearing
      }
    }
  };
  return {
    subscribe(fn, onResync) {
      const entry = { fn, resync: onResync };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    local: tell,
    async inTransaction(tx, n) {
      if (!shared) return;
      // Commits that NOTIFY take turns on PostgreSQL's notification queue: fine for approval changes (a few per
      // approval request), far rarer than grants, which announce nothing.
      const m: FeedMessage = { id: n.approval.id, kind: n.kind, from: self };
      await tx.notify(APPROVAL_CHANNEL, JSON.stringify(m));
    },
    async start(get, log) {
      if (!shared || stopped || listening) return;
      const heard = (payload: string) => {
        const m = parse(payload);
        if (!m || m.from === self) return;
        reading = reading.then(async () => {
          if (stopped) return;
          try {
            const approval = await get(m.id);
            // Not found: purged meanwhile, or a request of another deployment sharing the database (NOTIFY
            // channels are per database, not per schema).
            if (approval) tell(remoteNotification(m.kind, approval));
          } catch (e) {
            log({ level: 'warn', msg: 'approvals: could not re-read a change another broker announced', approvalId: m.id, error: (e as Error)?.message });
          }
        });
      };
      // Said once per outage (the reconnect loop retries every few seconds while the database is away).
      let down = false;
      listening = await db.listen(APPROVAL_CHANNEL, {
        message: heard,
        resync: () => {
          down = false;
          log({ level: 'info', msg: 'approvals: listening for other brokers\' changes again; live pages and long polls re-read' });
          for (const l of [...listeners]) {
            try {
              l.resync?.();
            } catch {
              // as in tell
            }
          }
        },
        error: (e) => {
          if (down) return;
          down = true;
          log({ level: 'warn', msg: 'approvals: not listening for other brokers\' changes (reconnecting)', error: e.message });
        },
      });
      if (stopped) await listening.close();
    },
    async close() {
      stopped = true;
      listeners.clear();
      await listening?.close();
      await reading;
    },
  };
}

function parse(payload: string): FeedMessage | undefined {
  try {
    const m = JSON.parse(payload) as Partial<FeedMessage> | null;
    if (m && typeof m.id === 'string' && ID.test(m.id) && typeof m.kind === 'string' && KINDS.has(m.kind) && typeof m.from === 'string') return m as FeedMessage;
  } catch {
    // not ours, or garbled: ignored
  }
  return undefined;
}

/** A change heard from another broker, from the request as re-read: who did it and when, as the service reports. */
function remoteNotification(kind: ApprovalEventKind, a: ApprovalSummary): ApprovalNotification {
  const last = a.approvals[a.approvals.length - 1];
  const [actor, at] =
    kind === 'approved' && last
      ? [last.by, last.at]
      : kind === 'denied' && a.denial
        ? [a.denial.by, a.denial.at]
        : kind === 'withdrawn'
          ? [a.requester, a.withdrawnAt ?? new Date().toISOString()]
          : kind === 'used'
            ? [a.requester, a.usedAt ?? new Date().toISOString()]
            : [a.requester, a.createdAt];
  return { kind, at, actor, approval: a };
}
