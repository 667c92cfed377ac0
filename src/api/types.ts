/**
 * The broker's HTTP API shapes (JSON over /v1/…), shared by client and broker. The OpenAPI document in
 * docs/openapi.yaml describes the same shapes; the broker validates every body with zod schemas built
 * from these.
 */
import type { BrokerErrorCode } from './errors.js';

/** GET /v1/config — what a client needs to log in and pick a target. No authentication. */
export interface BrokerConfigResponse {
  issuer: string;
  clientId: string;
  /** Audience the broker expects in access tokens (and for workload tokens). */
  audience: string;
  /** Claim the broker reads groups from (default `groups`); lets `whoami` show the groups the broker will see. */
  groupsClaim?: string;
  targets: { name: string; account: string; region: string; default: boolean }[];
  version: string;
}

/** POST /v1/grants — ask for credentials scoped to exactly one invocation. */
export interface GrantRequest {
  argv: string[];
  /**
   * The AWS CLI release that will run the call (`2.31.4`, from its `aws --version`). The broker reads the argv
   * with the command table for that release (docs/aws-cli-parsing.md §6.3) and refuses a release it has no
   * table for. Omitted by older clients: read as AWS CLI v1 with the broker's v1 table.
   */
  cliVersion?: string;
  /** Target name; omitted = the broker's default target. */
  target?: string;
  /** Contents of local files the invocation reads (file://, --cli-input-json), so the broker sees them too. */
  files?: Record<string, string>;
  /**
   * Binary files sent as their digest only (a whole `fileb://` value of a blob parameter, too large for `files`):
   * the broker decides on a stand-in, and the run must use bytes with this digest (uploaded as an input for a run
   * on the broker, checked before aws starts; pinned by the client for a local run).
   */
  blobs?: Record<string, { sha256: string; size: number }>;
  /** Ed25519 public key (base64url raw 32 bytes) the client will sign this run's transcript with. */
  transcriptKey: string;
  /** An approval id when re-running an approved call. */
  approvalId?: string;
  /** The requester's reason, when an approval is needed. */
  reason?: string;
  /** The caller's working directory, so relative file:// paths name the same files as on the caller's side. */
  cwd?: string;
  /** The caller's home directory, for `~` in file:// paths (the broker expands nothing else of the caller's). */
  home?: string;
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
}

export interface GrantResponse {
  grantId: string;
  credentials: IssuedCredentials;
  region: string;
  target: string;
  decision: 'allow' | 'approve';
  rule: string | null;
  /** The session policy sent to STS (for transparency; contains no secret). */
  sessionPolicy: string;
  approvalId?: string;
  /**
   * Only for targets whose config names an endpoint (tests against moto_server): the runner passes it to aws
   * itself. A caller can never choose it.
   */
  endpoint?: string;
  /** Canonical argv the broker decided on; the runner executes exactly this. */
  argv: string[];
  /** The AWS CLI release whose command table the broker read the argv with (`2.9.19`). */
  cliTable?: string;
  /** Masking rules from the broker's policy files, applied by the runner on top of the built-in ones. */
  masking?: { fields: string[]; patterns: string[] };
  /** The verified caller, as the broker saw it (for the transcript). */
  caller?: { subject: string; groups: string[] };
}

/** POST /v1/runs — a grant request, plus what a run on the broker needs. */
export interface RunRequest extends Omit<GrantRequest, 'transcriptKey' | 'files'> {
  /** Needed only when the broker lets the call run locally (it then answers with a grant). */
  transcriptKey?: string;
  /** Files the invocation reads, as exact bytes (base64): a run on the broker writes these bytes. */
  fileData?: Record<string, string>;
  files?: Record<string, string>;
  /** True when the caller will send stdin (POST /v1/runs/{id}/stdin). */
  stdin?: boolean;
}

/** POST /v1/runs — where the broker decided the call runs. Never credentials for `broker`. */
export type RunResponse =
  | { execution: 'local'; reasons: string[]; grant: GrantResponse }
  | {
      execution: 'broker';
      runId: string;
      grantId: string;
      decision: 'allow' | 'approve';
      rule: string | null;
      target: string;
      region: string;
      /** The canonical argv the broker decided on and runs. */
      argv: string[];
      cliTable?: string;
      approvalId?: string;
      /** Why the call runs on the broker (configured mode, session-policy analysis). */
      reasons: string[];
      /** argv token indexes of local files the caller uploads before start (PUT /v1/runs/{id}/inputs/{n}). */
      inputs?: number[];
      /** argv token indexes of local paths the call writes; they come back as file frames. */
      outputs?: { token: number; dir: boolean }[];
    };

/** Error body for every non-2xx answer. Never contains internals or secrets. */
export interface ErrorResponse {
  error: {
    /**
     * Stable code from the closed list in src/api/errors.ts (denied, approval_required, bad_request, …). A client
     * reads it through `wireCode()`, which also understands the codes older brokers wrote.
     */
    code: BrokerErrorCode;
    message: string;
    rule?: string | null;
    reason?: string;
    approval?: ApprovalSummary;
    /** For `approval_required`: who may approve and how many approvals are needed. */
    approvers?: { groups: string[]; count: number };
    /** For `bad_request`: the offending body field (`argv[2]`, `transcriptKey`). */
    field?: string;
  };
}

/**
 * One decoded API parameter as approvers are shown it (`ApprovalSummary.parameters`; src/approvals/parameters.ts).
 * The approval binds the full value (`bindingHash` covers every parameter); `sha256` pins it even when `value`
 * is cut.
 */
export interface ApprovalParameter {
  /** API member name (`UserData`, `IpPermissions`). */
  name: string;
  /**
   * The value as shown: decoded text, indented JSON for structures, `(binary, N bytes)`, or `<masked>` for a
   * secret-typed member. At most 4,000 characters (16,000 for all parameters together); see `truncated`.
   */
  value: string;
  /** How the value was decoded for display: `base64, decoded`, `base64 and gzip, decoded`, `base64, decoded: binary`. */
  encoding?: string;
  /** Where the value came from when the argv does not show it: `file /abs/path`, `--cli-input-json`. */
  source?: string;
  /** Size in bytes of the full value (decoded, when `encoding` is set). */
  bytes: number;
  /** SHA-256 (hex) of the full value as parsed: of the text for a string, of its canonical JSON otherwise. */
  sha256: string;
  /** A secret-typed member (a password, secret string, private key…): `value` is `<masked>`. */
  masked?: boolean;
  /** Secrets recognised inside the value (access keys, private keys, tokens) were replaced by `<masked>`. */
  secretsMasked?: boolean;
  /** `value` shows only the first part of the full value. */
  truncated?: boolean;
}

export interface ApprovalSummary {
  id: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'used' | 'withdrawn';
  requester: string;
  argv: string[];
  target: string;
  rule: string | null;
  reason: string;
  approverGroups: string[];
  required: number;
  /** Present when several approve rules matched: every one's quorum must be met (approvers from its groups). */
  requirements?: { groups: string[]; count: number }[];
  approvals: { by: string; at: string; comment?: string }[];
  denial?: { by: string; at: string; comment?: string };
  createdAt: string;
  /** Pending: when the request lapses. Approved: when the unused approval lapses. */
  expiresAt: string;
  /** Display name of the requester, when the token carried one. */
  requesterName?: string;
  /** The parsed call, as the broker decided it (argv above is the canonical argv, secret values masked). */
  region: string;
  service: string | null;
  operation: string | null;
  actions: string[];
  /** Action → resources, exactly what the session policy would allow. */
  permissions: { action: string; resources: string[] }[];
  resources: string[];
  risks: string[];
  /** The matching rule's reason and where it is written (`policies/default.yaml:42`). */
  ruleReason: string;
  ruleSource?: string;
  /** SHA-256 (hex) of the call binding: argv, target, requester, region, permissions, parameters. */
  bindingHash: string;
  /**
   * The call's decoded API parameters as the approver sees them (file:// contents, --cli-input-json members,
   * base64 user-data as text; secret-typed values masked). Absent on requests stored before this field existed.
   */
  parameters?: ApprovalParameter[];
  withdrawnAt?: string;
  usedAt?: string;
  grantId?: string;
  /** In answers to a signed-in caller: whether that caller may approve or deny this request now. */
  canDecide?: boolean;
  /** The request's page in the broker's web console (`<console.publicUrl>/ui/approvals/<id>`), when it has one. */
  url?: string;
}

/** POST /v1/approvals/:id/approve, /deny — body (optional). */
export interface ApprovalDecisionRequest {
  comment?: string;
}

/** GET /v1/approvals */
export interface ApprovalListResponse {
  approvals: ApprovalSummary[];
  /** Present when more requests follow: pass it back as `cursor` for the next page. */
  next?: string;
}
