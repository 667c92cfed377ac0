import type { Hono } from 'hono';
import { z } from 'zod';
import { isGuardError } from '../../errors.js';
import type { InvocationContext, ParsedInvocation } from '../../invocation/types.js';
import type { Decision, MaskingRules } from '../../policy/types.js';
import type { RefusalRecord } from '../../store/types.js';
import { maskArgv } from '../../masking/argv.js';
import { type CliRelease, cliRelease } from '../../invocation/cli-release.js';
import { modelIndex } from '../../invocation/model.js';
import type { GrantRequest, GrantResponse } from '../../api/types.js';
import type { ApprovalGate } from '../approval-gate.js';
import { pickTarget, type TargetConfig } from '../config.js';
import type { BrokerContext, DecideFn, ParseFn } from '../deps.js';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';
import { randomId } from '../ids.js';
import { validateJson } from '../middleware/validate.js';
import { buildSessionPolicy } from '../session-policy.js';
import { assumeRoleForGrant, type StsLike } from '../sts.js';

/** POST /v1/grants body. Unknown fields are refused: a client cannot smuggle in, say, an endpoint. */
export const grantRequestSchema = z.strictObject({
  argv: z.array(z.string().max(64 * 1024)).min(1).max(1000),
  cliVersion: z.string().regex(/^\d{1,4}\.\d{1,4}\.\d{1,6}$/, 'must be an AWS CLI version: MAJOR.MINOR.PATCH').optional(),
  target: z.string().min(1).max(64).optional(),
  files: z.record(z.string().min(1).max(4096), z.string()).optional(),
  // Ed25519 public keys are 32 bytes: 43 base64url characters without padding (RFC 8037 §2, RFC 4648 §5).
  transcriptKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'must be an Ed25519 public key: 32 bytes, base64url without padding')
    .refine((k) => Buffer.from(k, 'base64url').length === 32, 'must decode to 32 bytes'),
  approvalId: z.string().min(1).max(128).optional(),
  reason: z.string().max(1000).optional(),
  cwd: z.string().startsWith('/', 'must be an absolute path').max(4096).optional(),
  home: z.string().startsWith('/', 'must be an absolute path').max(4096).optional(),
});

export interface GrantRouteDeps {
  ctx: BrokerContext;
  parse: ParseFn;
  decide: DecideFn;
  stsFor: (target: TargetConfig) => StsLike;
  approvals: ApprovalGate;
  masking?: MaskingRules | undefined;
  newGrantId: () => string;
}

export const defaultGrantId = () => `grt_${randomId(16)}`;

// The broker has no view of the caller's disk: every file the invocation reads must come in `files`.
const noLocalFiles = (path: string): Buffer => {
  throw new ApiError('unparseable', `the invocation reads ${path}, but its contents were not sent in \`files\``);
};

export function mountGrants(app: Hono<BrokerEnv>, d: GrantRouteDeps): void {
  const { ctx } = d;

  app.post('/v1/grants', validateJson(grantRequestSchema), async (c) => {
    const started = performance.now();
    const body = c.get('body') as GrantRequest;
    const caller = c.get('caller');
    const requestId = c.get('requestId');

    const refuse = async (
      err: ApiError,
      r: Pick<RefusalRecord, 'target' | 'decision' | 'rule' | 'reason'> & { argv?: string[] },
    ): Promise<never> => {
      await ctx.store.recordRefusal({
        id: `ref_${randomId(16)}`,
        createdAt: ctx.now().toISOString(),
        subject: caller.subject,
        groups: caller.groups,
        argv: maskArgv(r.argv ?? body.argv),
        target: r.target,
        code: err.code,
        decision: r.decision,
        rule: r.rule,
        reason: r.reason,
        requestId,
      });
      // Label only configured target names: a client-chosen name must not mint new time series.
      const label = r.target !== null && ctx.config.targets.some((t) => t.name === r.target) ? r.target : 'unknown';
      ctx.metrics.denials.inc({ target: label, code: err.code });
      ctx.metrics.grantDuration.observe({ outcome: err.code }, (performance.now() - started) / 1000);
      ctx.log({ level: 'info', msg: 'grant refused', requestId, subject: caller.subject, target: r.target, code: err.code, rule: r.rule });
      throw err;
    };

    const target = pickTarget(ctx.config, body.target);
    if (!target) {
      const msg = body.target === undefined ? 'no default target is configured' : `unknown target ${body.target}`;
      return refuse(new ApiError('unknown_target', msg, { field: 'target' }), {
        target: body.target ?? null,
        decision: null,
        rule: null,
        reason: msg,
      });
    }

    // The table for the release that will run (docs/aws-cli-parsing.md §6.3); an older client sends none and
    // runs v1 of the release its own tables match.
    let cli: CliRelease;
    try {
      cli = cliRelease(body.cliVersion ?? modelIndex('v1').cliVersion);
    } catch (e) {
      const msg = (e as Error).message;
      return refuse(new ApiError('bad_request', msg, { field: 'cliVersion' }), { target: target.name, decision: null, rule: null, reason: msg });
    }

    // Re-parse here: the client's own parse is never trusted (a compromised agent can skip the client).
    let invocation: ParsedInvocation;
    try {
      const pctx: InvocationContext = {
        account: target.account,
        region: target.region,
        fileContents: body.files ?? {},
        readFile: noLocalFiles,
        // Only what the caller told us: never the broker's own environment, home or working directory.
        env: body.home ? { HOME: body.home } : {},
        cwd: body.cwd ?? '/',
        cliVersion: cli.table,
        ...(cli.exactOptionNames ? { exactOptionNames: true } : {}),
      };
      invocation = d.parse(body.argv, pctx);
    } catch (e) {
      const code = isGuardError(e) ? e.code : undefined;
      if (e instanceof ApiError || code === 'parse' || code === 'usage' || code === 'unsupported' || code === 'denied' || code === 'forbidden') {
        const msg = (e as Error).message;
        const err =
          e instanceof ApiError
            ? e
            : code === 'denied' || code === 'forbidden'
              ? new ApiError('denied', msg, { rule: null, reason: msg })
              : new ApiError('unparseable', msg);
        return refuse(err, {
          target: target.name,
          decision: null,
          rule: null,
          reason: msg,
        });
      }
      throw e;
    }

    const decision: Decision = d.decide({
      invocation,
      caller,
      target: { name: target.name, account: target.account, region: target.region },
    });
    const facts = { target: target.name, decision: decision.decision, rule: decision.rule, reason: decision.reason, argv: invocation.canonicalArgv };

    if (decision.decision === 'deny') {
      return refuse(new ApiError('denied', `denied: ${decision.reason}`, { rule: decision.rule, reason: decision.reason }), facts);
    }
    // The session policy first: a call whose policy cannot be built is refused before an approval is spent on it.
    let sessionPolicy: string;
    try {
      sessionPolicy = buildSessionPolicy(invocation.permissions, { resourceAccounts: [target.account], invocation });
    } catch (e) {
      if (isGuardError(e) && e.code === 'policy_too_large') {
        return refuse(new ApiError('policy_too_large', e.message, { rule: decision.rule }), { ...facts, reason: e.message });
      }
      throw e;
    }

    let approvalId: string | undefined;
    if (decision.decision === 'approve') {
      ctx.metrics.approvalsRequired.inc({ target: target.name });
      try {
        ({ approvalId } = await d.approvals.check({ request: body, caller, invocation, target, decision, requestId }));
      } catch (e) {
        if (e instanceof ApiError) return refuse(e, facts);
        throw e;
      }
    }

    const grantId = d.newGrantId();
    let assumed;
    try {
      assumed = await assumeRoleForGrant(d.stsFor(target), {
        target,
        grantId,
        subject: caller.subject,
        policy: sessionPolicy,
        durationSeconds: ctx.config.sessionDurationSec,
      });
    } catch (e) {
      // No credentials left the broker: an approval spent on this attempt stands for the next one.
      if (approvalId) await d.approvals.release?.(approvalId, caller, 'STS did not issue the session').catch(() => undefined);
      if (isGuardError(e) && e.code === 'policy_too_large') {
        return refuse(new ApiError('policy_too_large', e.message, { rule: decision.rule }), { ...facts, reason: e.message });
      }
      const stsError = isGuardError(e) ? e.details.stsError : undefined;
      ctx.log({ level: 'error', msg: 'STS AssumeRole failed', requestId, target: target.name, stsError: stsError ?? (e as Error)?.name });
      return refuse(new ApiError('sts_failed', `AWS STS did not issue a session for target ${target.name}; quote request id ${requestId} to the broker's operator`), {
        ...facts,
        reason: `STS AssumeRole failed: ${String(stsError ?? 'error')}`,
      });
    }

    // Recorded before the credentials leave: a grant that cannot be recorded is not handed out.
    await ctx.store.recordGrant({
      id: grantId,
      createdAt: ctx.now().toISOString(),
      subject: caller.subject,
      groups: caller.groups,
      name: caller.name ?? null,
      argv: maskArgv(invocation.canonicalArgv),
      target: target.name,
      account: target.account,
      region: invocation.region,
      decision: decision.decision,
      rule: decision.rule,
      reason: decision.reason,
      actions: [...new Set(invocation.permissions.map((p) => p.action))].sort(),
      sessionPolicy,
      roleSessionName: assumed.roleSessionName,
      sourceIdentity: assumed.sourceIdentity,
      expiresAt: assumed.credentials.expiration,
      transcriptKey: body.transcriptKey,
      approvalId: approvalId ?? null,
      requestId,
    });
    ctx.metrics.grants.inc({ target: target.name });
    ctx.metrics.grantDuration.observe({ outcome: 'granted' }, (performance.now() - started) / 1000);
    ctx.log({ level: 'info', msg: 'grant issued', requestId, grantId, subject: caller.subject, target: target.name, rule: decision.rule, expiresAt: assumed.credentials.expiration });

    const res: GrantResponse = {
      grantId,
      credentials: assumed.credentials,
      region: invocation.region,
      target: target.name,
      decision: decision.decision === 'approve' ? 'approve' : 'allow',
      rule: decision.rule,
      sessionPolicy,
      argv: invocation.canonicalArgv,
      cliTable: cli.tableVersion,
      caller: { subject: caller.subject, groups: caller.groups },
      ...(approvalId ? { approvalId } : {}),
      ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      ...(d.masking ? { masking: d.masking } : {}),
    };
    // Credentials must not be cached by any intermediary (RFC 9111 §5.2.2.5).
    c.header('Cache-Control', 'no-store');
    return c.json(res, 200);
  });
}

