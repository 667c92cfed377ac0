/**
 * What an `aws …` argv will ask of AWS. Produced by `parseInvocation` (src/invocation/parse.ts), consumed by
 * the policy engine, the broker (session policy) and the runner. Shared by client and broker.
 */

/** Risk signals attached to an invocation. Policies match on these names. */
export const RISK_SIGNALS = [
  'read_only',
  'write',
  'destructive',
  'credential_minting',
  'iam_change',
  'internet_exposure',
  'secret_read',
  'local_file_read',
  'local_file_write',
  'endpoint_override',
  'credential_override',
  'remote_execution',
  'config_change',
  'cross_account',
  'bulk',
  'hidden_input',
  'external_process',
  'any_resource',
] as const;
export type RiskSignal = (typeof RISK_SIGNALS)[number];

/** Access levels of the Service Authorization Reference. */
export const ACCESS_LEVELS = ['List', 'Read', 'Write', 'Permissions management', 'Tagging'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export interface InvocationContext {
  /** Account the call will run in (from the broker's target), e.g. 111122223333. */
  account: string;
  /** Default region when the argv has no --region. */
  region: string;
  /** Working directory for relative file:// paths. */
  cwd?: string;
  /** Environment used to expand ~ and $VAR in file:// paths, as the CLI would. */
  env?: Record<string, string | undefined>;
  /** Reads a local file (injected so tests and the broker can control it). Defaults to fs.readFileSync. */
  readFile?: (path: string) => Buffer;
  /**
   * On the broker there is no caller filesystem: file:// values cannot be read there. When set, the parser
   * uses `fileContents` (path → content as the client sent it) instead of reading.
   */
  fileContents?: Record<string, string>;
  /**
   * A binary file (a whole `fileb://` value of a blob-typed parameter) the decision sees only as its digest:
   * returns the digest when `path` goes that way, and the parse then reads a stand-in (blobStandIn) instead of
   * the bytes. No decision depends on a blob's bytes (risks never read them; a policy condition that reaches a
   * stand-in fails closed, src/policy/conditions.ts), so a multi-MB `--zip-file fileb://…` needs no upload to
   * be decided. Whoever runs the call then pins it to bytes with exactly this digest.
   */
  blob?: (path: string) => BlobDigest | undefined;
  /** Which AWS CLI major version will run the argv (its globals and customizations differ). Default 'v1'. */
  cliVersion?: 'v1' | 'v2';
  /**
   * The CLI that will run is a newer minor release than the table (docs/aws-cli-parsing.md §6.3): options must
   * be written in full, abbreviations are refused.
   */
  exactOptionNames?: boolean;
}

/** One IAM permission the call needs: an action on a set of resources. */
export interface Permission {
  /** `prefix:Action` in the Service Authorization Reference's spelling. */
  action: string;
  /** ARNs (may contain `*` wildcards as AWS policies do); `['*']` when the action has no resource scoping. */
  resources: string[];
  /**
   * True when `resources` were derived from parameters. False when the request names no resource guard-aws can
   * read: `*`, or for a write with required resource types each type's pattern in the target account and region
   * (docs/aws-cli-parsing.md §5.3) — the call then carries the `any_resource` risk.
   */
  derived: boolean;
  /**
   * Set when the permission is only exercised by another AWS service on the caller's behalf (KMS data keys for
   * S3 server-side encryption): the session policy then allows it only through that service (`kms:ViaService`).
   */
  viaService?: string;
  /**
   * The region this permission's request is made in, when it is not the call's: `kms replicate-key` needs
   * kms:CreateKey in the replica Region (AWS KMS API Reference, ReplicateKey, "Required permissions"). The session
   * policy pins `aws:RequestedRegion` to it for this action.
   */
  region?: string;
}

/** A local file the CLI will read or write for this call. */
export interface LocalFile {
  path: string;
  mode: 'read' | 'write';
  /** Which argument mentions it (`--policy-document`, `paths[0]`, `outfile`…). */
  argument: string;
  /** A blob read as its digest only (InvocationContext.blob): the run must use bytes with this digest. */
  digest?: BlobDigest;
}

/** SHA-256 (lower-case hex) and size in bytes of a file's exact contents. */
export interface BlobDigest {
  sha256: string;
  size: number;
}

export interface ParsedInvocation {
  /** The argv as given (without the leading `aws`). */
  argv: string[];
  /**
   * The argv the runner will execute: abbreviations expanded, `--opt=value` split. Same meaning as `argv`,
   * with no ambiguity left for the real CLI to resolve differently.
   */
  canonicalArgv: string[];
  /** `api`: calls AWS; `custom`: a CLI customization that calls AWS (s3 cp…); `no_api_call`: help, skeleton…; `local`: configure & co. */
  kind: 'api' | 'custom' | 'no_api_call' | 'local';
  /** CLI command as typed (`s3api`, `s3`, `ec2`…). */
  command: string;
  /** CLI sub-command as typed (`list-objects-v2`, `cp`, `wait`…), null for none. */
  subcommand: string | null;
  /** botocore service name (`s3`, `ec2`, `codedeploy`), null when no API call. */
  service: string | null;
  /** API operation name (`ListObjectsV2`), null when no API call. For customizations: the main operation. */
  operation: string | null;
  /** Every API operation the command may call, in order. */
  apiCalls: string[];
  /** API parameters (API member names), after --cli-input-json merge and value decoding. */
  params: Record<string, unknown>;
  /** CLI-only arguments (no API member; e.g. `ec2 authorize-security-group-ingress --cidr`), decoded, by CLI name. */
  cliArgs?: Record<string, unknown>;
  /** Global options, canonical names without dashes (`region`, `output`, `query`, `endpoint-url`…). */
  globals: Record<string, string | boolean>;
  /** Region the call targets (from --region or the context). */
  region: string;
  /** What IAM must allow: action → resources. The session policy is built from this, never wider. */
  permissions: Permission[];
  /** Unique actions of `permissions`, sorted. */
  actions: string[];
  /** Unique resources of `permissions`, sorted (without `*`). */
  resources: string[];
  /** Access level of each action (from the Service Authorization Reference). */
  accessLevels: Record<string, AccessLevel>;
  risks: RiskSignal[];
  files: LocalFile[];
  /** Human-readable notes explaining non-obvious mappings. */
  notes: string[];
}
