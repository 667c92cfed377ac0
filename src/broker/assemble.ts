import { dirname } from 'node:path';
import type { ApprovalNotification } from '../approvals/service.js';
import { setupApprovals, type ApprovalsConfigInput } from '../approvals/setup.js';
import { mountConsole } from '../console/routes.js';
import { createApprovalGate } from './approval-gate.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps, BrokerRouteModule } from './deps.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { productionDeps, type ProductionOptions } from './wiring.js';

export interface AssembleOptions extends ProductionOptions {
  /** Overrides the config's `approvals` section (tests: short expiries). */
  approvals?: ApprovalsConfigInput;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Start signing the audit log with a new key, recorded in the chain (`--rotate-audit-key`; one start only). */
  rotateAuditKey?: boolean;
}

/**
 * The complete broker: the production dependencies (policies, verifier, SQLite store, parser) plus the
 * modules that live in the same database — approvals (the gate that turns `approve` decisions into requests,
 * their routes and webhook notifications) and the transcript/audit log. Used by `guard-aws broker` and
 * `guard-aws dev`, so both run exactly the same broker. Mounting happens here and only here: the modules mounted
 * import nothing of the broker (docs/architecture.md).
 */
export function assembleBroker(config: BrokerConfig, o: AssembleOptions = {}): Omit<BrokerDeps, 'config'> {
  const deps = productionDeps(config, o);
  // Committed approval changes, for the console's live updates (the webhook is told separately).
  const listeners = new Set<(n: ApprovalNotification) => void>();
  const approvals = setupApprovals({
    db: deps.store.db,
    config: o.approvals ?? config.approvals ?? {},
    auditorGroups: config.auditorGroups,
    env: o.env ?? process.env,
    baseDir: config.source ? dirname(config.source) : process.cwd(),
    ...(o.now ? { now: o.now } : {}),
    // Approvers are shown decoded parameters; the policies' masking rules apply to them as to run output.
    ...(deps.masking ? { service: { masking: deps.masking } } : {}),
    ...(config.console ? { consoleUrl: config.console.publicUrl } : {}),
    onChange: (n) => {
      for (const l of listeners) l(n);
    },
  });
  const audit = auditRoutes({
    auditorGroups: config.auditorGroups,
    // A run's audit record keeps the approval it used, parameters as the approvers saw them.
    getApproval: (id) => approvals.service.get(id),
    ...(o.rotateAuditKey ? { rotateKey: true } : {}),
  });
  const routes: BrokerRouteModule[] = [...(deps.routes ?? []), {
      ...approvalRoutes(approvals.service, {
        subscribe: (fn) => {
          listeners.add(fn);
          return () => listeners.delete(fn);
        },
      }),
      close: () => approvals.close(),
    }, audit];
  if (config.console) {
    const consoleConfig = config.console;
    let mounted: { close(): void } | undefined;
    routes.push({
      mount: (app, ctx) => {
        mounted = mountConsole(app, {
          config: consoleConfig,
          issuer: config.issuer,
          audience: config.audience,
          verify: deps.verify,
          approvals: approvals.service,
          audit: () => audit.service,
          auditorGroups: config.auditorGroups,
          targets: config.targets.map((t) => ({ name: t.name, account: t.account, region: t.region })),
          db: ctx.store.db,
          subscribe: (fn) => {
            listeners.add(fn);
            return () => listeners.delete(fn);
          },
          ...(o.now ? { now: o.now } : {}),
          ...(o.fetch ? { fetch: o.fetch } : {}),
          ...(o.env ? { env: o.env } : {}),
          log: (e) => ctx.log(e),
        });
      },
      drain: () => mounted?.close(),
      close: () => mounted?.close(),
    });
  }
  return {
    ...deps,
    approvals: o.overrides?.approvals ?? createApprovalGate(approvals.service),
    routes,
  };
}
