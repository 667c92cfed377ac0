import { z } from 'zod';
import type { ApprovalSummary } from '../api/types.js';
import type { FetchLike } from '../api/broker-client.js';
import type { BrokerSession } from '../auth/broker-session.js';
import { GuardError, isGuardError, oneLine } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { GrantDecision } from '../client/run-invocation.js';
import { AbortSignals, BoundedSink, CapturingHost } from './capture.js';
import { splitCommandLine } from './command-line.js';

/**
 * The three tools of `guard-aws mcp`, as plain functions of their (already schema-checked) arguments, so the
 * server file only registers them. `aws_call` goes through the CLI's own run path (client/run-invocation.ts)
 * with the same session resolution (auth/broker-session.ts): the tools take no identity, broker or token from
 * their arguments — a model cannot choose who it is or which broker judges it.
 */

export interface McpOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** `guard-aws mcp --broker URL`; else GUARD_AWS_BROKER, else the last login's broker (as the CLI). */
  broker?: string;
  /** The longest any call waits for an approval (a call may ask for less). */
  maxWaitSeconds: number;
  /** aws output kept per stream; the rest is counted, not returned. */
  maxOutputBytes: number;
  /** A call still running after this long is stopped as if cancelled. */
  timeoutSeconds: number;
  /** Policy files `aws_explain` judges with (default: the shipped policies/default.yaml). */
  policies: string[];
  /** Progress heartbeat while a call runs or waits. */
  progressIntervalMs?: number;
  /** Approval polling interval for approval_status waits. */
  pollMs?: number;
  fetch?: FetchLike;
  /** Tests inject a session; the command opens one exactly as the CLI does. */
  session?: () => Promise<BrokerSession>;
}

/** What a handler gets from the SDK that matters here. */
export interface CallContext {
  signal: AbortSignal;
  /** Sends a progress notification when the client asked for them (a progressToken); otherwise does nothing. */
  progress: (message: string) => void;
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas (zod, turned into JSON Schema by the SDK for tools/list)
// ---------------------------------------------------------------------------------------------------------------

const APPROVAL_ID = /^[A-Za-z0-9_-]{1,128}$/;
const argvSchema = z
  .array(z.string().max(100_000))
  .min(1)
  .max(1000)
  .describe('The aws arguments as an array, without the leading "aws", e.g. ["s3api", "list-buckets"]. Preferred over `command`.');
const commandSchema = z
  .string()
  .min(1)
  .max(100_000)
  .describe(
    'Alternatively one command line, e.g. "aws s3 ls s3://bucket --recursive". Split with shell quoting rules but never run by a shell: pipes, redirections, $variables and `;` are refused.',
  );
const targetSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/)
  .describe('The broker target (AWS account/role) to run against, as `--profile NAME` on the command line. Default: the broker\'s default target.');

/** Seconds to wait (for an approval or a decision), capped by the server's --wait; the text says what for. */
const waitSeconds = (description: string) => z.number().int().min(0).max(86_400).optional().describe(description);

export const awsCallInput = z.strictObject({
  argv: argvSchema.optional(),
  command: commandSchema.optional(),
  reason: z
    .string()
    .min(1)
    .max(1000)
    .optional()
    .describe('Why this call is needed. Shown to human approvers when the call needs approval; give one for anything that changes or reads sensitive data.'),
  approvalId: z
    .string()
    .regex(APPROVAL_ID)
    .optional()
    .describe('Re-run a call that this approval request approved (the id from an earlier approval_pending result). Valid once, for exactly the same call.'),
  target: targetSchema.optional(),
  waitSeconds: waitSeconds('How long to wait for a human approval before returning approval_pending (capped by the server\'s --wait). 0 checks once.'),
});

export const explainInput = z.strictObject({
  argv: argvSchema.optional(),
  command: commandSchema.optional(),
  target: targetSchema.optional(),
  account: z.string().regex(/^\d{12}$/).optional().describe('Target account id to judge resources in (default 000000000000, a placeholder).'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).optional().describe('Default region (default $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1).'),
});

export const approvalStatusInput = z.strictObject({
  id: z.string().regex(APPROVAL_ID).describe('The approval request id (apr_…) from an aws_call result.'),
  waitSeconds: waitSeconds('Wait up to this long (capped by the server\'s --wait) for the request to leave "pending"; 0 or absent: answer at once.'),
});

const approvalOut = z.object({
  id: z.string(),
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'used', 'withdrawn']),
  requester: z.string(),
  argv: z.array(z.string()),
  target: z.string(),
  rule: z.string().nullable(),
  ruleReason: z.string(),
  requestReason: z.string(),
  approverGroups: z.array(z.string()),
  required: z.number().int(),
  approvals: z.array(z.object({ by: z.string(), at: z.string(), comment: z.string().optional() })),
  denial: z.object({ by: z.string(), at: z.string(), comment: z.string().optional() }).nullable(),
  expiresAt: z.string(),
  consoleUrl: z.string().nullable(),
  next: z.string(),
});
export type ApprovalOut = z.infer<typeof approvalOut>;

const STATUSES = [
  'ok',
  'failed',
  'denied',
  'approval_pending',
  'approval_denied',
  'approval_expired',
  'approval_closed',
  'approval_used',
  'approval_mismatch',
  'approval_not_found',
  'cancelled',
  'timeout',
  'error',
] as const;

export const awsCallOutput = {
  status: z.enum(STATUSES),
  exitCode: z.number().int(),
  decision: z.enum(['allow', 'approve', 'deny']).nullable(),
  rule: z.string().nullable(),
  reason: z.string().nullable(),
  target: z.string().nullable(),
  grantId: z.string().nullable(),
  stdout: z.string(),
  stdoutBytes: z.number().int(),
  stdoutTruncated: z.boolean(),
  stderr: z.string(),
  stderrBytes: z.number().int(),
  stderrTruncated: z.boolean(),
  approval: approvalOut.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  messages: z.array(z.string()),
};
export type AwsCallResult = z.infer<z.ZodObject<typeof awsCallOutput>>;

export const approvalStatusOutput = { approval: approvalOut, waitedSeconds: z.number() };
export type ApprovalStatusResult = z.infer<z.ZodObject<typeof approvalStatusOutput>>;

export const explainOutput = {
  argv: z.array(z.string()),
  command: z.string(),
  subcommand: z.string().nullable(),
  service: z.string().nullable(),
  operation: z.string().nullable(),
  region: z.string(),
  account: z.string(),
  target: z.string(),
  caller: z.object({ subject: z.string(), groups: z.array(z.string()), from: z.enum(['token', 'environment']) }),
  actions: z.array(z.string()),
  resources: z.array(z.string()),
  risks: z.array(z.string()),
  notes: z.array(z.string()),
  decision: z.enum(['allow', 'approve', 'deny']),
  rule: z.string().nullable(),
  reason: z.string(),
  approval: z.object({ groups: z.array(z.string()), count: z.number() }).loose().nullable(),
  policies: z.array(z.string()),
  advisory: z.string(),
};
export type ExplainResult = z.infer<z.ZodObject<typeof explainOutput>>;

// ---------------------------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------------------------

/** argv or command, exactly one; a leading `aws` (or `guard-aws`) word is dropped, as a model often writes it. */
function awsArgvOf(a: { argv?: string[] | undefined; command?: string | undefined }): string[] {
  if ((a.argv === undefined) === (a.command === undefined)) {
    throw new GuardError('usage', 'give exactly one of "argv" (an array of aws arguments) or "command" (one command line)');
  }
  const words = a.argv ?? splitCommandLine(a.command!);
  const rest = words[0] === 'aws' || words[0] === 'guard-aws' ? words.slice(1) : words;
  if (rest.length === 0) throw new GuardError('usage', `${a.argv ? 'argv' : 'command'}: no aws command given (e.g. ["sts", "get-caller-identity"])`);
  return rest;
}

function approvalView(a: ApprovalSummary): ApprovalOut {
  const next =
    a.status === 'pending'
      ? `waiting for ${a.required} approval(s) from ${a.approverGroups.join(' or ')}; poll approval_status with id ${a.id}, then call aws_call again with the same call and approvalId ${a.id}`
      : a.status === 'approved'
        ? `approved: call aws_call again with exactly the same call and approvalId ${a.id} (once, before ${a.expiresAt})`
        : `${a.status}: this approval cannot be used; ask again with a new aws_call if the call is still needed`;
  return {
    id: a.id,
    status: a.status,
    requester: a.requester,
    argv: a.argv,
    target: a.target,
    rule: a.rule,
    ruleReason: a.ruleReason,
    requestReason: a.reason,
    approverGroups: a.approverGroups,
    required: a.required,
    approvals: a.approvals.map((x) => ({ by: x.by, at: x.at, ...(x.comment ? { comment: x.comment } : {}) })),
    denial: a.denial ? { by: a.denial.by, at: a.denial.at, ...(a.denial.comment ? { comment: a.denial.comment } : {}) } : null,
    expiresAt: a.expiresAt,
    // There is no web console yet: approvers decide with `guard-aws approvals approve ID`. Always null until it exists.
    consoleUrl: null,
    next,
  };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((done) => {
    if (signal.aborted) return done();
    const t = setTimeout(finish, ms);
    function finish() {
      clearTimeout(t);
      signal.removeEventListener('abort', finish);
      done();
    }
    signal.addEventListener('abort', finish, { once: true });
  });

export class McpTools {
  private sessionPromise: Promise<BrokerSession> | undefined;

  constructor(private readonly o: McpOptions) {}

  /** One session for the server's life (the token is cached and refreshed by it); a failure is retried next call. */
  session(): Promise<BrokerSession> {
    if (!this.sessionPromise) {
      const open = this.o.session ?? (async () => (await import('../auth/broker-session.js')).brokerSession({ flag: this.o.broker, env: this.o.env }));
      this.sessionPromise = open().catch((e: unknown) => {
        this.sessionPromise = undefined;
        throw e;
      });
    }
    return this.sessionPromise;
  }

  private heartbeat(ctx: CallContext, what: () => string): () => void {
    const started = Date.now();
    const t = setInterval(() => ctx.progress(`${what()} (${Math.round((Date.now() - started) / 1000)} s)`), this.o.progressIntervalMs ?? 5000);
    t.unref();
    return () => clearInterval(t);
  }

  async awsCall(a: z.infer<typeof awsCallInput>, ctx: CallContext): Promise<AwsCallResult> {
    const out = new BoundedSink(this.o.maxOutputBytes);
    const err = new BoundedSink(this.o.maxOutputBytes);
    let last = 'starting';
    const host = new CapturingHost((e) => {
      last = e.text;
      ctx.progress(e.text);
    });
    const result = (status: AwsCallResult['status'], exitCode: number, extra: Partial<AwsCallResult> = {}): AwsCallResult => ({
      status,
      exitCode,
      decision: null,
      rule: null,
      reason: null,
      target: null,
      grantId: null,
      stdout: out.text(),
      stdoutBytes: out.total,
      stdoutTruncated: out.truncated,
      stderr: err.text(),
      stderrBytes: err.total,
      stderrTruncated: err.truncated,
      approval: null,
      error: null,
      messages: host.lines.map(oneLine),
      ...extra,
    });

    let awsArgv: string[];
    try {
      awsArgv = awsArgvOf(a);
    } catch (e) {
      return this.failure(e, result, undefined);
    }
    const wait = Math.min(a.waitSeconds ?? this.o.maxWaitSeconds, this.o.maxWaitSeconds);
    // The guard's own options go before `--`; everything after it is the model's aws argv, so no argument of the
    // model can be read as --broker or --approval (guard-options.ts reads options only at the head).
    const argv = [
      '--no-input',
      '--wait',
      String(wait),
      ...(a.reason ? ['--reason', a.reason] : []),
      ...(a.approvalId ? ['--approval', a.approvalId] : []),
      '--',
      ...(a.target ? ['--profile', a.target] : []),
      ...awsArgv,
    ];

    const signals = new AbortSignals();
    let stoppedBy: 'cancelled' | 'timeout' | undefined;
    const stop = (why: 'cancelled' | 'timeout') => {
      if (stoppedBy) return;
      stoppedBy = why;
      // SIGINT withdraws a pending approval (approvals/requester.ts) and asks aws to stop; SIGTERM if it does not.
      signals.emit('SIGINT');
      setTimeout(() => signals.emit('SIGTERM'), 2000).unref();
    };
    const onAbort = () => stop('cancelled');
    if (ctx.signal.aborted) onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => stop('timeout'), this.o.timeoutSeconds * 1000);
    timer.unref();
    const stopBeat = this.heartbeat(ctx, () => last);
    let decided: GrantDecision | undefined;
    let session: BrokerSession | undefined;
    try {
      const { runInvocation } = await import('../client/run-invocation.js');
      const exitCode = await runInvocation(argv, {
        host,
        env: this.o.env,
        cwd: this.o.cwd,
        session: async () => (session = await this.session()),
        stdin: null,
        stdout: out,
        stderr: err,
        tty: null,
        signals,
        ...(this.o.fetch ? { fetch: this.o.fetch } : {}),
        onGrant: (g) => {
          decided = g;
          // Cancelled while the grant was being issued: do not start aws at all (the grant lapses unused).
          if (stoppedBy) throw new GuardError('interrupted', `${stoppedBy === 'timeout' ? 'timed out' : 'cancelled'} before aws started`);
          last = `running aws (${g.decision} by rule ${g.rule ?? '(default)'}, target ${g.target})`;
          ctx.progress(last);
        },
      });
      const status = stoppedBy ?? (exitCode === 0 ? 'ok' : 'failed');
      return result(status, exitCode, {
        decision: decided?.decision ?? null,
        rule: decided?.rule ?? null,
        target: decided?.target ?? null,
        grantId: decided?.grantId ?? null,
        ...(stoppedBy ? { error: { code: 'interrupted', message: `${stoppedBy === 'timeout' ? `stopped after ${this.o.timeoutSeconds} s` : 'cancelled by the client'}` } } : {}),
      });
    } catch (e) {
      return this.failure(e, result, session, stoppedBy, decided);
    } finally {
      stopBeat();
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  /** A guard error as a normal, structured result: a denial or a pending approval is an answer, not a failure. */
  private async failure(
    e: unknown,
    result: (s: AwsCallResult['status'], code: number, extra?: Partial<AwsCallResult>) => AwsCallResult,
    session: BrokerSession | undefined,
    stoppedBy?: 'cancelled' | 'timeout',
    decided?: GrantDecision,
  ): Promise<AwsCallResult> {
    if (!isGuardError(e)) {
      // Internals are not shown (as on the CLI); the model gets a stable code.
      return result('error', EXIT.INTERNAL, { error: { code: 'internal', message: 'internal error (a bug in guard-aws)' } });
    }
    const d = e.details as { rule?: unknown; reason?: unknown; id?: unknown; approval?: ApprovalSummary };
    const base: Partial<AwsCallResult> = {
      error: { code: e.code, message: oneLine(e.message) },
      rule: typeof d.rule === 'string' ? d.rule : (decided?.rule ?? null),
      ...(decided ? { decision: decided.decision, target: decided.target, grantId: decided.grantId } : {}),
    };
    const approval = async (): Promise<ApprovalOut | null> => {
      const id = typeof d.id === 'string' ? d.id : d.approval?.id;
      if (d.approval && typeof d.approval.id === 'string') return approvalView(d.approval);
      if (!id || !session) return null;
      // The freshest state (who approved so far, when it lapses), through the same client `guard-aws approvals` uses.
      const { getApproval } = await import('../approvals/client.js');
      return getApproval({ brokerUrl: session.brokerUrl, token: () => session.token(), ...(this.o.fetch ? { fetch: this.o.fetch } : {}) }, id).then(
        approvalView,
        () => null,
      );
    };
    switch (e.code) {
      case 'denied':
      case 'policy_too_large':
        return result('denied', e.exitCode, { ...base, decision: 'deny', reason: typeof d.reason === 'string' ? d.reason : oneLine(e.message) });
      case 'approval_timeout':
      case 'approval_pending': {
        const a = await approval();
        return result('approval_pending', e.exitCode, { ...base, decision: 'approve', rule: a?.rule ?? base.rule ?? null, reason: a?.ruleReason ?? null, approval: a });
      }
      case 'approval_denied':
      case 'approval_expired':
      case 'approval_closed':
      case 'approval_used':
      case 'approval_mismatch':
      case 'approval_not_found': {
        const a = await approval();
        return result(e.code, e.exitCode, { ...base, decision: 'approve', rule: a?.rule ?? base.rule ?? null, approval: a });
      }
      case 'interrupted': {
        const a = stoppedBy ? await approval() : null;
        return result(stoppedBy ?? 'cancelled', e.exitCode, { ...base, approval: a });
      }
      default:
        return result('error', e.exitCode, base);
    }
  }

  async approvalStatus(a: z.infer<typeof approvalStatusInput>, ctx: CallContext): Promise<ApprovalStatusResult> {
    const session = await this.session();
    const { getApproval } = await import('../approvals/client.js');
    const client = { brokerUrl: session.brokerUrl, token: () => session.token(), ...(this.o.fetch ? { fetch: this.o.fetch } : {}) };
    const wait = Math.min(a.waitSeconds ?? 0, this.o.maxWaitSeconds) * 1000;
    const started = Date.now();
    let s = await getApproval(client, a.id);
    let seen = `${s.status}/${s.approvals.length}`;
    ctx.progress(`approval ${s.id}: ${s.status}, ${s.approvals.length} of ${s.required}`);
    // Polls without withdrawing anything: a cancelled status wait only stops asking (unlike aws_call's wait).
    while (s.status === 'pending' && Date.now() - started < wait && !ctx.signal.aborted) {
      await sleep(Math.min(this.o.pollMs ?? 2000, wait - (Date.now() - started)), ctx.signal);
      if (ctx.signal.aborted) break;
      s = await getApproval(client, a.id);
      const key = `${s.status}/${s.approvals.length}`;
      ctx.progress(key === seen ? `approval ${s.id}: still ${s.status}` : `approval ${s.id}: ${s.status}, ${s.approvals.length} of ${s.required}`);
      seen = key;
    }
    return { approval: approvalView(s), waitedSeconds: Math.round((Date.now() - started) / 100) / 10 };
  }

  async explain(a: z.infer<typeof explainInput>): Promise<ExplainResult> {
    const awsArgv = awsArgvOf(a);
    const [{ DEFAULT_ACCOUNT, DEFAULT_REGION, explainInvocation }, { splitGuardOptions }, { findAws, resolveCliRelease }, { defaultPolicyPath }] = await Promise.all([
      import('../client/explain.js'),
      import('../client/guard-options.js'),
      import('../runner/index.js'),
      import('../policy/paths.js'),
    ]);
    const policies = this.o.policies.length ? this.o.policies : [defaultPolicyPath()];
    // As on the run path and in `guard-aws explain`: `--profile NAME` in the argv names the target.
    const split = splitGuardOptions(['--', ...awsArgv]);
    if (a.target && split.options.target && a.target !== split.options.target) {
      throw new GuardError('usage', `target ${a.target} and --profile ${split.options.target} name different targets`);
    }
    const env = this.o.env;
    const account = a.account ?? DEFAULT_ACCOUNT;
    const region = a.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? DEFAULT_REGION;
    // Read with the table of the aws that aws_call would run (v1 or v2), as the broker will.
    const cliVersion = resolveCliRelease(findAws({ env, cwd: this.o.cwd }), { env }).version;
    // Who is asking, from the same token the calls use; without one (not logged in) the local user, no groups.
    let caller: ExplainResult['caller'] = { subject: env.USER ?? 'local-user', groups: [], from: 'environment' };
    try {
      const s = await this.session();
      await s.token();
      if (s.subject) caller = { subject: s.subject, groups: s.groups ?? [], from: 'token' };
    } catch {
      // Explaining needs no broker: fall back to the local user.
    }
    const target = { name: a.target ?? split.options.target ?? 'default', account, region };
    // The same explanation `guard-aws explain --json` prints (client/explain.ts), argv masked as there.
    const e = await explainInvocation({
      argv: split.awsArgv,
      cliVersion,
      caller: { subject: caller.subject, groups: caller.groups },
      target,
      policies,
      cwd: this.o.cwd,
      env,
    });
    return {
      argv: e.argv,
      command: e.command,
      subcommand: e.subcommand,
      service: e.service,
      operation: e.operation,
      region: e.region,
      account: e.account,
      target: e.target,
      caller,
      actions: e.actions,
      resources: e.resources,
      risks: e.risks,
      notes: e.notes,
      decision: e.decision,
      rule: e.rule,
      reason: e.reason,
      approval: (e.approval as ExplainResult['approval']) ?? null,
      policies,
      advisory:
        'Judged locally with the policy files above; the broker decides again with its own policies when the call is made (aws_call).',
    };
  }
}
