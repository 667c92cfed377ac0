import type { Hono } from 'hono';
import type { InvocationContext, ParsedInvocation } from '../invocation/types.js';
import type { Decision, DecisionInput, MaskingRules } from '../policy/types.js';
import type { BrokerStore } from '../store/types.js';
import type { ApprovalGate } from './approval-gate.js';
import type { BrokerConfig } from './config.js';
import type { BrokerEnv } from './env.js';
import type { BrokerLog } from './log.js';
import type { BrokerMetrics } from './metrics.js';
import type { TokenVerifier } from './middleware/bearer-auth.js';
import type { StsClientFactory } from './sts.js';

/** `parseInvocation` (src/invocation/parse.ts): argv → what it asks of AWS; throws GuardError on anything unclear. */
export type ParseFn = (argv: string[], ctx: InvocationContext) => ParsedInvocation;
/** `decide` (src/policy) with the broker's policy set already bound. */
export type DecideFn = (input: DecisionInput) => Decision;

/** What extension routes (approvals, transcripts, audit) get when they mount themselves. */
export interface BrokerContext {
  config: BrokerConfig;
  store: BrokerStore;
  log: BrokerLog;
  metrics: BrokerMetrics;
  now: () => Date;
}

/**
 * Mounts extra routes on the broker app. Every `/v1/*` path requires a verified bearer token (the caller is
 * `c.get('caller')`) unless the module lists it in `publicPaths`. Use `validateJson(schema)` from
 * src/broker/middleware/validate.ts and throw `ApiError` for deliberate refusals.
 */
export interface BrokerRouteModule {
  publicPaths?: string[];
  mount(app: Hono<BrokerEnv>, ctx: BrokerContext): void;
  /** Called by the broker's close(). */
  close?(): Promise<void> | void;
  /**
   * Called when the server stops accepting connections, before it waits for in-flight requests: end long-lived
   * responses (server-sent events, long polls) so that wait is short.
   */
  drain?(): void;
}

export interface BrokerDeps {
  config: BrokerConfig;
  /** Owned by the broker from now on: close() closes it. */
  store: BrokerStore;
  verify: TokenVerifier;
  parse: ParseFn;
  decide: DecideFn;
  /** Default: one @aws-sdk/client-sts client per target with the broker's own AWS credentials. */
  createStsClient?: StsClientFactory;
  /** What to do with `approve` decisions. Default: refuse with 403 `approval_required`. */
  approvals?: ApprovalGate;
  /** Masking rules from the policy files, passed to the runner in each grant. */
  masking?: MaskingRules;
  /** Default: JSON lines on stderr. */
  log?: BrokerLog;
  metrics?: BrokerMetrics;
  now?: () => Date;
  /** Default: `grt_` + 22 random base64url characters (128 bits). */
  newGrantId?: () => string;
  routes?: BrokerRouteModule[];
}
