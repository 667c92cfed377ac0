import { describe, expect, it } from 'vitest';
import { MASK, SECRET_OPTIONS, maskArgv } from '../../src/masking/argv.js';
import { MASK as OUTPUT_MASK } from '../../src/masking/rules.js';

describe('maskArgv', () => {
  it('masks the value of every listed secret option, in both --opt value and --opt=value forms', () => {
    for (const opt of Object.keys(SECRET_OPTIONS)) {
      expect(maskArgv(['svc', 'op', opt, 'hunter2'])).toEqual(['svc', 'op', opt, MASK]);
      expect(maskArgv(['svc', 'op', `${opt}=hunter2`])).toEqual(['svc', 'op', `${opt}=${MASK}`]);
    }
  });

  it('masks options secret by name shape but keeps identifiers and pagination tokens', () => {
    expect(maskArgv(['rds', 'create-db-instance', '--tde-credential-password', 'p@ss', '--db-instance-identifier', 'db1'])).toEqual([
      'rds', 'create-db-instance', '--tde-credential-password', MASK, '--db-instance-identifier', 'db1',
    ]);
    const keep = ['secretsmanager', 'get-secret-value', '--secret-id', 'prod/db', '--next-token', 'abc', '--client-request-token', 'tok'];
    expect(maskArgv(keep)).toEqual(keep);
    expect(maskArgv(['ec2', 'bundle-instance', '--owner-akid', 'AKIAEXAMPLE', '--owner-sak', 'wJalrXUtnFEMI/K7MDENG'])).toEqual([
      'ec2', 'bundle-instance', '--owner-akid', 'AKIAEXAMPLE', '--owner-sak', MASK,
    ]);
  });

  it('keeps file:// references (the secret is in the file, not the argv)', () => {
    const argv = ['secretsmanager', 'put-secret-value', '--secret-id', 's', '--secret-string', 'file://secret.txt'];
    expect(maskArgv(argv)).toEqual(argv);
  });

  it('masks secret keys inside inline --cli-input-json, JSON values and shorthand, leaving the rest', () => {
    const cij = maskArgv(['secretsmanager', 'create-secret', '--cli-input-json', '{"Name":"db","SecretString":"s3cr3t"}']);
    expect(cij[3]).toBe(`{"Name":"db","SecretString":"${MASK}"}`);
    expect(maskArgv(['x', 'y', '--cli-input-json', 'not json s3cr3t'])[3]).toBe(MASK);
    expect(maskArgv(['rds', 'x', '--master-user-secret', 'KmsKeyId=k,Password=s3cr3t'])[3]).toBe(`KmsKeyId=k,Password=${MASK}`);
    expect(maskArgv(['cognito-idp', 'initiate-auth', '--auth-flow', 'USER_PASSWORD_AUTH', '--auth-parameters', 'USERNAME=bob,PASSWORD=pw'])[5]).toBe(MASK);
    const noSecret = ['dynamodb', 'put-item', '--item', '{ "id": {"S": "1"} }'];
    expect(maskArgv(noSecret)).toEqual(noSecret);
  });

  it('is idempotent, so client and broker copies compare equal after masking both', () => {
    const argv = ['secretsmanager', 'create-secret', '--name', 'n', '--secret-string', 'x', '--cli-input-json', '{"SecretString":"y"}', '--password=z'];
    const once = maskArgv(argv);
    expect(maskArgv(once)).toEqual(once);
    expect(once.join(' ')).not.toMatch(/"y"|=z| x /);
  });

  it('masks with the one token the output masker uses, and re-masks the former `****` to it', () => {
    expect(MASK).toBe(OUTPUT_MASK);
    expect(MASK).toBe('<masked>');
    const argv = ['rds', 'create-db-instance', '--master-user-password', 'pw', '--cli-input-json', '{"MasterUserPassword":"pw2"}', '--tags', 'Key=password,Value=v,Password=pw3'];
    const now = maskArgv(argv);
    expect(now).toEqual(['rds', 'create-db-instance', '--master-user-password', '<masked>', '--cli-input-json', '{"MasterUserPassword":"<masked>"}', '--tags', 'Key=password,Value=v,Password=<masked>']);
    // A grant or transcript masked by an earlier release (`****`) compares equal after masking again.
    const earlier = ['rds', 'create-db-instance', '--master-user-password', '****', '--cli-input-json', '{"MasterUserPassword":"****"}', '--tags', 'Key=password,Value=v,Password=****'];
    expect(maskArgv(earlier)).toEqual(now);
  });
});
