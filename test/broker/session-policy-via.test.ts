import { describe, expect, it } from 'vitest';
import { buildSessionPolicy } from '../../src/broker/session-policy.js';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

// Found in review: `s3 cp --sse aws:kms` gave the session kms:GenerateDataKey on every key of the account, usable
// directly for 15 minutes. S3 asks KMS on the caller's behalf, so the session may use the key only through S3.
const ctx = { account: '123456789012', region: 'eu-west-1', cwd: '/w', env: { HOME: '/h' } };
type Stmt = { Action: string | string[]; Resource: string | string[]; Condition?: Record<string, Record<string, unknown>> };

describe('KMS permissions that S3 exercises for the caller', () => {
  it('are allowed only via S3 in the session policy', () => {
    const inv = parseInvocation(['s3', 'cp', '/etc/hosts', 's3://b/k', '--sse', 'aws:kms'], ctx);
    const kms = inv.permissions.find((p) => p.action === 'kms:GenerateDataKey')!;
    expect(kms.viaService).toBe('s3.eu-west-1.amazonaws.com');
    const policy = JSON.parse(buildSessionPolicy(inv.permissions, { resourceAccounts: ['123456789012'], invocation: null })) as { Statement: Stmt[] };
    const st = policy.Statement.filter((s) => [s.Action].flat().includes('kms:GenerateDataKey'));
    expect(st).toHaveLength(1);
    expect(st[0]!.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
    // The S3 part keeps its own statement and account pin.
    const put = policy.Statement.find((s) => [s.Action].flat().includes('s3:PutObject'))!;
    expect(put.Condition).toEqual({ StringEquals: { 'aws:ResourceAccount': '123456789012' } });
  });
  it('a direct KMS call has no such condition (it is the caller’s own use, decided as such)', () => {
    const inv = parseInvocation(['kms', 'generate-data-key', '--key-id', 'alias/app', '--key-spec', 'AES_256'], ctx);
    expect(inv.permissions.every((p) => p.viaService === undefined)).toBe(true);
  });
  it('refuses a via-service mark on anything but a KMS permission', () => {
    expect(() =>
      buildSessionPolicy([{ action: 's3:GetObject', resources: ['arn:aws:s3:::b/k'], derived: true, viaService: 's3.eu-west-1.amazonaws.com' }], {
        resourceAccounts: ['123456789012'],
        invocation: null,
      }),
    ).toThrow(GuardError);
  });
});
