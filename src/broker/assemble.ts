import { ApprovalService } from '../approvals/service.js';
import { createApprovalGate } from '../approvals/gate.js';
import { createWebhookNotifier, type WebhookConfig, type WebhookNotifier } from '../approvals/webhook.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps } from './deps.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { productionDeps, type ProductionOptions } from './wiring.js';

export interface AssembleOptions extends ProductionOptions {
  /** Approval settings (from the broker config's `approvals` section). */
  approvals?: {
    pendingTtlSec?: number;
    approvedTtlSec?: number;
    auditorGroups?: string[];
    webhook?: WebhookConfig;
  };
  /** Group allowed to read the audit log. Default `auditors`. */
  auditorGroup?: string;
  now?: () => number;
}

/**
 * The complete broker: the production dependencies (policies, verifier, SQLite store, parser) plus the
 * modules that live in the same database — approvals (the gate that turns `approve` decisions into requests,
 * their routes and webhook notifications) and the transcript/audit log. Used by `guard-aws broker` and
 * `guard-aws dev`, so both run exactly the same broker.
 */
export function assembleBroker(config: BrokerConfig, o: AssembleOptions = {}): Omit<BrokerDeps, 'config'> & { webhook?: WebhookNotifier } {
  const deps = productionDeps(config, o);
  const extra = config as BrokerConfig & { approvals?: AssembleOptions['approvals']; auditorGroup?: string };
  const a = o.approvals ?? extra.approvals;
  const webhook = a?.webhook ? createWebhookNotifier(a.webhook, o.fetch ? { fetch: o.fetch } : {}) : undefined;
  const approvals = new ApprovalService(deps.store.db, {
    ...(o.now ? { now: o.now } : {}),
    ...(a?.pendingTtlSec ? { pendingTtlMs: a.pendingTtlSec * 1000 } : {}),
    ...(a?.approvedTtlSec ? { approvedTtlMs: a.approvedTtlSec * 1000 } : {}),
    ...(a?.auditorGroups ? { auditorGroups: a.auditorGroups } : {}),
    ...(webhook ? { notify: (e) => webhook.notify(e) } : {}),
  });
  const auditorGroup = o.auditorGroup ?? extra.auditorGroup;
  const audit = auditRoutes(auditorGroup ? { auditorGroup } : {});
  const routes = [
    ...(deps.routes ?? []),
    approvalRoutes(approvals),
    audit,
    ...(webhook ? [{ mount: () => undefined, close: () => webhook.drain().finally(() => webhook.close()) }] : []),
  ];
  return { ...deps, approvals: o.overrides?.approvals ?? createApprovalGate(approvals), routes, ...(webhook ? { webhook } : {}) };
}
