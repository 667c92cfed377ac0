/**
 * The argv an approver is shown and the store keeps: the canonical argv with the values of secret-bearing
 * options replaced, because approval requests are listed, sent to webhooks and stored — places a secret must
 * never reach (the binding hash still covers the real values). The broker can inject a model-driven masker
 * (botocore marks such members `sensitive`); this default covers the options the AWS CLI commonly takes secrets
 * in.
 */
const SECRET_OPTION =
  /^--(?:secret-string|secret-binary|password|[a-z-]*-password|private-key|[a-z-]*-private-key|secret-access-key|session-token|auth-token|sse-c-key|sse-c-copy-source-key|sse-customer-key|copy-source-sse-customer-key|plaintext|value|key-material|tde-credential-password|secret-key)$/;

export const MASK = '****';

export function maskArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0 && SECRET_OPTION.test(a.slice(0, eq))) {
      out.push(`${a.slice(0, eq)}=${MASK}`);
      continue;
    }
    out.push(a);
    // Every option in the list takes a value, and the canonical argv puts it in the next token — whatever it looks like.
    if (SECRET_OPTION.test(a) && i + 1 < argv.length) {
      out.push(MASK);
      i++;
    }
  }
  return out;
}
