import { Readable } from 'node:stream';
import type { Hono } from 'hono';
import { z } from 'zod';
import { RUN_STREAM_TYPE } from '../../api/run-frames.js';
import type { RunResponse } from '../../api/types.js';
import { ApiError } from '../../api/http-error.js';
import { isGuardError } from '../../errors.js';
import { assertRunnableArgv } from '../../runner/argv-guard.js';
import type { BrokerEnv } from '../env.js';
import { DEFAULT_EXECUTION } from '../execution.js';
import { issueSession, type IssueDeps, type IssueRequest } from '../issue.js';
import { validateJson } from '../middleware/validate.js';
import type { RunRegistry } from '../remote-run.js';
import { planRunFiles, type RunFilePlan } from '../run-files.js';
import { grantRequestSchema } from './grants.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * POST /v1/runs body: the grant request's fields, except that the transcript key is needed only for a local run,
 * plus whether stdin will be sent and the files' exact bytes (base64) for a run on the broker.
 */
export const runRequestSchema = grantRequestSchema.extend({
  transcriptKey: grantRequestSchema.shape.transcriptKey.optional(),
  stdin: z.boolean().optional(),
  fileData: z.record(z.string().min(1).max(4096), z.string().regex(BASE64, 'must be base64')).optional(),
});
export type RunRequestBody = z.output<typeof runRequestSchema>;

const RUN_ID = /^run_[A-Za-z0-9_-]{22}$/;

/**
 * The run API (docs/openapi.yaml, docs/broker-config.md "Execution"):
 *   POST /v1/runs                → decides like POST /v1/grants, then {execution: local, grant} or {execution: broker, runId, …}
 *   POST /v1/runs/{id}/start     → the run's frames (application/vnd.guard-aws.run-stream), streamed as aws writes
 *   POST /v1/runs/{id}/stdin     → a streamed body copied into aws's stdin (runs declared with stdin: true)
 *   PUT  /v1/runs/{id}/inputs/{n} → a local file the call reads (argv token n), streamed in before start
 *   POST /v1/runs/{id}/cancel    → SIGINT to aws (then SIGTERM); the stream ends with exit 130
 * Only the caller who asked for a run can start, feed or cancel it.
 */
export function mountRuns(app: Hono<BrokerEnv>, d: IssueDeps, runs: RunRegistry): void {
  const cfg = () => d.ctx.config.execution ?? DEFAULT_EXECUTION;

  app.post('/v1/runs', validateJson(runRequestSchema), async (c) => {
    const raw = c.get('body') as RunRequestBody;
    const { stdin, fileData, ...rest } = raw;
    const body = rest as IssueRequest;
    const bytes = new Map<string, Buffer>();
    if (fileData) {
      if (raw.files) throw new ApiError('bad_request', 'invalid field fileData: send either files or fileData', { field: 'fileData' } as never);
      let total = 0;
      const files: Record<string, string> = {};
      for (const [path, b64] of Object.entries(fileData)) {
        const buf = Buffer.from(b64, 'base64');
        total += buf.length;
        bytes.set(path, buf);
        files[path] = buf.toString('utf8');
      }
      if (total > cfg().maxFileBytes) {
        throw new ApiError('payload_too_large', `files of ${total} bytes exceed the broker's limit of ${cfg().maxFileBytes} (execution.maxFileBytes)`);
      }
      body.files = files;
    } else if (raw.files) {
      for (const [path, text] of Object.entries(raw.files)) bytes.set(path, Buffer.from(text, 'utf8'));
    }
    let key: ReturnType<RunRegistry['newKey']> | undefined;
    let plan: RunFilePlan = { inputs: [], outputs: [] };
    const issued = await issueSession(c, body, { ...d, brokerCli: () => runs.cliRelease() }, {
      route: 'runs',
      brokerTranscriptKey: () => (key ??= runs.newKey()).publicKey,
      beforeBrokerRun: (invocation) => {
        // The runner refuses these again, but only after a session exists: refuse before any is issued.
        try {
          assertRunnableArgv(invocation.canonicalArgv);
        } catch (e) {
          if (isGuardError(e)) throw new ApiError(e.code === 'denied' ? 'denied' : 'unparseable', e.message, e.code === 'denied' ? { rule: null, reason: e.message } : {});
          throw e;
        }
        runs.checkCapacity();
        plan = planRunFiles(invocation, new Set(bytes.keys()), { cwd: body.cwd ?? '/', home: body.home });
      },
    });
    c.header('Cache-Control', 'no-store');
    if (issued.execution.where === 'local') {
      const res: RunResponse = { execution: 'local', reasons: issued.execution.reasons, grant: issued.grantResponse() };
      return c.json(res, 200);
    }
    const view = runs.create({ owner: c.get('caller').subject, issued, files: bytes, cwd: body.cwd, home: body.home, key: key!, stdin: stdin === true, plan });
    // Never credentials: the session stays in the broker's memory for the run.
    const res: RunResponse = {
      execution: 'broker',
      runId: view.runId,
      grantId: view.grantId,
      decision: issued.decision.decision === 'approve' ? 'approve' : 'allow',
      rule: issued.decision.rule,
      target: issued.target.name,
      region: issued.invocation.region,
      argv: issued.invocation.canonicalArgv,
      cliTable: issued.cli.tableVersion,
      reasons: issued.execution.reasons,
      inputs: plan.inputs,
      outputs: plan.outputs,
      ...(issued.approvalId ? { approvalId: issued.approvalId } : {}),
    };
    return c.json(res, 201);
  });

  const runId = (id: string) => {
    if (!RUN_ID.test(id)) throw new ApiError('bad_request', 'invalid run id in the path');
    return id;
  };

  app.post('/v1/runs/:id/start', (c) => {
    const out = runs.start(runId(c.req.param('id')), c.get('caller').subject);
    const web = Readable.toWeb(out) as unknown as ReadableStream<Uint8Array>;
    return c.body(web, 200, { 'Content-Type': RUN_STREAM_TYPE, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  });

  app.post('/v1/runs/:id/stdin', async (c) => {
    const id = runId(c.req.param('id'));
    const stream = c.req.raw.body ? Readable.fromWeb(c.req.raw.body as import('node:stream/web').ReadableStream) : Readable.from([]);
    const n = await runs.feed(id, c.get('caller').subject, stream);
    return c.json({ bytes: n }, 200);
  });

  app.put('/v1/runs/:id/inputs/:token', async (c) => {
    const id = runId(c.req.param('id'));
    const token = c.req.param('token');
    if (!/^[0-9]{1,4}$/.test(token)) throw new ApiError('bad_request', 'invalid input token in the path');
    const stream = c.req.raw.body ? Readable.fromWeb(c.req.raw.body as import('node:stream/web').ReadableStream) : Readable.from([]);
    const n = await runs.upload(id, c.get('caller').subject, Number(token), stream);
    return c.json({ bytes: n }, 200);
  });

  app.post('/v1/runs/:id/cancel', (c) => {
    runs.cancel(runId(c.req.param('id')), c.get('caller').subject);
    return c.json({ status: 'cancelling' }, 202);
  });
}
