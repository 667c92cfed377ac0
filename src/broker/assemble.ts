import { dirname, isAbsolute } from 'node:path';
import { createIsolation, ISOLATION_NONE_WARNING } from '../runner/isolation.js';
import { findAws, type AwsBinary } from '../runner/index.js';
import type { ApprovalNotification } from '../approvals/service.js';
import { setupApprovals, type ApprovalsConfigInput } from '../approvals/setup.js';
import { mountConsole } from '../console/routes.js';
import { createApprovalGate } from './approval-gate.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps, BrokerRouteModule } from './deps.js';
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
export async function assembleBroker(config: BrokerConfig, o: AssembleOptions = {}): Promise<Omit<BrokerDeps, 'config'>> {
  const deps = await productionDeps(config, o);
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
    ...(config.storage.auditKeyFile ? { keyPath: config.storage.auditKeyFile } : {}),
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
    // Remote runs record their transcripts in this broker's audit log, attested by the broker. `isolation`
    // (a RunIsolation factory, see src/runner/run-aws.ts) plugs in here when the broker confines its aws runs.
    runs: {
      isolation: runIsolation(config, o.env ?? process.env),
      ...deps.runs,
      attest: async (envelope, caller) => {
        const svc = audit.service;
        if (!svc) throw new Error('the audit log is not mounted');
        return (await ingestTranscript(envelope, caller, { log: svc.log, getGrant: svc.getGrant }, 'broker')).record;
      },
    },
    approvals: o.overrides?.approvals ?? createApprovalGate(approvals.service),
    routes,
  };
}

/**
 * The confinement of broker runs from `execution.isolation` (src/runner/isolation.ts). When this broker can run
 * calls at all (some mode is not `local`) and has an aws, the isolation is built now: a missing or unusable
 * bubblewrap stops the broker at start (config_invalid, exit 78) instead of failing its first run, and `none`
 * is said once, loudly. The broker's own files are named so no confined run can ever see them.
 */
function runIsolation(config: BrokerConfig, env: NodeJS.ProcessEnv): (aws: AwsBinary) => ReturnType<typeof createIsolation> {
  const ex = config.execution;
  const iso = ex.isolation;
  const db = config.storage.sqlite;
  const protect = [config.source, db, db && `${db}.audit-key.pem`, config.storage.auditKeyFile, config.storage.postgres?.caFile].filter(
    (p): p is string => typeof p === 'string' && p !== ':memory:' && isAbsolute(p),
  );
  const build = (aws: AwsBinary) => createIsolation(iso, aws, { protect });
  const modes = [ex.people, ex.workloads, ...Object.values(ex.groups), ...config.targets.map((t) => t.execution)];
  if (modes.some((m) => m !== undefined && m !== 'local')) {
    if (iso.mode === 'none') process.stderr.write(`guard-aws broker: warning: ${ISOLATION_NONE_WARNING}\n`);
    let aws: AwsBinary | undefined;
    try {
      aws = findAws({ env, cwd: '/' });
    } catch {
      // No aws on the broker: broker runs are refused (execution_unavailable); nothing to confine.
    }
    if (aws) build(aws);
  }
  return build;
}
