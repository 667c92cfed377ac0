import type { Context } from 'hono';
import { isGuardError } from '../errors.js';
import type { InvocationContext, ParsedInvocation } from '../invocation/types.js';
import type { Caller, Decision, MaskingRules } from '../policy/types.js';
import type { RefusalRecord } from '../store/types.js';
import { maskArgv } from '../masking/argv.js';
import { type CliRelease, cliRelease } from '../invocation/cli-release.js';
import { modelIndex } from '../invocation/model.js';
import type { GrantRequest, GrantResponse, IssuedCredentials } from '../api/types.js';
import { ApiError } from '../api/http-error.js';
import type { ApprovalGate } from './approval-gate.js';
import { pickTarget, type TargetConfig } from './config.js';
import type { BrokerContext, DecideFn, EnforceableFn, ParseFn } from './deps.js';
import type { BrokerEnv } from './env.js';
import { chooseExecution, configuredMode, type ExecutionChoice } from './execution.js';
import { randomId } from './ids.js';
import { buildSessionPolicy } from './session-policy.js';
import { assumeRoleForGrant, type StsLike } from './sts.js';

/**
 * The decision and the session for one call, shared by `POST /v1/grants` (credentials to the caller) and
 * `POST /v1/runs` (the broker may run the call itself): parse, decide, choose where the call runs, approval,
 * STS, record. Every refusal is recorded the same way whichever route asked.
 */
export interface IssueDeps {
  ctx: BrokerContext;
  parse: ParseFn;
  decide: DecideFn;
  stsFor: (target: TargetConfig) => StsLike;
  approvals: ApprovalGate;
  masking?: MaskingRules | undefined;
  newGrantId: () => string;
  /** Whether the session policy enforces everything a decision depended on (`execution: auto`). */
  enforceable?: EnforceableFn | undefined;
  /** The release of the aws the broker itself runs, when it has one (remote runs are read with its table). */
  brokerCli?: (() => CliRelease | undefined) | undefined;
}

export type IssueRequest = Omit<GrantRequest, 'transcriptKey'> & { transcriptKey?: string | undefined };

export interface Issued {
  grantId: string;
  target: TargetConfig;
  invocation: ParsedInvocation;
  decision: Decision;
  cli: CliRelease;
  execution: ExecutionChoice;
  credentials: IssuedCredentials;
  sessionPolicy: string;
  approvalId: string | undefined;
  /** The grant response for a local run (credentials included): only ever sent when execution.where is local. */
  grantResponse(): GrantResponse;
}

// The broker has no view of the caller's disk: every file the invocation reads must come in `files`.
const noLocalFiles = (path: string): Buffer => {
  throw new ApiError('unparseable', `the invocation reads ${path}, but its contents were not sent in \`files\``);
};

export interface IssueOptions {
  route: 'grants' | 'runs';
  /** For broker runs: the public half of the key the broker signs the run's transcript with. */
  brokerTranscriptKey?: () => string;
  /** Checked before any session is issued for a broker run (capacity, local files); throws ApiError to refuse. */
  beforeBrokerRun?: (invocation: ParsedInvocation) => void;
}

export async function issueSession(c: Context<BrokerEnv>, body: IssueRequest, d: IssueDeps, o: IssueOptions): Promise<Issued> {
  const { ctx } = d;
  const started = performance.now();
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

  // One file, one way: its contents (decided on) or its digest (a stand-in decided on), never both.
  for (const path of Object.keys(body.blobs ?? {})) {
    if (body.files && Object.prototype.hasOwnProperty.call(body.files, path)) {
      throw new ApiError('bad_request', `invalid field blobs: ${JSON.stringify(path.slice(0, 200))} is sent in files too`, { field: 'blobs' });
    }
  }

  const target = pickTarget(ctx.config, body.target);
  if (!target) {
    const msg = body.target === undefined ? 'no default target is configured' : `unknown target ${body.target}`;
    return refuse(new ApiError('unknown_target', msg, { field: 'target' }), { target: body.target ?? null, decision: null, rule: null, reason: msg });
  }

  /** Parse and decide with the command table of one release (docs/aws-cli-parsing.md §6.3). */
  const evaluate = async (version: string | undefined): Promise<{ cli: CliRelease; invocation: ParsedInvocation; decision: Decision }> => {
    let cli: CliRelease;
    try {
      cli = cliRelease(version ?? modelIndex('v1').cliVersion);
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
        ...(body.blobs ? { blob: (path: string) => Object.prototype.hasOwnProperty.call(body.blobs, path) ? body.blobs![path] : undefined } : {}),
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
        return refuse(err, { target: target.name, decision: null, rule: null, reason: msg });
      }
      throw e;
    }
    const decision: Decision = d.decide({ invocation, caller, target: { name: target.name, account: target.account, region: target.region } });
    if (decision.decision === 'deny') {
      return refuse(new ApiError('denied', `denied: ${decision.reason}`, { rule: decision.rule, reason: decision.reason }), {
        target: target.name,
        decision: decision.decision,
        rule: decision.rule,
        reason: decision.reason,
        argv: invocation.canonicalArgv,
      });
    }
    return { cli, invocation, decision };
  };

  // A run request without a release (no aws on the caller's machine) is read with the broker's own aws's table.
  const brokerCli = o.route === 'runs' ? d.brokerCli?.() : undefined;
  let evaluated = await evaluate(body.cliVersion ?? brokerCli?.version);
  const choose = (e: typeof evaluated): ExecutionChoice =>
    chooseExecution(configuredMode(ctx.config, caller, target), () =>
      d.enforceable
        ? d.enforceable({ invocation: e.invocation, caller, target: { name: target.name, account: target.account, region: target.region } })
        : { enforceable: false, reasons: ['the broker has no session-policy analysis: calls under `auto` run on the broker'] },
    );
  let execution = choose(evaluated);
  const factsOf = (e: typeof evaluated) => ({
    target: target.name,
    decision: e.decision.decision,
    rule: e.decision.rule,
    reason: e.decision.reason,
    argv: e.invocation.canonicalArgv,
  });

  if (execution.where === 'broker') {
    if (o.route === 'grants') {
      // Handing out credentials here would make the broker's choice advisory: whoever holds a token would ask
      // this route instead of /v1/runs.
      return refuse(
        new ApiError('execution_on_broker', `this call runs on the broker (${execution.reasons.join('; ')}); ask POST /v1/runs, credentials are not handed out for it`, {
          rule: evaluated.decision.rule,
        }),
        factsOf(evaluated),
      );
    }
    if (!brokerCli) {
      return refuse(new ApiError('execution_unavailable', 'this call must run on the broker, but the broker has no aws to run it with'), factsOf(evaluated));
    }
    // The decision must be about the argv as the aws that runs reads it: the broker's, not the caller's.
    if (evaluated.cli.table !== brokerCli.table) {
      evaluated = await evaluate(brokerCli.version);
      execution = { ...choose(evaluated), where: 'broker' };
    }
    try {
      o.beforeBrokerRun?.(evaluated.invocation);
    } catch (e) {
      if (e instanceof ApiError) return refuse(e, factsOf(evaluated));
      throw e;
    }
  } else if (!body.transcriptKey) {
    return refuse(new ApiError('bad_request', 'invalid field transcriptKey: required when the call runs locally', { field: 'transcriptKey' } as never), factsOf(evaluated));
  }
  const { cli, invocation, decision } = evaluated;
  const facts = factsOf(evaluated);

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
      ({ approvalId } = await d.approvals.check({ request: body as GrantRequest, caller, invocation, target, decision, requestId }));
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

  // Recorded before the credentials are used or leave: a grant that cannot be recorded is not issued. A broker
  // run's transcript key is the broker's own: no caller can sign a transcript for it.
  const transcriptKey = execution.where === 'broker' ? o.brokerTranscriptKey!() : body.transcriptKey!;
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
    transcriptKey,
    approvalId: approvalId ?? null,
    requestId,
  });
  ctx.metrics.grants.inc({ target: target.name });
  ctx.metrics.grantDuration.observe({ outcome: 'granted' }, (performance.now() - started) / 1000);
  ctx.log({
    level: 'info',
    msg: 'grant issued',
    requestId,
    grantId,
    subject: caller.subject,
    target: target.name,
    rule: decision.rule,
    execution: execution.where,
    expiresAt: assumed.credentials.expiration,
  });

  const credentials = assumed.credentials;
  return {
    grantId,
    target,
    invocation,
    decision,
    cli,
    execution,
    credentials,
    sessionPolicy,
    approvalId,
    grantResponse: (): GrantResponse => {
      if (execution.where !== 'local') throw new Error('credentials of a broker run never leave the broker');
      return {
        grantId,
        credentials,
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
        // The client keeps this much output whole in the transcript body (the broker refuses larger bodies).
        ...(d.ctx.config.transcripts ? { transcriptMaxBytes: d.ctx.config.transcripts.maxBodyBytes } : {}),
      };
    },
  };
}

export type { Caller };
