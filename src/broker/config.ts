import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { approvalsConfigSchema } from '../approvals/setup.js';
import { consoleConfigSchema } from '../console/config.js';
import { deprecationMessage, warnOnStderr } from '../config/deprecated-keys.js';
import { GuardError } from '../errors.js';
import { isolationConfigSchema } from '../runner/isolation.js';
import { warmPoolConfigSchema } from '../runner/warm/config.js';

/**
 * The broker's configuration file (YAML). Documented in docs/broker-config.md; example in examples/broker.yaml.
 * Errors name the place: `file:line:col: message`, GuardError `config_invalid` (exit 78).
 */

// IAM role ARN (IAM User Guide, "IAM identifiers"): partition, 12-digit account, role path and name.
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):iam::([0-9]{12}):role\/[\w+=,.@\/-]{1,512}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
// JWS algorithms jose can verify; `none` is never acceptable (RFC 8725 §3.1: never trust the token's `alg`).
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const httpUrl = z.url({ protocol: /^https?$/ });

const targetSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'target name: letters, digits, _ . - (max 64)'),
  roleArn: z.string().regex(ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)'),
  region: z.string().regex(REGION, 'must be an AWS region such as eu-west-1'),
  // ExternalId: 2–1224 characters of [\w+=,.@:\/-] (STS API reference, AssumeRole).
  externalId: z.string().regex(/^[\w+=,.@:\/-]{2,1224}$/, 'ExternalId: 2–1224 characters of [\\w+=,.@:/-]').optional(),
  /** For tests against moto_server only: STS and the runner's aws go to this endpoint. */
  endpoint: httpUrl.optional(),
  default: z.boolean().optional(),
  /** Where calls against this target run (docs/broker-config.md, "Execution"); overrides the caller defaults. */
  execution: z.enum(['broker', 'local', 'auto']).optional(),
});

const MODE = z.enum(['broker', 'local', 'auto']);

/**
 * Where a granted call runs (docs/broker-config.md, "Execution"): `broker` (the broker runs aws itself, the
 * caller never holds credentials), `local` (credentials handed to the caller's guard-aws, as before) or `auto`
 * (local only when the session policy enforces everything the decision depended on).
 */
const executionSchema = z
  .strictObject({
    /** People (tokens that are not workloads). */
    people: MODE.default('auto'),
    /** Workload identities: client-credentials tokens (sub = client_id, RFC 9068 §2.2) and members of workloadGroups. */
    workloads: MODE.default('broker'),
    workloadGroups: z.array(z.string().min(1)).default(['ci', 'agents']),
    /** Per caller group: a caller in several listed groups gets the strictest of their modes. */
    groups: z.record(z.string().min(1), MODE).default({}),
    /** Runs executing at once on this broker; more → 429 too_many_runs. */
    maxConcurrent: z.int().min(1).max(1024).default(16),
    /** A run not started this long after it was decided is dropped. */
    startWithinSec: z.int().min(1).max(3600).default(60),
    /** Bytes a run may take through stdin. */
    maxStdinBytes: z.int().min(0).max(64 * 1024 ** 3).default(1024 ** 3),
    /** Bytes a run may take as uploaded input files (PUT /v1/runs/{id}/inputs/{token}), all together. */
    maxInputBytes: z.int().min(0).max(1024 ** 4).default(10 * 1024 ** 3),
    /** Bytes of files a run may write and stream back to the caller, all together. */
    maxOutputBytes: z.int().min(0).max(1024 ** 4).default(10 * 1024 ** 3),
    /** Bytes of small files (file://, fileb://, --cli-input-json) a run request may carry, all together. */
    maxFileBytes: z.int().min(0).max(8 * 1024 * 1024).default(128 * 1024),
    /** Parent of the private per-run directories; default the OS temp directory. */
    runDir: z.string().min(1).optional(),
    /** How the broker confines the aws it runs for callers (src/runner/isolation.ts, SECURITY.md). */
    isolation: isolationConfigSchema,
    /** Warm CLI processes that fork a child per run instead of starting aws afresh (src/runner/warm/pool.ts). */
    warmPool: warmPoolConfigSchema,
  })
  .default({ isolation: { mode: 'bwrap' }, warmPool: warmPoolConfigSchema.parse(undefined), people: 'auto', workloads: 'broker', workloadGroups: ['ci', 'agents'], groups: {}, maxConcurrent: 16, startWithinSec: 60, maxStdinBytes: 1024 ** 3, maxInputBytes: 10 * 1024 ** 3, maxOutputBytes: 10 * 1024 ** 3, maxFileBytes: 128 * 1024 });

/**
 * Where the broker keeps grants, approvals, the audit log and console sessions: one SQLite file (one broker, the
 * default), or a PostgreSQL database shared by any number of brokers. The PostgreSQL URL (with its password) is
 * best kept out of the file: GUARD_AWS_STORE_URL, when set, is the URL (and wins over `url`).
 */
const postgresSchema = z.strictObject({
  url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  sslmode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).optional(),
  caFile: z.string().min(1).optional(),
  poolSize: z.int().min(1).max(200).default(10),
  connectTimeoutMs: z.int().min(100).max(120_000).default(5000),
});
const storageSchema = z
  .strictObject({
    sqlite: z.string().min(1).optional(),
    // `postgres: postgres://…` is short for `postgres: { url: postgres://… }`.
    postgres: z.preprocess((v) => (typeof v === 'string' ? { url: v } : v), postgresSchema).optional(),
    /** The audit signing key (PEM). Default with SQLite: `<sqlite file>.audit-key.pem`; required with PostgreSQL. */
    auditKeyFile: z.string().min(1).optional(),
  })
  .superRefine((st, ctx) => {
    if ((st.sqlite === undefined) === (st.postgres === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of sqlite (a file) or postgres (a database URL)' });
    }
    if (st.postgres !== undefined && st.auditKeyFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['auditKeyFile'], message: 'required with postgres: the file of the key this broker signs audit records with' });
    }
  });

/**
 * Transcript bodies (docs/broker-config.md, "Transcripts"): the limit of output kept whole, and where bodies are
 * stored — content-addressed files beside the database (default), or S3-compatible object storage with Object Lock
 * in compliance mode so no one can delete or overwrite a recording before `retentionDays` have passed.
 */
const bodyStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    /** Default: `<storage.sqlite>.bodies` (beside the database). */
    dir: z.string().min(1).optional(),
  }),
  z.strictObject({
    type: z.literal('s3'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    prefix: z.string().max(512).default('transcripts/'),
    region: z.string().regex(REGION, 'must be an AWS region such as eu-west-1'),
    /** S3-compatible endpoint (MinIO, moto in tests); default AWS. */
    endpoint: httpUrl.optional(),
    forcePathStyle: z.boolean().default(false),
    /** Object Lock retention in compliance mode, days from the upload (S3 User Guide, "Object Lock"). */
    retentionDays: z.int().min(1).max(36_500),
    /** Local directory for staging uploads before they go to the bucket; default `<storage.sqlite>.bodies-staging`. */
    stagingDir: z.string().min(1).optional(),
  }),
]);

const transcriptsSchema = z
  .strictObject({
    /** Output kept whole, framing included (src/transcript/body.ts); beyond it head + marked gap + tail. */
    maxBodyBytes: z.int().min(64 * 1024).max(64 * 1024 ** 3).default(1024 ** 3),
    store: bodyStoreSchema.default({ type: 'file' }),
    /**
     * Staging files (uploads a client gave up on, bodies of runs a crashed broker left) untouched for this many hours
     * are removed (src/audit/bodies/staging.ts), at start and hourly. Longer than the longest session (12 h), so an
     * upload a client still resumes within its grant is never swept.
     */
    stagingTtlHours: z.int().min(1).max(24 * 365).default(24),
  })
  // (No 5 GiB cap with the S3 store: bodies over 64 MiB go up as a multipart upload, src/audit/bodies/s3.ts.)
  .default({ maxBodyBytes: 1024 ** 3, store: { type: 'file' }, stagingTtlHours: 24 });

export type BodyStoreConfig = z.output<typeof bodyStoreSchema>;
export type TranscriptsConfig = z.output<typeof transcriptsSchema>;

export const brokerConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.int().min(0).max(65535).default(8740),
      })
      .default({ host: '127.0.0.1', port: 8740 }),
    issuer: httpUrl,
    audience: z.string().min(1),
    clientId: z.string().min(1),
    jwksUri: httpUrl.optional(),
    groupsClaim: z.string().min(1).default('groups'),
    // Claims every token must carry, with the allowed values (globs): required when the issuer also serves other
    // tenants (GitHub Actions: any repository can get a token for any audience).
    requiredClaims: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).optional(),
    algorithms: z.array(z.enum(ALGORITHMS)).min(1).default(['RS256', 'ES256', 'EdDSA']),
    clockToleranceSec: z.int().min(0).max(300).default(30),
    policies: z.array(z.string().min(1)).min(1),
    storage: storageSchema,
    // AssumeRole DurationSeconds: at least 900 s; 43,200 s is the highest a role's maximum can be set to.
    sessionDurationSec: z.int().min(900).max(43_200).default(900),
    maxBodyBytes: z.int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
    targets: z.array(targetSchema).min(1),
    /** Approval flow settings, validated by the approvals module's own schema (src/approvals/setup.ts). */
    approvals: approvalsConfigSchema.optional(),
    /** Groups whose members may read, replay, export and verify the audit log, and read every approval request. */
    auditorGroups: z.array(z.string().min(1)).min(1).default(['auditors']),
    /** The web console under /ui/ (src/console/config.ts); absent = no console. */
    console: consoleConfigSchema.optional(),
    execution: executionSchema,
    transcripts: transcriptsSchema,
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.targets.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `duplicate target name ${t.name}` });
      seen.set(t.name, i);
    });
    const defaults = cfg.targets.map((t, i) => (t.default ? i : -1)).filter((i) => i >= 0);
    if (defaults.length > 1) {
      ctx.addIssue({ code: 'custom', path: ['targets', defaults[1]!, 'default'], message: 'only one target may be the default' });
    }
    // Bodies default to a directory beside the SQLite file. Brokers on PostgreSQL have no such file, and every
    // broker must find every body (verify --bodies, replay): the place must be named, shared storage or S3.
    const st = cfg.transcripts.store;
    if (cfg.storage.postgres !== undefined && (st.type === 'file' ? st.dir : st.stagingDir) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['transcripts', 'store', st.type === 'file' ? 'dir' : 'stagingDir'],
        message:
          st.type === 'file'
            ? 'required with storage.postgres: a directory every broker shares (or type: s3)'
            : 'required with storage.postgres: a directory on this broker for bodies being uploaded',
      });
    }
  });

export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;
type Parsed = z.output<typeof brokerConfigSchema>;

export interface TargetConfig {
  name: string;
  roleArn: string;
  /** Account of the role, from its ARN. */
  account: string;
  region: string;
  externalId?: string | undefined;
  endpoint?: string | undefined;
  default: boolean;
  execution?: 'broker' | 'local' | 'auto' | undefined;
}

export type ExecutionConfig = z.output<typeof executionSchema>;

export interface BrokerConfig extends Omit<Parsed, 'targets'> {
  targets: TargetConfig[];
  /** File the config came from (for messages), or `<inline>`. */
  source: string;
}

/** Builds the resolved config from already-validated input: accounts from ARNs, the default target, absolute paths. */
function resolveConfig(p: Parsed, source: string, baseDir: string): BrokerConfig {
  const anyDefault = p.targets.some((t) => t.default);
  const abs = (f: string) => (f === ':memory:' || isAbsolute(f) ? f : resolve(baseDir, f));
  return {
    ...p,
    source,
    policies: p.policies.map(abs),
    storage: {
      ...p.storage,
      ...(p.storage.sqlite !== undefined ? { sqlite: abs(p.storage.sqlite) } : {}),
      ...(p.storage.postgres?.caFile ? { postgres: { ...p.storage.postgres, caFile: abs(p.storage.postgres.caFile) } } : {}),
      ...(p.storage.auditKeyFile ? { auditKeyFile: abs(p.storage.auditKeyFile) } : {}),
    },
    execution: { ...p.execution, ...(p.execution.runDir ? { runDir: abs(p.execution.runDir) } : {}) },
    transcripts: {
      ...p.transcripts,
      store:
        p.transcripts.store.type === 'file'
          ? { ...p.transcripts.store, ...(p.transcripts.store.dir ? { dir: abs(p.transcripts.store.dir) } : {}) }
          : { ...p.transcripts.store, ...(p.transcripts.store.stagingDir ? { stagingDir: abs(p.transcripts.store.stagingDir) } : {}) },
    },
    targets: p.targets.map((t, i) => ({
      ...t,
      account: ROLE_ARN.exec(t.roleArn)![2]!,
      // Without an explicit default, the first target is the default.
      default: t.default ?? (!anyDefault && i === 0),
    })),
  };
}

type Where = (path: readonly string[], key: string) => string;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Earlier releases had two settings for the same people: `auditorGroup` (one group, the audit log) and
 * `approvals.auditorGroups` (the groups that read every approval request). They are one list now,
 * `auditorGroups`. The old keys are still read, with a warning each. `auditorGroup: X` alone becomes `[X]`: X
 * may then also read approval requests, which show less than the transcripts X already reads. A list under
 * `approvals` that differs from the audit log's group is refused (exit 78): taking it would let those groups
 * read the audit log, which they could not before.
 */
function upgradeAuditorKeys(data: unknown, where: Where, warn: (line: string) => void): void {
  if (!isMap(data)) return;
  const approvals = isMap(data.approvals) ? data.approvals : undefined;
  const single = Object.hasOwn(data, 'auditorGroup');
  const list = approvals !== undefined && Object.hasOwn(approvals, 'auditorGroups');
  if (!single && !list) return;
  const oldKey = single ? { path: [], key: 'auditorGroup' } : { path: ['approvals'], key: 'auditorGroups' };
  const oldName = single ? 'auditorGroup' : 'approvals.auditorGroups';
  if (Object.hasOwn(data, 'auditorGroups')) {
    throw new GuardError('config_invalid', deprecationMessage(where(oldKey.path, oldKey.key), { from: oldName, to: 'auditorGroups', conflict: true }));
  }
  const auditLog: unknown[] = single ? [data.auditorGroup] : ['auditors'];
  const requests: unknown[] = list && Array.isArray(approvals.auditorGroups) ? approvals.auditorGroups : list ? [approvals.auditorGroups] : ['auditors'];
  const same = (a: unknown[], b: unknown[]) => a.every((x) => b.includes(x)) && b.every((x) => a.includes(x));
  if (list && !same(auditLog, requests)) {
    throw new GuardError(
      'config_invalid',
      `${where(list ? ['approvals'] : [], list ? 'auditorGroups' : 'auditorGroup')}: \`auditorGroup\` (audit log: ${auditLog.join(', ')}) and ` +
        `\`approvals.auditorGroups\` (approval requests: ${requests.join(', ')}) are one setting now; set \`auditorGroups\` to the groups that may read both`,
    );
  }
  if (single) warn(deprecationMessage(where([], 'auditorGroup'), { from: 'auditorGroup', to: 'auditorGroups', conflict: false }));
  if (list) warn(deprecationMessage(where(['approvals'], 'auditorGroups'), { from: 'approvals.auditorGroups', to: 'auditorGroups', conflict: false }));
  data.auditorGroups = list ? requests : auditLog;
  delete data.auditorGroup;
  if (approvals) delete approvals.auditorGroups;
}

/** Validates a config object given in code (tests, `guard-aws dev`). Paths resolve against `baseDir`. */
export function brokerConfigFrom(input: BrokerConfigInput, baseDir = process.cwd(), warn: (line: string) => void = warnOnStderr): BrokerConfig {
  const data: unknown = structuredClone(input);
  upgradeAuditorKeys(data, (path, key) => `broker config: ${[...path, key].join('.')}`, warn);
  const r = brokerConfigSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new GuardError('config_invalid', `broker config: ${pathText(issue.path)}: ${issue.message}`);
  }
  return resolveConfig(r.data, '<inline>', baseDir);
}

/** Parses YAML text; `file` is used in messages and relative paths resolve against its directory. */
export function parseBrokerConfig(text: string, file: string, warn: (line: string) => void = warnOnStderr): BrokerConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const { line, col } = lines.linePos(offset ?? 0);
    return `${file}:${line}:${col}`;
  };
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    throw new GuardError('config_invalid', `${at(yamlErr.pos[0])}: ${yamlErr.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  // Old keys are named where they are written: the key's own line and column.
  upgradeAuditorKeys(
    data,
    (path, key) => {
      const map = path.length ? doc.getIn(path, true) : doc.contents;
      const pair = (map as { items?: { key: { value: unknown; range?: [number, number, number] } }[] } | null)?.items?.find((it) => String(it.key?.value) === key);
      return at(pair?.key.range?.[0]);
    },
    warn,
  );
  const r = brokerConfigSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
    // Point at the offending node; for unknown keys, at the key itself; for a missing key, at its parent.
    let node: unknown;
    let key = path;
    if (issue.code === 'unrecognized_keys') {
      const mapNode = path.length ? doc.getIn(path, true) : doc.contents;
      const pair = (mapNode as { items?: { key: { value: unknown; range?: [number, number, number] } }[] })?.items?.find(
        (it) => issue.keys.includes(String(it.key?.value)),
      );
      node = pair?.key;
      key = [...path, issue.keys[0]!];
    }
    for (let n = path.length; node === undefined && n >= 0; n--) {
      const candidate = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(candidate)) node = candidate;
    }
    const offset = isNode(node) ? node.range?.[0] : (node as { range?: [number] } | undefined)?.range?.[0];
    throw new GuardError('config_invalid', `${at(offset)}: ${pathText(key)}: ${issue.message}`);
  }
  return resolveConfig(r.data, file, dirname(resolve(file)));
}

/** Reads and validates the broker config file. */
export function loadBrokerConfig(file: string, warn: (line: string) => void = warnOnStderr): BrokerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GuardError('config_invalid', `${file}: cannot read broker config: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
  }
  return parseBrokerConfig(text, file, warn);
}

function pathText(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`))
    .join('');
}

/** The target a request names, or the default. */
export function pickTarget(cfg: Pick<BrokerConfig, 'targets'>, name: string | undefined): TargetConfig | undefined {
  return name === undefined ? cfg.targets.find((t) => t.default) : cfg.targets.find((t) => t.name === name);
}
