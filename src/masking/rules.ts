import { GuardError } from '../errors.js';
import type { MaskingRules } from '../policy/types.js';

/**
 * What a masked value is replaced with. Fixed text, so the replacement never reveals the secret's length; no
 * whitespace, so `--output text` columns (tab-separated) keep their count.
 */
export const MASK = '<masked>';

/**
 * Response fields whose values are secret, compared case-insensitively (AWS spells the same field
 * `SecretAccessKey` in STS and `secretAccessKey` in SSO). Sources: the botocore service models' output shapes
 * (sts Credentials, sso RoleCredentials, secretsmanager GetSecretValue, kms Decrypt/GenerateDataKey,
 * ecr/ecr-public/codeartifact GetAuthorizationToken, ec2 CreateKeyPair/GetPasswordData, iam
 * CreateServiceSpecificCredential, secretsmanager GetRandomPassword, redshift GetClusterCredentials,
 * cognito-identity GetCredentialsForIdentity, acm ExportCertificate, iot CreateKeysAndCertificate, cognito-idp
 * AuthenticationResult, sso-oidc CreateToken/RegisterClient). `NextToken`-style pagination fields are NOT here:
 * they are not secrets, and masking them would change ordinary output.
 */
export const SECRET_FIELDS: readonly string[] = [
  'SecretAccessKey',
  'SecretKey',
  'SessionToken',
  'SecretString',
  'SecretBinary',
  'SecretValue',
  'Password',
  'NewPassword',
  'OldPassword',
  'MasterUserPassword',
  'ServicePassword',
  'RandomPassword',
  'DbPassword',
  'AuthToken',
  'PasswordData',
  'PrivateKey',
  'KeyMaterial',
  'Plaintext',
  'PlaintextBlob',
  'authorizationToken',
  'AccessToken',
  'RefreshToken',
  'IdToken',
  'ClientSecret',
  'CertificatePrivateKey',
  'Passphrase',
];

/** Longest run of JSON whitespace accepted between a key, the colon and the value (bounds the carry-over). */
const WS = '[ \\t\\r\\n]{0,32}';

export type RuleAction =
  /** The match ends with the opening quote of a JSON string: keep the match, mask the string's content. */
  | { kind: 'jsonString' }
  /** Keep the match, mask the run of characters (from the class) that follows it. */
  | { kind: 'charset'; keepOpener: boolean; body: RegExp }
  /** Keep the BEGIN line, mask everything up to the END line (PEM). */
  | { kind: 'until'; end: RegExp; endMaxLen: number }
  /** Replace the last `tail` characters of the match (or the whole match when 0) with the mask. */
  | { kind: 'replace'; tail: number };

export interface Rule {
  name: string;
  /** Global regex (latin1 text: one character per byte) finding the rule's opener. */
  re: RegExp;
  /** Upper bound on the length of a match of `re`, so a chunk boundary can never hide one. */
  maxLen: number;
  action: RuleAction;
  /**
   * Characters every match contains (one of them). When none occurs from the scan position on, the rule cannot
   * match and its RegExp is not run. Single characters only: String#indexOf of one character is a memchr and
   * far faster than a RegExp scan, while for a short multi-character literal V8 falls back to a linear search
   * that was measured 10× slower than the RegExp on base64-heavy output (issue 14, bench/masking.mjs).
   */
  anchors?: readonly string[];
  /** Every match begins with one of `anchors`, so the RegExp may start at the first one found. */
  anchoredAtStart?: boolean;
}

export interface CompiledMasking {
  rules: Rule[];
  /** Exact secret values (and their URL-encoded forms) masked wherever they appear. */
  literals: string[];
  /** Characters held back at the end of each chunk; ≥ the longest possible match. */
  carry: number;
}

export interface MaskingInput {
  /** Extra field names and patterns from policy files. */
  rules?: Partial<MaskingRules> | undefined;
  /** Values known to be secret (e.g. the session credentials this run was given). */
  knownSecrets?: string[];
  /** Extra field names for this invocation only (e.g. `Value` for SSM reads). */
  contextFields?: string[];
  /**
   * Lower-cased field name → enum values members of that name take in the service models
   * (data/sensitive-outputs.json `fieldEnums`): `"AccessToken": "hours"` (Cognito `TokenValidityUnits`) is a
   * constant from the public model, not a token, and stays readable.
   */
  fieldEnums?: Record<string, string[]>;
}

const BASE64 = /[^A-Za-z0-9/+=]/g;
const BASE64URL = /[^A-Za-z0-9_=-]/g;
const URLVALUE = /[^A-Za-z0-9%._~+/=-]/g;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Custom patterns from policy files are matched against raw output bytes; keep them to ASCII. */
const CUSTOM_MAX_LEN = 4096;

/**
 * `"Field" : "` for any of `fields`; when `except` is given, not when the string is exactly one of those values.
 * The look-ahead reads past the match, so maxLen covers it too (a chunk boundary can never hide the value).
 */
function fieldRule(name: string, fields: string[], except: string[] = []): Rule {
  const alt = [...new Set(fields)].sort((a, b) => b.length - a.length).map(escapeRe).join('|');
  const longest = Math.max(...fields.map((f) => f.length));
  const ahead = except.length ? `(?!(?:${except.map(escapeRe).join('|')})")` : '';
  return {
    name,
    re: new RegExp(`"(?:${alt})"${WS}:${WS}"${ahead}`, 'gi'),
    maxLen: longest + 2 + 32 + 1 + 32 + 1 + (except.length ? Math.max(...except.map((e) => e.length)) + 1 : 0),
    action: { kind: 'jsonString' },
    anchors: ['"'],
    anchoredAtStart: true,
  };
}

/** The secret field rules: one per distinct set of enum exceptions (most fields have none). */
function fieldRules(fields: string[], enums: Record<string, string[]>): Rule[] {
  const groups = new Map<string, { fields: string[]; except: string[] }>();
  for (const f of fields) {
    const values = Object.hasOwn(enums, f.toLowerCase()) ? [...enums[f.toLowerCase()]!].filter((v) => /^[\x20-\x7e]{1,64}$/.test(v)).sort() : [];
    const key = JSON.stringify(values);
    const g = groups.get(key) ?? { fields: [], except: values };
    g.fields.push(f);
    groups.set(key, g);
  }
  return [...groups.values()].map((g, i) => fieldRule(i === 0 ? 'json-field' : `json-field-${i}`, g.fields, g.except));
}

function validateFieldName(f: string): void {
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(f)) {
    throw new GuardError('policy_invalid', `masking field ${JSON.stringify(f)} is not a plain field name (letters, digits, _ . -)`);
  }
}

function compileCustom(src: string, index: number): Rule {
  if (!/^[\x20-\x7e]*$/.test(src) || src.length === 0) {
    throw new GuardError('policy_invalid', `masking pattern #${index + 1} must be non-empty printable ASCII (it is matched against output bytes)`);
  }
  let re: RegExp;
  try {
    re = new RegExp(src, 'g');
  } catch (e) {
    throw new GuardError('policy_invalid', `masking pattern #${index + 1} is not a valid regular expression: ${(e as Error).message}`);
  }
  if (re.test('')) {
    throw new GuardError('policy_invalid', `masking pattern #${index + 1} matches the empty string`);
  }
  re.lastIndex = 0;
  return { name: `custom#${index + 1}`, re, maxLen: CUSTOM_MAX_LEN, action: { kind: 'replace', tail: 0 } };
}

/**
 * Builds the rule set: built-in secret fields and patterns, the policy files' additions, and known values.
 * Throws GuardError('policy_invalid') naming a bad custom field or pattern.
 */
export function compileMasking(input: MaskingInput = {}): CompiledMasking {
  const customFields = input.rules?.fields ?? [];
  customFields.forEach(validateFieldName);
  const fields = [...SECRET_FIELDS, ...customFields];
  const rules: Rule[] = [
    ...fieldRules(fields, input.fieldEnums ?? {}),
    // SSM: a SecureString's Value is the decrypted secret (with --with-decryption) or its ciphertext. AWS and
    // the CLI print Type before Value, so the opener is bounded.
    {
      name: 'ssm-securestring',
      re: new RegExp(`"Type"${WS}:${WS}"SecureString"${WS},${WS}"Value"${WS}:${WS}"`, 'g'),
      maxLen: 40 + 6 * 32,
      action: { kind: 'jsonString' },
    },
    // PEM private keys (RFC 7468 §10/§11 labels, plus OpenSSH's "OPENSSH PRIVATE KEY").
    {
      name: 'pem-private-key',
      re: /-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----/g,
      maxLen: 80,
      action: { kind: 'until', end: /-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----/g, endMaxLen: 80 },
    },
    // An access key id followed closely by a 40-character secret (text output of create-access-key, CSV
    // credential files, env dumps): the secret is masked, the key id (an identifier, not a secret) is kept.
    {
      name: 'access-key-secret',
      re: /(?:AKIA|ASIA)(?<![A-Z0-9](?:AKIA|ASIA))[A-Z0-9]{16}(?![A-Z0-9])[^]{0,200}?(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g,
      maxLen: 20 + 200 + 40,
      action: { kind: 'replace', tail: 40 },
    },
    // Credential-file and environment spellings: aws_secret_access_key = …, AWS_SESSION_TOKEN=…
    {
      name: 'credential-assignment',
      re: /aws_(?<![A-Za-z0-9_]aws_)(?:secret_access_key|session_token|security_token)[ \t]{0,8}[=:][ \t]{0,8}["']?/gi,
      maxLen: 60,
      action: { kind: 'charset', keepOpener: true, body: BASE64 },
      // Every spelling of aws_secret_access_key & co. contains an underscore.
      anchors: ['_'],
    },
    // STS session tokens by their fixed binary prefixes ("\x17\n\x06\x65\x72/aws…", "!\n\torigin_ec…", the
    // AWS documentation example).
    {
      name: 'session-token',
      re: /(?:FwoGZXIvYXdzE|FQoGZXIvYXdzE|IQoJb3JpZ2luX2Vj|AQoDYXdzE|AQoEXAMPLE)(?<![A-Za-z0-9/+=](?:FwoGZXIvYXdzE|FQoGZXIvYXdzE|IQoJb3JpZ2luX2Vj|AQoDYXdzE|AQoEXAMPLE))/g,
      maxLen: 16,
      action: { kind: 'charset', keepOpener: false, body: BASE64 },
    },
    // Query-string auth (presigned URLs, `rds generate-db-auth-token`, `s3 presign`): the signature and the
    // session token are the bearer material; X-Amz-Credential / AWSAccessKeyId only name the key id. SigV2
    // (`…&Signature=<base64>`, `s3 presign` on path-style endpoints) and SigV4 (`X-Amz-Signature`), in
    // either spelling. Each regex begins with a literal shared by all spellings and checks what precedes it with
    // a look-behind placed after the literal, so V8 scans for the literal at full speed.
    {
      name: 'query-signature',
      re: /ignature=(?<=(?:[?&]S|X-Amz-S|x-amz-s)ignature=)/g,
      maxLen: 9,
      action: { kind: 'charset', keepOpener: true, body: URLVALUE },
    },
    {
      name: 'query-security-token',
      re: /ecurity-(?:Token|token)=(?<=(?:X-Amz-S|x-amz-s)ecurity-(?:Token|token)=)/g,
      maxLen: 14,
      action: { kind: 'charset', keepOpener: true, body: URLVALUE },
    },
    // `eks get-token`: the bearer token is a base64url presigned STS URL behind this prefix.
    { name: 'eks-token', re: /k8s-aws-v1\./g, maxLen: 11, action: { kind: 'charset', keepOpener: true, body: BASE64URL } },
  ];
  if (input.contextFields?.length) {
    input.contextFields.forEach(validateFieldName);
    rules.push(fieldRule('context-field', input.contextFields));
  }
  (input.rules?.patterns ?? []).forEach((p, i) => rules.push(compileCustom(p, i)));

  const literals = new Set<string>();
  for (const v of input.knownSecrets ?? []) {
    // Short values would mask ordinary words; real credentials are 40+ characters.
    if (typeof v !== 'string' || v.length < 8) continue;
    // Output is scanned as latin1 (one character per byte), so literals are converted to their UTF-8 bytes.
    for (const form of [v, encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]) {
      literals.add(Buffer.from(form, 'utf8').toString('latin1'));
    }
  }
  const lits = [...literals].sort((a, b) => b.length - a.length);
  const carry = Math.max(256, ...rules.map((r) => r.maxLen), ...lits.map((l) => l.length)) + 1;
  return { rules, literals: lits, carry };
}
