import { dirname } from 'node:path';
import { setupApprovals, type ApprovalsConfigInput } from '../approvals/setup.js';
import { createApprovalGate } from './approval-gate.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps } from './deps.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { ingestTranscript } from '../audit/ingest.js';
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
  const approvals = setupApprovals({
    db: deps.store.db,
    config: o.approvals ?? config.approvals ?? {},
    auditorGroups: config.auditorGroups,
    env: o.env ?? process.env,
    baseDir: config.source ? dirname(config.source) : process.cwd(),
    ...(o.now ? { now: o.now } : {}),
  });
  const audit = auditRoutes({ auditorGroups: config.auditorGroups, ...(o.rotateAuditKey ? { rotateKey: true } : {}) });
  return {
    ...deps,
    // Remote runs record their transcripts in this broker's audit log, attested by the broker. `isolation`
    // (a RunIsolation factory, see src/runner/run-aws.ts) plugs in here when the broker confines its aws runs.
    runs: {
      ...deps.runs,
      attest: async (envelope, caller) => {
        const svc = audit.service;
        if (!svc) throw new Error('the audit log is not mounted');
        return (await ingestTranscript(envelope, caller, { log: svc.log, getGrant: svc.getGrant }, 'broker')).record;
      },
    },
    approvals: o.overrides?.approvals ?? createApprovalGate(approvals.service),
    routes: [...(deps.routes ?? []), { ...approvalRoutes(approvals.service), close: () => approvals.close() }, audit],
  };
}
