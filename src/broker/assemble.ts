import { dirname, isAbsolute } from 'node:path';
import { createIsolation, ISOLATION_NONE_WARNING } from '../runner/isolation.js';
import { WarmPool } from '../runner/warm/pool.js';
import { findAws, type AwsBinary } from '../runner/index.js';
import { setupApprovals, type ApprovalsConfigInput } from '../approvals/setup.js';
import { mountConsole } from '../console/routes.js';
import { createApprovalGate } from './approval-gate.js';
import { approvalFeed } from './approval-feed.js';
import type { ApprovalNotification } from '../approvals/service.js';
import type { Sql } from '../store/db.js';
import type { BrokerConfig } from './config.js';
import type { BrokerContext, BrokerDeps, BrokerRouteModule } from './deps.js';
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
  // Committed approval changes, for the console's live updates and held long polls — this broker's and, on
  // PostgreSQL, every other broker's (src/broker/approval-feed.ts). The webhook is told separately (its outbox).
  const feed = approvalFeed(deps.store.db);
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
    onChange: (n) => feed.local(n),
    // NOTIFY in the change's own transaction: the other brokers hear of it only if it commits. (SQLite: one broker.)
    ...(deps.store.db.dialect === 'postgres' ? { inTransaction: (tx: Sql, n: ApprovalNotification) => feed.inTransaction(tx, n) } : {}),
  });
  const audit = auditRoutes({
    auditorGroups: config.auditorGroups,
    // A run's audit record keeps the approval it used, parameters as the approvers saw them.
    getApproval: (id) => approvals.service.get(id),
    ...(o.rotateAuditKey ? { rotateKey: true } : {}),
    ...(config.storage.auditKeyFile ? { keyPath: config.storage.auditKeyFile } : {}),
  });
  const approvalModule = approvalRoutes(approvals.service, { subscribe: feed.subscribe });
  let log: BrokerContext['log'] = () => {};
  const routes: BrokerRouteModule[] = [...(deps.routes ?? []), {
      ...approvalModule,
      mount: (app, ctx) => {
        log = ctx.log;
        approvalModule.mount(app, ctx);
      },
      // Listening before the broker answers: a page or long poll opened on it hears every change from then on.
      start: () => feed.start((id) => approvals.service.get(id), (e) => log(e)),
      close: async () => {
        await feed.close();
        await approvals.close();
      },
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
          bodies: () => audit.bodies,
          auditorGroups: config.auditorGroups,
          targets: config.targets.map((t) => ({ name: t.name, account: t.account, region: t.region })),
          db: ctx.store.db,
          subscribe: feed.subscribe,
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
      warm: warmPool(config, o.env ?? process.env),
      ...deps.runs,
      // Broker-run output goes straight into the audit module's body store (staged beside it, then adopted).
      bodies: () => audit.bodies,
      attest: async (envelope, caller) => {
        const svc = audit.service;
        if (!svc) throw new Error('the audit log is not mounted');
        const store = audit.bodies;
        // The body is in the store already (the run adopted it): commit only checks it is there with that size.
        const bodies = store && {
          commit: async (_grant: string, _subject: string, c: { sha256: string; size: number }) => {
            const st = await store.stat(c.sha256);
            if (!st || st.size !== c.size) throw new Error('the broker run\'s body is not in the store');
            return store.location(c.sha256);
          },
        };
        return (await ingestTranscript(envelope, caller, { log: svc.log, getGrant: svc.getGrant, bodies }, 'broker')).record;
      },
    },
    approvals: o.overrides?.approvals ?? createApprovalGate(approvals.service),
    routes,
  };
}

/** The broker's own files no confined run (fresh or warm) may ever see: config, database, keys, the DB's CA. */
function brokerOwnFiles(config: BrokerConfig): string[] {
  const db = config.storage.sqlite;
  return [config.source, db, db && `${db}.audit-key.pem`, config.storage.auditKeyFile, config.storage.postgres?.caFile].filter(
    (p): p is string => typeof p === 'string' && p !== ':memory:' && isAbsolute(p),
  );
}

/**
 * The warm CLI pool from `execution.warmPool` (src/runner/warm/pool.ts), started now so the first run finds it
 * ready. Off unless enabled, or when this broker runs no calls or has no aws; a pool that cannot work here (a
 * broker that is not root under bubblewrap) says why once and every run starts fresh.
 */
function warmPool(config: BrokerConfig, env: NodeJS.ProcessEnv): WarmPool | undefined {
  const ex = config.execution;
  if (!ex.warmPool.enabled) return undefined;
  const modes = [ex.people, ex.workloads, ...Object.values(ex.groups), ...config.targets.map((t) => t.execution)];
  if (!modes.some((m) => m !== undefined && m !== 'local')) return undefined;
  let aws: AwsBinary;
  try {
    aws = findAws({ env, cwd: '/' });
  } catch {
    return undefined;
  }
  return new WarmPool({
    aws,
    config: ex.warmPool,
    isolation: ex.isolation,
    protect: brokerOwnFiles(config),
    ...(ex.runDir ? { runDir: ex.runDir } : {}),
    maxConcurrent: ex.maxConcurrent,
    log: (e) => process.stderr.write(`guard-aws broker: ${e.level}: ${e.msg}${e.error ? `: ${String(e.error)}` : ''}\n`),
  });
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
  const protect = brokerOwnFiles(config);
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
