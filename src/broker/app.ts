import { Hono } from 'hono';
import { refuseApprovals } from './approval-gate.js';
import type { TargetConfig } from './config.js';
import type { BrokerContext, BrokerDeps } from './deps.js';
import type { BrokerEnv } from './env.js';
import { jsonLineLog } from './log.js';
import { createMetrics } from './metrics.js';
import { bearerAuth } from './middleware/bearer-auth.js';
import { limitBody } from './middleware/body-limit.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { timeRequests } from './middleware/metrics.js';
import { requestId } from './middleware/request-id.js';
import { defaultGrantId, mountGrants } from './routes/grants.js';
import { mountRuns } from './routes/runs.js';
import { DEFAULT_EXECUTION } from './execution.js';
import { RunRegistry } from './remote-run.js';
import { mountPublic } from './routes/public.js';
import { defaultStsClientFactory, type StsLike } from './sts.js';

export interface Broker {
  app: Hono<BrokerEnv>;
  ctx: BrokerContext;
  /** Releases STS clients, extension routes and the store. */
  close(): Promise<void>;
  /** Ends long-lived responses (see BrokerRouteModule.drain); the server calls it when it starts to close. */
  drain(): void;
  /** Cancels every remote run (their streams then end): called first on shutdown, so it does not wait on them. */
  stopRuns(): void;
  /** Settles when every route module has started (startBroker waits for it before listening); rejects if one failed. */
  ready: Promise<void>;
}

/** Paths served without a bearer token. Everything else under /v1 requires one (new routes are closed by default). */
const PUBLIC_V1 = ['/v1/config'];
const STDIN_PATH = /^\/v1\/runs\/[^/]+\/(stdin|inputs\/[^/]+)$/;

/** Builds the broker's HTTP application (hono) from its dependencies; `startBroker` puts it on a socket. */
export function createBroker(deps: BrokerDeps): Broker {
  const log = deps.log ?? jsonLineLog((l) => process.stderr.write(l));
  const metrics = deps.metrics ?? createMetrics();
  const ctx: BrokerContext = { config: deps.config, store: deps.store, log, metrics, now: deps.now ?? (() => new Date()) };

  const factory = deps.createStsClient ?? defaultStsClientFactory;
  const stsClients = new Map<string, StsLike>();
  const stsFor = (t: TargetConfig): StsLike => {
    let s = stsClients.get(t.name);
    if (!s) stsClients.set(t.name, (s = factory(t)));
    return s;
  };

  const publicPaths = new Set([...PUBLIC_V1, ...(deps.routes ?? []).flatMap((r) => r.publicPaths ?? [])]);
  const app = new Hono<BrokerEnv>();
  app.onError(errorHandler(log));
  app.notFound(notFound);
  // Requests wait until the modules have started (their state is read from the database).
  let ready: Promise<void> = Promise.resolve();
  app.use('*', async (_c, next) => {
    await ready;
    return next();
  });
  app.use('*', requestId());
  app.use('*', timeRequests(metrics));
  // A run's stdin is a stream of its own size (execution.maxStdinBytes, counted by the run registry).
  const bodyLimit = limitBody(deps.config.maxBodyBytes);
  app.use('*', (c, next) => (STDIN_PATH.test(c.req.path) ? next() : bodyLimit(c, next)));
  app.use('/v1/*', bearerAuth({ verify: deps.verify, isPublic: (p) => publicPaths.has(p), log }));

  mountPublic(app, ctx);
  const issueDeps = {
    ctx,
    parse: deps.parse,
    decide: deps.decide,
    stsFor,
    approvals: deps.approvals ?? refuseApprovals,
    masking: deps.masking,
    newGrantId: deps.newGrantId ?? defaultGrantId,
    enforceable: deps.enforceable,
  };
  mountGrants(app, issueDeps);
  const runs = new RunRegistry(deps.runs ?? {}, () => deps.config.execution ?? DEFAULT_EXECUTION, deps.masking, log);
  mountRuns(app, issueDeps, runs);
  for (const r of deps.routes ?? []) r.mount(app, ctx);
  ready = (async () => {
    for (const r of deps.routes ?? []) await r.start?.();
  })();
  // Observed here so an early failure is not an unhandled rejection; startBroker reports it.
  ready.catch(() => {});

  let closed = false;
  return {
    app,
    ctx,
    ready,
    drain() {
      for (const r of deps.routes ?? []) r.drain?.();
    },
    stopRuns: () => runs.close(),
    async close() {
      if (closed) return;
      closed = true;
      runs.close();
      for (const r of deps.routes ?? []) await r.close?.();
      for (const s of stsClients.values()) s.destroy?.();
      await deps.store.close();
    },
  };
}

