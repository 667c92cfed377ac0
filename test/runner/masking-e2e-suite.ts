import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, type Moto } from '../helpers/moto.js';
import { V1, plainAws, testClis, type TestCli } from '../helpers/aws.js';
import { MASK } from '../../src/masking/index.js';
import { run, scopedCredentials } from './helpers.js';
import type { ScopedCredentials } from '../../src/runner/index.js';

/**
 * Secrets in real aws output against real moto, in every output format of each CLI (json, text, table; v2 adds
 * yaml and yaml-stream), for AWS CLI v1 and v2 alike: on both the in-CLI plugin masks response fields (v2 loads
 * it through `cli_legacy_plugin_path`), the streaming masker the rest. The caller's stream and the transcript's
 * chunks must both be masked; the rest of the output must be what plain aws prints.
 *
 * One suite, run by masking-e2e.test.ts (v1) and masking-e2e-v2.test.ts (v2): two files, so the two CLIs' runs
 * are scheduled on different workers.
 */

export function maskingSuite(name: TestCli['name']): void {
  const selected = testClis().find((c) => c.name === name);
  if (!selected) {
    // Skipped only when GUARD_AWS_TEST_CLIS leaves this CLI out (e.g. a machine without a v2); CI runs both.
    test.skip(`aws ${name}: not selected by GUARD_AWS_TEST_CLIS`, () => {});
    return;
  }
  const which: TestCli = selected;
  const cli = which;

  let moto: Moto;
  let creds: ScopedCredentials;
  const SECRET_STRING = 'S3cr3t-Value-For-Masking-01';
  const SSM_SECRET = 'Db-Pass-For-Masking-02';
  const plain = (args: string[]) => plainAws(args, moto.endpoint, {}, cli);

  beforeAll(async () => {
    moto = await startMoto();
    creds = scopedCredentials(moto.endpoint);
    const setup = V1;
    for (const a of [
      ['secretsmanager', 'create-secret', '--name', 'app/db', '--secret-string', SECRET_STRING],
      ['ssm', 'put-parameter', '--name', '/app/db-pass', '--type', 'SecureString', '--value', SSM_SECRET],
      ['ssm', 'put-parameter', '--name', '/app/plain', '--type', 'String', '--value', 'not-a-secret'],
    ]) {
      const r = plainAws(a, moto.endpoint, {}, setup);
      if (r.status !== 0) throw new Error(`setup ${a.join(' ')}: ${r.stderr}`);
    }
  });

  afterAll(async () => {
    await moto?.stop();
  });

  async function guarded(argv: string[]) {
    const r = await run({ argv, credentials: creds, endpoint: moto.endpoint, cli });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.recorded.stdout).toBe(r.stdout);
    return r.stdout;
  }

  describe(`aws ${which.name}`, () => {
    // json, text and table on both; yaml and yaml-stream are v2's (awscli/formatter.py on the v2 branch).
    const FORMATS = which.major === 2 ? (['json', 'text', 'table', 'yaml', 'yaml-stream'] as const) : (['json', 'text', 'table'] as const);

    describe('Secrets Manager get-secret-value', () => {
      test.each(FORMATS)('--output %s', async (output) => {
        const argv = ['secretsmanager', 'get-secret-value', '--secret-id', 'app/db', '--output', output];
        const out = await guarded(argv);
        expect(out).not.toContain(SECRET_STRING);
        expect(out).toContain(MASK);
        expect(out).toContain('app/db');
        const p = plain(argv).stdout;
        expect(p).toContain(SECRET_STRING);
        // json and text: exactly plain aws's output with the value replaced by the mask. Table columns are sized
        // by the CLI from the (masked) values, so the table is as plain aws would draw it for the masked value.
        if (output !== 'table') expect(out).toBe(p.replaceAll(SECRET_STRING, MASK));
      });
      test('--query SecretString --output text prints only the mask', async () => {
        expect(await guarded(['secretsmanager', 'get-secret-value', '--secret-id', 'app/db', '--query', 'SecretString', '--output', 'text'])).toBe(`${MASK}\n`);
      });
    });

    describe('SSM get-parameter --with-decryption on a SecureString', () => {
      test.each(FORMATS)('--output %s', async (output) => {
        const argv = ['ssm', 'get-parameter', '--name', '/app/db-pass', '--with-decryption', '--output', output];
        const out = await guarded(argv);
        expect(out).not.toContain(SSM_SECRET);
        expect(out).toContain(MASK);
        const p = plain(argv).stdout;
        expect(p).toContain(SSM_SECRET);
        if (output !== 'table') expect(out).toBe(p.replaceAll(SSM_SECRET, MASK));
      });
      test('get-parameters mixing String and SecureString masks only the SecureString', async () => {
        const out = await guarded(['ssm', 'get-parameters', '--names', '/app/db-pass', '/app/plain', '--with-decryption', '--output', 'text']);
        expect(out).not.toContain(SSM_SECRET);
        expect(out).toContain('not-a-secret');
      });
    });

    describe('STS credentials', () => {
      function secretsOf(stdout: string): string[] {
        const j = JSON.parse(stdout) as { Credentials: { SecretAccessKey: string; SessionToken: string } };
        return [j.Credentials.SecretAccessKey, j.Credentials.SessionToken];
      }
      test.each(FORMATS)('assume-role --output %s', async (output) => {
        const args = ['sts', 'assume-role', '--role-arn', 'arn:aws:iam::123456789012:role/other', '--role-session-name', 'other-session'];
        // moto mints a fresh pair per call: the plain call shows what the pair looks like unmasked.
        expect(plain([...args, '--output', output]).stdout).toMatch(/[A-Za-z0-9/+=]{40,}/);
        const out = await guarded([...args, '--output', output]);
        expect(out).toMatch(/ASIA[A-Z0-9]{16}/); // the key id is an identifier, kept
        expect(out.split(MASK).length - 1).toBe(2);
        expect(out).not.toMatch(/[A-Za-z0-9/+=]{40,}/);
        if (output === 'json') {
          const c = JSON.parse(out).Credentials;
          expect([c.SecretAccessKey, c.SessionToken]).toEqual([MASK, MASK]);
        }
      });
      // Same masking path as assume-role; once per format on v1 keeps the v2 run short.
      (which.major === 1 ? test : test.skip).each(FORMATS)('get-session-token --output %s', async (output) => {
        const args = ['sts', 'get-session-token'];
        const [secret, token] = secretsOf(plain([...args, '--output', 'json']).stdout);
        const out = await guarded([...args, '--output', output]);
        expect(out).not.toContain(secret!);
        expect(out).not.toContain(token!.slice(0, 20));
        expect(out).toContain(MASK);
      });
    });

    describe('other secret-bearing responses', () => {
      test('KMS decrypt Plaintext, in json and text', async () => {
        // Set up with v1, which passes blob arguments as raw bytes (v2 expects base64 there): plaintext
        // "kms-plaintext-03" comes back base64-encoded from either CLI's decrypt.
        const v1 = (args: string[]) => plainAws(args, moto.endpoint, {}, V1);
        const key = JSON.parse(v1(['kms', 'create-key', '--output', 'json']).stdout).KeyMetadata.KeyId as string;
        const blob = v1(['kms', 'encrypt', '--key-id', key, '--plaintext', 'kms-plaintext-03', '--query', 'CiphertextBlob', '--output', 'text']).stdout.trim();
        const file = join(mkdtempSync(join(tmpdir(), 'guard-aws-kms-')), 'blob');
        writeFileSync(file, Buffer.from(blob, 'base64'));
        for (const output of ['json', 'text']) {
          const argv = ['kms', 'decrypt', '--ciphertext-blob', `fileb://${file}`, '--output', output];
          const p = plain(argv).stdout;
          expect(p).toContain('a21zLXBsYWludGV4dC0wMw==');
          const out = await guarded(argv);
          expect(out).toBe(p.replace('a21zLXBsYWludGV4dC0wMw==', MASK));
        }
      });

      test('ECR get-authorization-token and get-login-password', async () => {
        const p = plain(['ecr', 'get-authorization-token', '--output', 'json']);
        expect(p.status).toBe(0);
        const token = JSON.parse(p.stdout).authorizationData[0].authorizationToken as string;
        const out = await guarded(['ecr', 'get-authorization-token', '--output', 'text']);
        expect(out).not.toContain(token);
        expect(out).toContain(MASK);
        const pw = plain(['ecr', 'get-login-password']).stdout;
        expect(pw.length).toBeGreaterThan(8);
        expect(await guarded(['ecr', 'get-login-password'])).toBe(`${MASK}\n`);
      });

      test('RDS generate-db-auth-token (a presigned URL made locally) loses its signature and token', async () => {
        const out = await guarded(['rds', 'generate-db-auth-token', '--hostname', 'db.example.com', '--port', '5432', '--username', 'app']);
        expect(out).toContain('X-Amz-Signature=' + MASK);
        expect(out).toContain('X-Amz-Security-Token=' + MASK);
        expect(out).not.toContain(encodeURIComponent(creds.sessionToken).slice(0, 20));
      });

      test('s3 presign URLs lose their signature and session token', async () => {
        const out = await guarded(['s3', 'presign', 's3://any-bucket/report.csv', '--expires-in', '60']);
        expect(out).toMatch(/^https?:\/\/.*report\.csv\?/);
        // SigV4 (X-Amz-Signature, X-Amz-Security-Token) or, for path-style endpoints, SigV2 (Signature,
        // x-amz-security-token): either way both values are masked.
        expect(out).toMatch(/Signature=<masked>/);
        expect(out).toMatch(/security-token=<masked>/i);
        expect(out).not.toMatch(/Signature=(?!<masked>)/);
        expect(out).not.toMatch(/security-token=(?!<masked>)/i);
      });

      test('extra field names from policy files mask in every format (the in-CLI layer)', async () => {
        for (const output of FORMATS) {
          const r = await run({
            cli,
            argv: ['ssm', 'get-parameter', '--name', '/app/plain', '--output', output],
            credentials: creds,
            endpoint: moto.endpoint,
            masking: { fields: ['Value'], patterns: [] },
          });
          expect(r.exitCode).toBe(0);
          expect(r.stdout).not.toContain('not-a-secret');
          expect(r.stdout).toContain(MASK);
        }
      });

      test('custom patterns mask aws output and stderr', async () => {
        const r = await run({
          cli,
          argv: ['ssm', 'get-parameter', '--name', '/app/plain', '--output', 'text'],
          credentials: creds,
          endpoint: moto.endpoint,
          masking: { fields: [], patterns: ['not-a-[a-z]+'] },
        });
        expect(r.stdout).not.toContain('not-a-secret');
        const e = await run({
          cli,
          argv: ['ssm', 'get-parameter', '--name', '/app/no-such-not-a-thing'],
          credentials: creds,
          endpoint: moto.endpoint,
          masking: { fields: [], patterns: ['not-a-[a-z]+'] },
        });
        expect(e.exitCode).not.toBe(0);
        expect(e.stderr).toContain(MASK);
        expect(e.stderr).not.toContain('not-a-thing');
        expect(e.recorded.stderr).toBe(e.stderr);
      });

      test('the run\'s own credentials never appear in output', async () => {
        // A secret whose value IS the session's secret key: masked as a known value even though nothing else says so.
        plain(['secretsmanager', 'create-secret', '--name', 'echo', '--secret-string', 'x', '--description', creds.secretAccessKey]);
        const out = await guarded(['secretsmanager', 'describe-secret', '--secret-id', 'echo', '--output', 'text']);
        expect(out).not.toContain(creds.secretAccessKey);
        expect(out).toContain(MASK);
      });
    });
  });
}
