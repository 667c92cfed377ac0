import { randomUUID } from 'node:crypto';
import type { Db, Sql } from '../store/db.js';
import type { Migration } from '../store/migrate.js';
import type { ApprovalNotification } from './service.js';
import {
  checkWebhookConfig,
  postWebhook,
  retryDelay,
  webhookBody,
  webhookEventType,
  type WebhookConfig,
  type WebhookEvent,
} from './webhook.js';

/**
 * The webhook outbox: approval events delivered once per event by whichever broker is alive (issue 9).
 *
 * An event is written to `webhook_outbox` in the same transaction as the approval change it reports, so a change
 * that committed always has its event, and one that rolled back never has. Every broker runs a delivery loop that
 * claims one due event at a time in the database — `FOR UPDATE SKIP LOCKED` on PostgreSQL (two brokers never claim
 * the same row; neither waits for the other), the IMMEDIATE transaction on SQLite (one writer) — posts it, and
 * marks it delivered. A failed attempt (network error, timeout, 408, 429, 5xx) is put back with exponential backoff
 * and jitter, for any broker to retry; other 4xx, or `maxAttempts` failures, end it as failed (logged).
 *
 * Delivery is at-least-once, not exactly-once: a broker killed after the receiver took the POST but before it
 * marked the row delivered leaves a claim that expires (`claimMs`), and another broker delivers the event again.
 * Every attempt of one event carries the same `X-Guard-Aws-Delivery` id (the row's id, also `deliveryId` in the
 * body): receivers deduplicate on it. Under normal operation — brokers that live through their deliveries — each
 * event is posted exactly once (tested with three brokers on PostgreSQL, test/ha/outbox.test.ts).
 */
export const OUTBOX_SCHEMA: readonly Migration[] = [
  {
    sqlite: `CREATE TABLE webhook_outbox (
      id TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      event TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at INTEGER NOT NULL,
      claimed_by TEXT,
      claimed_until INTEGER,
      delivered_at INTEGER,
      failed_at INTEGER,
      last_error TEXT
    ) STRICT;
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;`,
    postgres: `CREATE TABLE webhook_outbox (
      id TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      event TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at BIGINT NOT NULL,
      claimed_by TEXT,
      claimed_until BIGINT,
      delivered_at BIGINT,
      failed_at BIGINT,
      last_error TEXT
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;`,
  },
];

/** Writes the event for `n` into the outbox, inside the caller's transaction `tx`. */
export async function enqueueWebhook(tx: Sql, n: ApprovalNotification, now: number, newId: () => string = randomUUID): Promise<string> {
  const event: WebhookEvent = {
    type: webhookEventType(n.kind),
    deliveryId: newId(),
    at: n.at,
    actor: n.actor,
    ...(n.comment ? { comment: n.comment } : {}),
    approval: n.approval,
  };
  await tx.run('INSERT INTO webhook_outbox (id, type, event, created_at, next_at) VALUES (?, ?, ?, ?, ?)', [event.deliveryId, event.type, JSON.stringify(event), now, now]);
  return event.deliveryId;
}

interface Claimed {
  id: string;
  type: string;
  event: string;
  attempts: number;
}

export interface OutboxDeps {
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  /** This broker's name in claims (logs, and who holds a row): host and pid by default. */
  brokerId?: string;
  /** How often an idle broker looks for due events. Default 1 s. */
  pollMs?: number;
  log?: (entry: { level: 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }) => void;
}

export interface OutboxWorker {
  /** Look for due events now (after this broker enqueued one: no need to wait for the next poll). */
  kick(): void;
  /** Resolves when no event is due any more (tests). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Starts this broker's delivery loop for `config` over `db`. */
export function startOutboxWorker(db: Db, config: WebhookConfig, deps: OutboxDeps = {}): OutboxWorker {
  const cfg = checkWebhookConfig(config);
  const f = deps.fetch ?? fetch;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const me = deps.brokerId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  const pollMs = deps.pollMs ?? 1000;
  const log = deps.log ?? (() => {});
  const maxAttempts = cfg.maxAttempts ?? 6;
  const baseDelay = cfg.baseDelayMs ?? 1000;
  const maxDelay = cfg.maxDelayMs ?? 60_000;
  const timeoutMs = cfg.timeoutMs ?? 10_000;
  const format = cfg.format ?? 'json';
  // A claim outlives one attempt's deadline: only a broker that died (or hung) loses its claim to another.
  const claimMs = timeoutMs * 2 + 5_000;

  let closed = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];

  const claim = (): Promise<Claimed | undefined> =>
    db.transaction(async (tx) => {
      const t = now();
      const due = `SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_at, id LIMIT 1`;
      // PostgreSQL: skip rows another broker is claiming right now instead of waiting for it.
      const pick = db.dialect === 'postgres' ? `${due} FOR UPDATE SKIP LOCKED` : due;
      const row = await tx.get<{ id: string }>(pick, [t, t]);
      if (!row) return undefined;
      await tx.run('UPDATE webhook_outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 WHERE id = ?', [me, t + claimMs, row.id]);
      const got = await tx.get<Claimed>('SELECT id, type, event, attempts FROM webhook_outbox WHERE id = ?', [row.id]);
      return got ? { ...got, attempts: Number(got.attempts) } : undefined;
    });

  const deliver = async (c: Claimed): Promise<void> => {
    const event = JSON.parse(c.event) as WebhookEvent;
    const r = await postWebhook(cfg, f, { type: c.type, deliveryId: c.id, body: webhookBody(event, format), nowMs: now(), timeoutMs });
    if (r.ok) {
      // Only the claim holder marks it: a broker whose claim lapsed (it hung) must not overwrite another's work.
      await db.run('UPDATE webhook_outbox SET delivered_at = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?', [now(), c.id, me]);
      log({ level: 'info', msg: 'webhook delivered', deliveryId: c.id, event: c.type, attempt: c.attempts });
      return;
    }
    if (!r.retryable || c.attempts >= maxAttempts) {
      await db.run('UPDATE webhook_outbox SET failed_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?', [now(), r.outcome, c.id, me]);
      log({ level: 'warn', msg: 'webhook delivery given up', deliveryId: c.id, event: c.type, attempts: c.attempts, outcome: r.outcome });
      return;
    }
    const delay = retryDelay(c.attempts, baseDelay, maxDelay, r.retryAfterMs, random);
    await db.run('UPDATE webhook_outbox SET next_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?', [now() + delay, r.outcome, c.id, me]);
    log({ level: 'info', msg: 'webhook attempt failed; retrying', deliveryId: c.id, attempt: c.attempts, outcome: r.outcome, delayMs: delay });
  };

  const loop = async () => {
    try {
      for (;;) {
        if (closed) return;
        const c = await claim();
        if (!c) return;
        await deliver(c);
      }
    } catch (e) {
      // The database is away (a restart): the events wait in it; the next poll tries again.
      log({ level: 'warn', msg: 'webhook outbox unavailable', error: (e as Error)?.message ?? String(e) });
    }
  };

  const run = () => {
    if (closed || running) return;
    running = loop().finally(() => {
      running = undefined;
      const w = waiters;
      waiters = [];
      for (const x of w) x();
    });
  };
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      run();
      schedule();
    }, pollMs);
    timer.unref();
  };
  schedule();
  queueMicrotask(run);

  return {
    kick: () => queueMicrotask(run),
    idle: async () => {
      for (;;) {
        if (running) await new Promise<void>((r) => waiters.push(r));
        const t = now();
        const due = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?', [t]);
        if (!Number(due?.n)) return;
        run();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
