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
import type { AwsBinary, RunIsolation } from '../runner/index.js';
import type { WarmRunner } from '../runner/warm/types.js';
import type { TranscriptEnvelope } from '../transcript/types.js';

/** `parseInvocation` (src/invocation/parse.ts): argv → what it asks of AWS; throws GuardError on anything unclear. */
export type ParseFn = (argv: string[], ctx: InvocationContext) => ParsedInvocation;
/** `decide` (src/policy) with the broker's policy set already bound. */
export type DecideFn = (input: DecisionInput) => Decision;
/** `sessionPolicyEnforces` (src/policy/enforceable.ts) with the broker's policy set already bound. */
export type EnforceableFn = (input: DecisionInput) => { enforceable: boolean; reasons: string[] };

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
  /**
   * Work that needs the database before the module can answer (e.g. loading the audit head): the broker awaits
   * every module's start after mounting, and holds requests until then (createBroker's `ready`).
   */
  start?(): Promise<void>;
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
  /** Whether the session policy enforces everything a decision depended on; absent = never (`auto` runs on the broker). */
  enforceable?: EnforceableFn;
  /** Remote runs (POST /v1/runs): the broker's own aws, confinement, where transcripts go. */
  runs?: RunDeps;
  routes?: BrokerRouteModule[];
}

/**
 * Remote runs (src/broker/remote-run.ts): the broker runs the real aws itself with the scoped session (which never
 * leaves it), in a private per-run directory, masks on its side and records the transcript itself.
 */
export interface RunDeps {
  /** The aws the broker runs; default: the first real aws on the broker's PATH (or GUARD_AWS_AWS_BIN). */
  aws?: AwsBinary | (() => AwsBinary);
  /**
   * Confinement of each run beyond the sealed environment (a RunIsolation, src/runner/run-aws.ts, for the aws about
   * to run): called once per run. The broker's assembly sets it from `execution.isolation` (src/runner/isolation.ts);
   * undefined only when a test or embedder passes its own RunDeps without one.
   */
  isolation?: ((aws: AwsBinary) => RunIsolation) | undefined;
  /**
   * The warm CLI pool (execution.warmPool, src/runner/warm/pool.ts): runs are forked from it when it has a
   * supervisor ready, and their directories live under its runRoot. Absent: every run starts a fresh aws.
   */
  warm?: (WarmRunner & { runRoot: string; close(): void }) | undefined;
  /** Appends a broker-attested transcript to the audit log. Absent: no broker run is started (fail closed). */
  attest?: (envelope: TranscriptEnvelope, caller: { subject: string }) => Promise<{ id: string }>;
  /**
   * Where a broker run's body goes (src/audit/bodies/store.ts): the output is written into `stagingDir` as it arrives
   * and moved into the store with `adopt` when the run ends. Absent: output is not recorded beyond its size 0
   * (tests that do not look at output). `hold` marks the body file in use until released, so the staging sweep
   * (src/audit/bodies/staging.ts) never removes the body of a run that is still going, however quiet.
   */
  bodies?: () => { stagingDir: string; maxBytes?: number; adopt(path: string, sha256: string, size: number): Promise<void>; hold?(path: string): () => void } | undefined;
  /** Environment findAws and `aws --version` read on the broker; default process.env. */
  env?: NodeJS.ProcessEnv;
}
