import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Db } from '../store/db.js';
import { z } from 'zod';
import { GuardError } from '../errors.js';
import { ApprovalService, type ApprovalNotification, type ApprovalServiceOptions } from './service.js';
import type { Sql } from '../store/db.js';
import { enqueueWebhook, startOutboxWorker, type OutboxDeps, type OutboxWorker } from './outbox.js';
import { checkWebhookConfig } from './webhook.js';

/**
 * The `approvals:` section of the broker config (all optional). The webhook secret is never written in the
 * config file itself: it comes from an environment variable (`secretEnv`, default GUARD_AWS_WEBHOOK_SECRET) or a
 * file readable by the broker (`secretFile`).
 */
export const approvalsConfigSchema = z.strictObject({
  /** How long a request waits for its approvals. */
  pendingTtlSec: z.int().min(60).max(7 * 86_400).default(900),
  /** How long an approved request may wait to be used, from the final approval. */
  approvedTtlSec: z.int().min(60).max(86_400).default(900),
  /** Days a closed request (denied, withdrawn, used, expired) stays listable before it is deleted; the audit log keeps the history. */
  retainClosedDays: z.int().min(1).max(36_500).default(30),
  webhook: z
    .strictObject({
      url: z.url({ protocol: /^https?$/ }),
      secretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).default('GUARD_AWS_WEBHOOK_SECRET'),
      secretFile: z.string().min(1).optional(),
      format: z.enum(['json', 'slack']).default('json'),
      maxAttempts: z.int().min(1).max(20).default(6),
      baseDelayMs: z.int().min(1).max(3_600_000).default(1000),
      maxDelayMs: z.int().min(1).max(86_400_000).default(60_000),
      timeoutMs: z.int().min(1).max(300_000).default(10_000),
      /** No longer used: events wait in the database's outbox, not in a bounded in-memory queue. Accepted so that
       * existing configs keep loading; the broker logs a warning when it is set. */
      maxQueue: z.int().min(1).max(1_000_000).optional(),
    })
    .optional(),
});

export type ApprovalsConfigInput = z.input<typeof approvalsConfigSchema>;
export type ApprovalsConfig = z.output<typeof approvalsConfigSchema>;

/**
 * The approval service and its webhook delivery loop, built from the config section. The broker's assembly
 * (src/broker/assemble.ts) mounts them: the gate, the /v1/approvals routes, and `close` on shutdown. Approvals
 * import nothing of the broker (docs/architecture.md).
 */
export interface Approvals {
  service: ApprovalService;
  /** This broker's webhook delivery loop over the outbox (src/approvals/outbox.ts), when a webhook is configured. */
  webhook?: OutboxWorker;
  /** Deletes closed requests past the retention now (also done hourly while the broker runs); how many went. */
  purge(): Promise<number>;
  /** Stops the retention timer and this broker's delivery loop (undelivered events stay in the outbox for the others). */
  close(): Promise<void> | void;
}

export interface ApprovalsSetup {
  /** The broker's database (BrokerStore.db), migrated. */
  db: Db;
  config?: ApprovalsConfigInput;
  /** Groups that may read every request (never decide one): the broker config's `auditorGroups`. Default `[auditors]`. */
  auditorGroups?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Directory relative `secretFile` paths are resolved against (the config file's). */
  baseDir?: string;
  now?: () => number;
  log?: OutboxDeps['log'];
  /** The web console's origin (broker config `console.publicUrl`): summaries link to their console page. */
  consoleUrl?: string;
  /** Also told of every committed change (the console's live updates), after the webhook. Must not block. */
  onChange?: (n: ApprovalNotification) => void;
  /**
   * Runs inside each change's own transaction, after the webhook outbox row (e.g. a PostgreSQL NOTIFY, delivered
   * to other brokers only if the change commits). Throwing rolls the change back.
   */
  inTransaction?: (tx: Sql, n: ApprovalNotification) => Promise<unknown>;
  webhookDeps?: Omit<OutboxDeps, 'log'>;
  service?: Omit<ApprovalServiceOptions, 'now' | 'notify' | 'pendingTtlMs' | 'approvedTtlMs' | 'auditorGroups'>;
}

/** The approval service (and webhook delivery loop) from the broker config's `approvals:` section, in one call. */
export function setupApprovals(s: ApprovalsSetup): Approvals {
  const parsed = approvalsConfigSchema.safeParse(s.config ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new GuardError('config_invalid', `approvals.${i.path.join('.')}: ${i.message}`);
  }
  const cfg = parsed.data;
  let worker: OutboxWorker | undefined;
  if (cfg.webhook) {
    const w = cfg.webhook;
    const env = s.env ?? process.env;
    let secret: string | undefined;
    if (w.secretFile) {
      const path = isAbsolute(w.secretFile) ? w.secretFile : resolve(s.baseDir ?? process.cwd(), w.secretFile);
      try {
        secret = readFileSync(path, 'utf8').trim();
      } catch (e) {
        throw new GuardError('config_invalid', `approvals.webhook.secretFile: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else {
      secret = env[w.secretEnv];
      if (!secret) throw new GuardError('config_invalid', `approvals.webhook: set ${w.secretEnv} to the webhook's shared secret`);
    }
    const { secretEnv: _e, secretFile: _f, maxQueue, ...rest } = w;
    if (maxQueue !== undefined) s.log?.({ level: 'warn', msg: 'approvals.webhook.maxQueue is no longer used: events wait in the database outbox' });
    // Delivered from the outbox in the database (src/approvals/outbox.ts): once per event, by whichever broker
    // is alive. The worker's fetch, clock and jitter follow the injected webhook deps (tests).
    worker = startOutboxWorker(s.db, checkWebhookConfig({ ...rest, secret }), { ...s.webhookDeps, ...(s.log ? { log: s.log } : {}) });
  }
  const webhook = worker;
  const service = new ApprovalService(s.db, {
    ...s.service,
    ...(s.now ? { now: s.now } : {}),
    pendingTtlMs: cfg.pendingTtlSec * 1000,
    approvedTtlMs: cfg.approvedTtlSec * 1000,
    retainClosedMs: cfg.retainClosedDays * 86_400_000,
    auditorGroups: [...(s.auditorGroups ?? ['auditors'])],
    ...(s.consoleUrl ? { consoleUrl: s.consoleUrl } : {}),
    ...(webhook || s.inTransaction
      ? {
          outbox: async (tx: Sql, n: ApprovalNotification) => {
            if (webhook) await enqueueWebhook(tx, n, (s.now ?? Date.now)());
            await s.inTransaction?.(tx, n);
          },
        }
      : {}),
    ...(webhook || s.onChange
      ? {
          notify: (n: ApprovalNotification) => {
            // The event is already in the outbox (committed with the change): deliver it now, not at the next poll.
            webhook?.kick();
            s.onChange?.(n);
          },
        }
      : {}),
  });
  // Retention runs on every broker; the deletes are idempotent, so several brokers sweeping at once is harmless.
  let purging: Promise<number> | undefined;
  const purge = () =>
    (purging ??= service
      .purgeClosed()
      .catch((e: unknown) => {
        s.log?.({ level: 'warn', msg: 'approvals: retention sweep failed', error: (e as Error)?.message });
        return 0;
      })
      .finally(() => (purging = undefined)));
  const timer = setInterval(() => void purge(), 3_600_000);
  timer.unref();
  return {
    service,
    purge,
    close: async () => {
      clearInterval(timer);
      await purging;
      await webhook?.close();
    },
    ...(webhook ? { webhook } : {}),
  };
}
