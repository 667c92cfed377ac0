/**
 * Masks secret parameter values in an aws argv before it is written anywhere (transcript, spool, audit log,
 * grant record). Option names are matched exactly against a list with the reason each is secret, then by
 * name shape (`…password…`, `…private-key`, `…secret-string`…); structured values (JSON, shorthand
 * `Key=Value,…`) have the values of secret-named keys masked. Masking is idempotent: masking a masked argv
 * changes nothing, so the client's and the broker's copies can be compared after masking both.
 *
 * Values that name a file (`file://…`, `fileb://…`) are kept: they are paths, the secret is in the file,
 * which never enters the transcript.
 *
 * The replacement is the same `<masked>` the output masker writes (rules.ts). Argv masked by an older release
 * with `****` is masked again to `<masked>` (`****` is not the mask any more), so the broker's comparison of
 * a grant's argv with its transcript's, both masked again, still agrees across the change.
 */
import { MASK } from './rules.js';

export { MASK };

/** Options whose value is a secret, with the reason (AWS CLI reference / botocore `sensitive` shapes). */
export const SECRET_OPTIONS: Readonly<Record<string, string>> = {
  '--secret-string': 'secretsmanager create-secret/put-secret-value: the secret itself',
  '--secret-binary': 'secretsmanager create-secret/put-secret-value: the secret itself (binary)',
  '--password': 'many services (storagegateway, lightsail…): a password',
  '--master-user-password': 'rds/redshift/docdb create-*: the database master password',
  '--new-password': 'iam change-password, ds reset-user-password',
  '--old-password': 'iam change-password',
  '--secret-access-key': 'long-term AWS secret key in customisations (e.g. datasync, emr)',
  '--secret-key': 'datasync create-location-object-storage: the object store secret key',
  '--owner-sak': 'ec2 bundle-instance: the owner\'s AWS secret access key, given in argv',
  '--sse-c-key': 's3 cp/mv/sync: the customer-provided encryption key (SSE-C)',
  '--sse-c-copy-source-key': 's3 cp/mv/sync: the SSE-C key of the copy source',
  '--sse-customer-key': 's3api *-object: the customer-provided encryption key (SSE-C)',
  '--copy-source-sse-customer-key': 's3api copy-object/upload-part-copy: SSE-C key of the source',
  '--plaintext': 'kms encrypt: the data being protected',
  '--private-key': 'acm/iam import-certificate: the certificate\'s private key',
  '--passphrase': 'acm export-certificate: the passphrase protecting the exported key',
  '--client-secret': 'cognito/OIDC: an OAuth client secret',
  '--auth-parameters': 'cognito-idp initiate-auth: contains the user\'s password',
  '--challenge-responses': 'cognito-idp respond-to-auth-challenge: contains passwords/codes',
  '--access-token': 'cognito-idp & co: a bearer token',
  '--refresh-token': 'cognito-idp & co: a refresh token',
  '--session-token': 'a temporary credential\'s session token',
  '--authentication-token': 'workdocs & co: a bearer token',
  '--oauth-token': 'amplify create-app: a repository OAuth token',
  '--access-token-value': 'a bearer token',
  '--basic-auth-credentials': 'amplify: user:password for basic auth',
  '--api-key': 'a service API key',
  '--key-store-password': 'kms create-custom-key-store: the CloudHSM/KMS user password',
  '--trust-password': 'ds create-trust: the trust password',
  '--user-data': 'ec2 run-instances: boot scripts often carry secrets',
  '--cli-input-yaml': 'hides any parameter, secret ones included (masked whole unless a file:// path)',
};

/** Names that look secret by shape but are identifiers or pagination tokens, never secrets. */
const NOT_SECRET = new Set([
  '--secret-id',
  '--secret-arn',
  '--secret-name',
  '--next-token',
  '--starting-token',
  '--client-token',
  '--client-request-token',
  '--idempotency-token',
  '--password-reset-required',
  '--no-password-reset-required',
  '--access-token-arn',
]);

// Option or JSON/shorthand key names (kebab, camel or Pascal case, compared lower-case without separators)
// that hold secrets: passwords, private keys, secret strings/keys/hashes, bearer tokens, SSE-C keys.
const SECRET_KEY_SHAPE =
  /(password|passphrase|privatekey|secretstring|secretbinary|secretkey|secretaccesskey|clientsecret|sharedsecret|secrethash|ssecustomerkey|ssekey|sessiontoken|accesstoken|refreshtoken|authtoken|authenticationtoken|oauthtoken|apikey|^secret$|^sak$|^plaintext$)/;
const NOT_SECRET_KEYS = /^(nexttoken|startingtoken|clienttoken|clientrequesttoken|idempotencytoken|secretid|secretarn|secretname|passwordresetrequired|passwordlastused|passwordpolicy|.*arn)$/;

function flat(name: string): string {
  return name.replace(/^-+/, '').replace(/[-_]/g, '').toLowerCase();
}

/** True when an option's value is secret (by the list or by the shape of its name). */
export function isSecretOption(option: string): boolean {
  if (NOT_SECRET.has(option)) return false;
  if (Object.hasOwn(SECRET_OPTIONS, option)) return true;
  return isSecretKey(option);
}

/** True when a JSON / shorthand key (any case style) names a secret. */
export function isSecretKey(key: string): boolean {
  const f = flat(key);
  if (NOT_SECRET_KEYS.test(f)) return false;
  return SECRET_KEY_SHAPE.test(f);
}

function isFileRef(value: string): boolean {
  return /^fileb?:\/\//i.test(value.trimStart());
}

/** Masks the values of secret keys inside a JSON value; returns undefined when nothing needed masking. */
function maskJsonValue(v: unknown): { value: unknown; changed: boolean } {
  if (Array.isArray(v)) {
    let changed = false;
    const out = v.map((x) => {
      const r = maskJsonValue(x);
      changed ||= r.changed;
      return r.value;
    });
    return { value: out, changed };
  }
  if (v && typeof v === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (isSecretKey(k) && x !== MASK) {
        out[k] = MASK;
        changed = true;
      } else {
        const r = maskJsonValue(x);
        changed ||= r.changed;
        out[k] = r.value;
      }
    }
    return { value: out, changed };
  }
  return { value: v, changed: false };
}

// Shorthand syntax (`Key=Value,Key2=Value2`, also inside `{…}` and `[…]`): mask the value after a secret
// key up to the next separator.
const SHORTHAND_PAIR = /(^|[,{\[\s])([A-Za-z][A-Za-z0-9_-]*)=([^,}\]\s]*)/g;

/** Masks secrets inside one non-secret option's value (JSON or shorthand); other text is left unchanged. */
export function maskStructuredValue(value: string): string {
  if (isFileRef(value)) return value;
  const trimmed = value.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      const r = maskJsonValue(JSON.parse(trimmed));
      // Re-serialise only when something was masked, so argv without secrets stays byte-for-byte.
      if (r.changed) return JSON.stringify(r.value);
      return value;
    } catch {
      // not JSON: fall through to shorthand
    }
  }
  if (!value.includes('=')) return value;
  return value.replace(SHORTHAND_PAIR, (m, pre: string, key: string, val: string) =>
    isSecretKey(key) && val !== MASK ? `${pre}${key}=${MASK}` : m,
  );
}

/**
 * `ssm put-parameter --value`: the parameter's value, a secret when the type is SecureString — and a String
 * parameter may hold one too, so it is masked whatever the type. `--value` elsewhere (cloudwatch metrics…) is data.
 */
function isParameterPut(argv: readonly string[]): boolean {
  const words = argv.filter((a) => !a.startsWith('-'));
  return words.includes('ssm') && words.includes('put-parameter');
}

/**
 * Returns a copy of argv with secret values masked. Handles `--opt value` and `--opt=value`; inline
 * `--cli-input-json` has its secret keys masked (masked whole when it is not JSON).
 */
export function maskArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (!tok.startsWith('--')) {
      out.push(tok);
      continue;
    }
    const eq = tok.indexOf('=');
    const name = eq > 0 ? tok.slice(0, eq) : tok;
    const inline = eq > 0;
    const hasNext = !inline && i + 1 < argv.length && !argv[i + 1]!.startsWith('--');
    const value = inline ? tok.slice(eq + 1) : hasNext ? argv[i + 1]! : undefined;
    let masked = value;
    if (value !== undefined) {
      if (name === '--cli-input-json') {
        if (!isFileRef(value)) {
          try {
            const r = maskJsonValue(JSON.parse(value));
            masked = r.changed ? JSON.stringify(r.value) : value;
          } catch {
            masked = MASK;
          }
        }
      } else if (isSecretOption(name) || (name === '--value' && isParameterPut(argv))) {
        masked = isFileRef(value) ? value : MASK;
      } else {
        masked = maskStructuredValue(value);
      }
    }
    if (inline) out.push(`${name}=${masked}`);
    else {
      out.push(tok);
      if (hasNext) {
        out.push(masked!);
        i++;
      }
    }
  }
  return out;
}
