import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { GuardError } from '../errors.js';
import type { IssuedCredentials } from '../api/types.js';
import type { TargetConfig } from './config.js';

/** The part of an STS client the broker uses (an `STSClient` satisfies it). */
export interface StsLike {
  send(command: AssumeRoleCommand): Promise<{
    // As the SDK types it (AssumeRoleCommandOutput): every field may be missing or undefined; sts.ts checks each.
    Credentials?:
      | { AccessKeyId?: string | undefined; SecretAccessKey?: string | undefined; SessionToken?: string | undefined; Expiration?: Date | undefined }
      | undefined;
  }>;
  destroy?(): void;
}

export type StsClientFactory = (target: TargetConfig) => StsLike;

/**
 * Default: one SDK client per target, using the broker's own AWS credentials from the SDK's default chain.
 * The endpoint is only ever the one in the broker's config (tests point it at moto_server); callers cannot
 * choose it.
 */
export const defaultStsClientFactory: StsClientFactory = (target) =>
  new STSClient({ region: target.region, ...(target.endpoint ? { endpoint: target.endpoint } : {}) });

// RoleSessionName and SourceIdentity: pattern [\w+=,.@-]*, 2–64 characters (STS API reference, AssumeRole).
const STS_NAME_CHARS = /[^A-Za-z0-9_+=,.@-]/g;

/** Maps any caller identifier onto STS's allowed characters, keeping it recognisable in CloudTrail. */
export function stsSafe(value: string, maxLength: number): string {
  let s = value.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(STS_NAME_CHARS, '-');
  s = s.slice(0, maxLength);
  // Minimum length 2; an empty or one-character subject still yields a valid, recognisable name.
  if (s.length < 2) s = `u-${s}`.slice(0, Math.max(2, maxLength));
  return s;
}

/**
 * RoleSessionName: the caller first (CloudTrail's `userIdentity.arn` shows it), then the grant id. The grant id
 * makes the session ARN unguessable before the grant exists, so nobody can pre-write a resource policy naming
 * that session principal — resource-based grants to a session ARN are not limited by session policies (IAM
 * User Guide, "Session policies"; docs/aws-cli-parsing.md §6.1 vector 22).
 */
export function roleSessionName(subject: string, grantId: string): string {
  const suffix = `.${stsSafe(grantId, 40)}`;
  return `${stsSafe(subject, 64 - suffix.length)}${suffix}`;
}

/**
 * SourceIdentity: the caller, unchangeable for the life of the session and any role chained from it, and logged
 * by CloudTrail (IAM User Guide, "Monitor and control actions taken with assumed roles"). STS refuses values
 * starting with `aws:`; `:` is outside the allowed characters, so a sanitised value never does.
 */
export function sourceIdentity(subject: string): string {
  return stsSafe(subject, 64);
}

export interface AssumeInput {
  target: TargetConfig;
  grantId: string;
  subject: string;
  policy: string;
  durationSeconds: number;
}

export interface AssumeResult {
  credentials: IssuedCredentials;
  roleSessionName: string;
  sourceIdentity: string;
}

/** Calls AssumeRole. STS failures become GuardError `internal` with the STS error name only (no secrets). */
export async function assumeRoleForGrant(sts: StsLike, input: AssumeInput): Promise<AssumeResult> {
  const name = roleSessionName(input.subject, input.grantId);
  const source = sourceIdentity(input.subject);
  let out: Awaited<ReturnType<StsLike['send']>>;
  try {
    out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: input.target.roleArn,
        RoleSessionName: name,
        SourceIdentity: source,
        Policy: input.policy,
        DurationSeconds: input.durationSeconds,
        // Session tags carry the grant id into CloudTrail and into policy conditions (aws:PrincipalTag).
        Tags: [{ Key: 'guard-aws:grant', Value: input.grantId }],
        ...(input.target.externalId ? { ExternalId: input.target.externalId } : {}),
      }),
    );
  } catch (e) {
    const errName = (e as { name?: string }).name ?? 'Error';
    if (errName === 'PackedPolicyTooLargeException' || errName === 'PackedPolicyTooLarge') {
      // STS packs the policy and tags; a plaintext policy under 2,048 characters can still be too large packed.
      throw new GuardError('policy_too_large', 'the session policy for this call is too large for AWS once packed; split the call into smaller ones', { cause: e });
    }
    throw new GuardError('internal', `STS AssumeRole on target ${input.target.name} failed: ${errName}`, {
      cause: e,
      details: { stsError: errName },
    });
  }
  const c = out.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
    throw new GuardError('internal', `STS AssumeRole on target ${input.target.name} returned no credentials`);
  }
  return {
    credentials: {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration.toISOString(),
    },
    roleSessionName: name,
    sourceIdentity: source,
  };
}
