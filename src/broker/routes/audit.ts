import type { Hono } from 'hono';
import { z } from 'zod';
import { availableParallelism } from 'node:os';
import { verifyChainAsync } from '../../audit/chain.js';
import { verifyChainParallel } from '../../audit/verify-parallel.js';
import { exportLines } from '../../audit/export.js';
import { signExport } from '../../audit/broker-key.js';
import { createAuditService, type AuditService, type AuditServiceOptions } from '../../audit/service.js';
import { findUnreported, recordUnreported, summarize } from '../../audit/summary.js';
import type { GrantRecord } from '../../store/types.js';
import type { BrokerRouteModule } from '../deps.js';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';
import { fieldName } from '../middleware/validate.js';
import { mountTranscripts, requireCaller } from './transcripts.js';

/**
 * /v1/audit — the audit log, for members of the auditor group only (checked here, by the broker):
 *   GET /v1/audit/records[?user=&since=&kind=&limit=]   newest first, summaries
 *   GET /v1/audit/records?unreported=true[&user=&since=] grants whose transcript never arrived
 *   GET /v1/audit/records/:id                           one record (by record id or grant id), with its body
 *   GET /v1/audit/verify                                walks the whole chain: {ok, count, firstBroken?, head}
 *   GET /v1/audit/export[?since=]                       JSONL (application/x-ndjson), see src/audit/export.ts
 */
const listQuery = z.strictObject({
  user: z.string().min(1).max(256).optional(),
  since: z.iso.datetime().optional(),
  kind: z.enum(['transcript', 'unreported']).optional(),
  unreported: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});
const exportQuery = z.strictObject({ since: z.iso.datetime().optional() });
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const PARALLEL_FROM = 20_000;

function query<T>(schema: z.ZodType<T>, raw: Record<string, string>): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.code === 'unrecognized_keys' ? fieldName([...issue.path, issue.keys[0]!]) : fieldName(issue.path);
    throw new ApiError('bad_request', `invalid query parameter ${field}: ${issue.message}`);
  }
  return r.data;
}

export function mountAudit(app: Hono<BrokerEnv>, svc: AuditService): void {
  app.use('/v1/audit/*', async (c, next) => {
    const who = requireCaller(c);
    if (!who.groups.some((g) => svc.auditorGroups.includes(g))) {
      throw new ApiError('forbidden', `the audit log is for members of the ${svc.auditorGroups.join(' or ')} group${svc.auditorGroups.length > 1 ? 's' : ''}`);
    }
    return next();
  });

  app.get('/v1/audit/records', async (c) => {
    const q = query(listQuery, c.req.query());
    if (q.unreported === 'true') {
      const grants = await svc.listGrants({ subject: q.user, since: q.since, limit: 10_000 });
      return c.json({ unreported: (await findUnreported(grants, svc.log, svc.clock())).slice(0, q.limit) });
    }
    const records = (await svc.log.list({ subject: q.user, since: q.since, kind: q.kind, limit: q.limit })).map(summarize);
    return c.json({ records });
  });

  app.get('/v1/audit/records/:id', async (c) => {
    const id = c.req.param('id');
    if (!ID.test(id)) throw new ApiError('bad_request', 'invalid record id in the path');
    const rec = (await svc.log.get(id)) ?? (await svc.log.getByGrant(id, 'transcript')) ?? (await svc.log.getByGrant(id, 'unreported'));
    if (!rec) throw new ApiError('not_found', `no audit record or transcript for ${id}`);
    return c.json({ record: rec, summary: summarize(rec) });
  });

  app.get('/v1/audit/verify', async (c) => {
    // Read the head first: a record appended during the walk is after it and not part of this check.
    const head = await svc.log.head();
    const records = svc.log.scan({ upToSeq: head?.seq ?? 0 });
    // Worker threads pay off only on long chains (starting them costs tens of milliseconds). Both variants
    // give the event loop a turn regularly: grants keep flowing while an auditor verifies.
    const result =
      (head?.seq ?? 0) >= PARALLEL_FROM && availableParallelism() > 1
        ? await verifyChainParallel(records, svc.publicKeys, { head })
        : await verifyChainAsync(records, svc.publicKeys, { head });
    return c.json({ ...result, head, kid: svc.key.kid });
  });

  app.get('/v1/audit/export', (c) => {
    const q = query(exportQuery, c.req.query());
    const lines = exportLines(svc.log, {
      since: q.since,
      kid: svc.key.kid,
      alg: svc.key.alg,
      now: svc.clock(),
      sign: (text) => signExport(svc.key.privateKey, text),
    });
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        let batch = '';
        for (let i = 0; i < 512; i++) {
          const n = await lines.next();
          if (n.done) {
            if (batch) ctrl.enqueue(enc.encode(batch));
            ctrl.close();
            return;
          }
          batch += n.value;
        }
        ctrl.enqueue(enc.encode(batch));
      },
      async cancel() {
        await lines.return(undefined);
      },
    });
    return c.body(stream, 200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
  });
}

export interface AuditRoutesOptions extends Partial<Omit<AuditServiceOptions, 'db'>> {
  /**
   * How often the broker appends an `unreported` record for each grant whose session expired (plus grace)
   * with no transcript, so the log itself says which runs never reported. Default 5 minutes; 0 = never
   * (`audit list --unreported` still computes them live).
   */
  unreportedSweepMs?: number;
  /** How far back each sweep looks at grants. Default 7 days. */
  unreportedLookbackMs?: number;
}

/** Maps the store's grant record to what the audit code needs. */
function facts(g: GrantRecord) {
  return {
    id: g.id,
    subject: g.subject,
    argv: g.argv,
    target: g.target,
    decision: g.decision,
    rule: g.rule,
    approvalId: g.approvalId ?? null,
    transcriptKey: g.transcriptKey,
    createdAt: g.createdAt,
    expiresAt: g.expiresAt,
    groups: g.groups,
    name: g.name ?? null,
  };
}

/**
 * The broker route module for transcripts, keys and the audit log: `createBroker({ …, routes: [auditRoutes()] })`.
 * The log lives in the broker's own database; grants come from the broker's store unless overridden.
 * `service` is available after the broker mounted the module (e.g. to call recordUnreported periodically).
 */
export function auditRoutes(o: AuditRoutesOptions = {}): BrokerRouteModule & { readonly service: AuditService | undefined; sweep(): Promise<number> } {
  let service: AuditService | undefined;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;
  let starter: (() => Promise<void>) | undefined;
  const sweep = async (): Promise<number> => {
    if (!service) return 0;
    const svc = service;
    const now = svc.clock();
    const since = new Date(now - (o.unreportedLookbackMs ?? 7 * 86_400_000)).toISOString();
    return recordUnreported(await svc.listGrants({ since, limit: 10_000 }), svc.log, now);
  };
  return {
    publicPaths: ['/v1/keys'],
    get service() {
      return service;
    },
    /** One sweep now (tests, or an operator's cron through the broker process). */
    sweep: () => (sweeping ??= sweep().finally(() => (sweeping = undefined))),
    start: () => (starter ? starter() : Promise.resolve()),
    mount(app, ctx) {
      // The routes are registered now; the service they use is built by start() (it reads the database), which the
      // broker awaits before it serves any request.
      const svc = {} as AuditService;
      mountTranscripts(app, svc);
      mountAudit(app, svc);
      starter = async () => {
        Object.assign(svc, await createAuditService({
        ...o,
        db: ctx.store.db,
        clock: o.clock ?? (() => ctx.now().getTime()),
        getGrant: o.getGrant ?? (async (id) => {
          const g = await ctx.store.getGrant(id);
          return g && facts(g);
        }),
        listGrants: o.listGrants ?? (async (f) => (await ctx.store.listGrants(f)).map(facts)),
        }));
        service = svc;
      };
      const every = o.unreportedSweepMs ?? 5 * 60_000;
      if (every > 0) {
        timer = setInterval(() => {
          sweeping ??= sweep()
            .catch((e) => ctx.log({ level: 'error', msg: 'unreported-grants sweep failed', error: (e as Error)?.message }))
            .then(() => 0)
            .finally(() => (sweeping = undefined));
        }, every);
        // Never keeps the process alive on its own.
        timer.unref();
      }
    },
    async close() {
      if (timer) clearInterval(timer);
      await sweeping;
    },
  };
}
