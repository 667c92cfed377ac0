/**
 * What to do about a missing or rejected credential depends on where it came from: a person runs
 * `guard-aws login`; a CI job or agent cannot, it fixes the token it was given. One place for that advice, so every
 * command says the same thing.
 */
export function credentialHint(env: NodeJS.ProcessEnv): string {
  if (env.GUARD_AWS_TOKEN) {
    return 'check GUARD_AWS_TOKEN: it must be a current token from the identity provider the broker trusts, for the broker\'s audience (a job without a person cannot use `guard-aws login`)';
  }
  if (env.GUARD_AWS_TOKEN_FILE) {
    return `check the token in GUARD_AWS_TOKEN_FILE=${env.GUARD_AWS_TOKEN_FILE}: it must be current, from the identity provider the broker trusts, for the broker's audience`;
  }
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL) {
    return 'check that the broker trusts GitHub\'s issuer and that its requiredClaims admit this repository (docs/broker-config.md)';
  }
  return 'run `guard-aws login`';
}

/** The broker's 401 codes (RFC 6750 §3.1) as a reason, without repeating the broker's own advice. */
export function rejectionReason(code: string | undefined): string {
  switch (code) {
    case 'token_expired':
      return 'the token has expired';
    case 'unauthorized':
      return 'no token was sent';
    default:
      return 'the token was rejected';
  }
}
