import type { Hono } from 'hono';
import { z } from 'zod';
import { availableParallelism } from 'node:os';
import { verifyChainAsync } from '../../audit/chain.js';
import { verifyChainParallel } from '../../audit/verify-parallel.js';
import { exportLines } from '../../audit/export.js';
import { signExport } from '../../audit/broker-key.js';
import { createAuditService, type AuditService, type AuditServiceOptions } from '../../audit/service.js';
import { openBodyStore } from '../../audit/bodies/open.js';
import type { BodyStore } from '../../audit/bodies/store.js';
import { BodyUploads } from '../../audit/bodies/uploads.js';
import { holdStaging, sweepStaging, type StagingSweepResult } from '../../audit/bodies/staging.js';
import { verifyBodies } from '../../audit/bodies/verify.js';
import { maxBodyFileBytes } from '../../transcript/body.js';
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
 *   GET /v1/audit/verify[?bodies=true]                  walks the whole chain: {ok, count, firstBroken?, head}; with
 *                                                       bodies=true also re-hashes every transcript body from storage
 *                                                       and names the first that differs or is missing (firstBadBody)
 *   GET /v1/audit/bodies/:sha256                        one transcript body, streamed (application/octet-stream)
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
const verifyQuery = z.strictObject({ bodies: z.enum(['true', 'false']).optional() });
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

export function mountAudit(app: Hono<BrokerEnv>, svc: AuditService, bodies?: BodyStore): void {
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

  app.get('/v1/audit/bodies/:sha256', async (c) => {
    const sha = c.req.param('sha256');
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new ApiError('bad_request', 'invalid body digest in the path');
    // Only bodies a record names are served: the store is not a general file server.
    const s = bodies ? await bodies.get(sha) : undefined;
    if (!s) throw new ApiError('not_found', `no transcript body ${sha.slice(0, 16)}… in storage`);
    const size = (await bodies!.stat(sha))?.size;
    const { Readable } = await import('node:stream');
    return c.body(Readable.toWeb(s) as ReadableStream<Uint8Array>, 200, {
      'Content-Type': 'application/octet-stream',
      'Cache-Control': 'no-store',
      ...(size !== undefined ? { 'Content-Length': String(size) } : {}),
    });
  });

  app.get('/v1/audit/verify', async (c) => {
    const vq = query(verifyQuery, c.req.query());
    // Read the head first: a record appended during the walk is after it and not part of this check.
    const head = await svc.log.head();
    const records = svc.log.scan({ upToSeq: head?.seq ?? 0 });
    // Worker threads pay off only on long chains (starting them costs tens of milliseconds). Both variants
    // give the event loop a turn regularly: grants keep flowing while an auditor verifies.
    const result =
      (head?.seq ?? 0) >= PARALLEL_FROM && availableParallelism() > 1
        ? await verifyChainParallel(records, svc.publicKeys, { head })
        : await verifyChainAsync(records, svc.publicKeys, { head });
    if (vq.bodies === 'true') {
      if (!bodies) throw new ApiError('bad_request', 'this broker keeps no transcript bodies');
      const b = await verifyBodies(svc.log.scan({ upToSeq: head?.seq ?? 0 }), bodies);
      return c.json({ ...result, ok: result.ok && b.ok, head, kid: svc.key.kid, bodies: b });
    }
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
  /**
   * How often stale staging files are removed (transcripts.stagingTtlHours says which are stale). Default hourly,
   * and once at start; 0 = only at start.
   */
  stagingSweepMs?: number;
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
export function auditRoutes(
  o: AuditRoutesOptions = {},
): BrokerRouteModule & {
  readonly service: AuditService | undefined;
  readonly bodies: (BodyStore & { maxBytes: number; hold(path: string): () => void }) | undefined;
  sweep(): Promise<number>;
  /** Removes stale staging files now (also done at start and every `stagingSweepMs`); logs and returns what went. */
  sweepStaging(): StagingSweepResult;
} {
  let service: AuditService | undefined;
  let bodies: (BodyStore & { maxBytes: number; hold(path: string): () => void }) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stagingTimer: NodeJS.Timeout | undefined;
  let sweepStagingNow: () => StagingSweepResult = () => ({ files: 0, bytes: 0 });
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
    /** The transcript body store (src/audit/bodies/), with the configured limit; set when mounted. */
    get bodies() {
      return bodies;
    },
    /** One sweep now (tests, or an operator's cron through the broker process). */
    sweep: () => (sweeping ??= sweep().finally(() => (sweeping = undefined))),
    sweepStaging: () => sweepStagingNow(),
    start: () => (starter ? starter() : Promise.resolve()),
    mount(app, ctx) {
      // The routes are registered now; the service they use is built by start() (it reads the database), which the
      // broker awaits before it serves any request.
      const svc = {} as AuditService;
      const tc = ctx.config.transcripts ?? { maxBodyBytes: 1024 ** 3, store: { type: 'file' as const }, stagingTtlHours: 24 };
      const store = openBodyStore(tc.store, ctx.config.storage.sqlite);
      // `hold`: a broker run marks its body file in use while it writes and adopts it (the staging sweep skips it).
      bodies = Object.assign(store, { maxBytes: tc.maxBodyBytes, hold: holdStaging });
      const ttlMs = (tc.stagingTtlHours ?? 24) * 3_600_000;
      sweepStagingNow = () => {
        const r = sweepStaging(store.stagingDir, ttlMs, o.clock ? o.clock() : ctx.now().getTime());
        // Counts only: staging file names carry grant and run ids, never content, but nothing more is needed.
        if (r.files > 0) ctx.log({ level: 'info', msg: 'stale transcript staging files removed', files: r.files, bytes: r.bytes });
        return r;
      };
      const sweepQuietly = () => {
        try {
          sweepStagingNow();
        } catch (e) {
          ctx.log({ level: 'error', msg: 'transcript staging sweep failed', error: (e as Error)?.message });
        }
      };
      const uploads = new BodyUploads(store, maxBodyFileBytes(tc.maxBodyBytes), async (grantId) => {
        const rec = await svc.log.getByGrant(grantId, 'transcript');
        const b = rec ? (JSON.parse(rec.body) as { body?: { sha256: string; size: number } }).body : undefined;
        return b && { sha256: b.sha256, size: b.size };
      });
      mountTranscripts(app, svc, uploads);
      mountAudit(app, svc, store);
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
        // Leftovers of a previous process (a crash mid-run, uploads given up on) go first.
        sweepQuietly();
      };
      const stagingEvery = o.stagingSweepMs ?? 3_600_000;
      if (stagingEvery > 0) {
        stagingTimer = setInterval(sweepQuietly, stagingEvery);
        stagingTimer.unref();
      }
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
      if (stagingTimer) clearInterval(stagingTimer);
      await sweeping;
    },
  };
}
