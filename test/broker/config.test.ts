import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerConfigFrom, loadBrokerConfig, parseBrokerConfig, pickTarget } from '../../src/broker/config.js';
import { GuardError } from '../../src/errors.js';

const GOOD = `issuer: https://idp.example.com
audience: guard-aws
clientId: guard-aws-cli
policies: [policies/default.yaml]
storage:
  sqlite: state/broker.db
targets:
  - name: dev
    roleArn: arn:aws:iam::111122223333:role/guard-dev
    region: eu-west-1
  - name: prod
    roleArn: arn:aws:iam::444455556666:role/ops/guard-prod
    region: us-east-1
    externalId: guard-aws-prod
`;

function err(text: string, file = '/etc/guard/broker.yaml'): GuardError {
  try {
    parseBrokerConfig(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(GuardError);
    return e as GuardError;
  }
  throw new Error('expected an error');
}

describe('broker config', () => {
  it('applies defaults, derives accounts, picks the first target as default, resolves paths against the file', () => {
    const c = parseBrokerConfig(GOOD, '/etc/guard/broker.yaml');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8740 });
    expect(c.sessionDurationSec).toBe(900);
    expect(c.groupsClaim).toBe('groups');
    expect(c.algorithms).toEqual(['RS256', 'ES256', 'EdDSA']);
    expect(c.maxBodyBytes).toBe(256 * 1024);
    expect(c.policies).toEqual(['/etc/guard/policies/default.yaml']);
    expect(c.storage.sqlite).toBe('/etc/guard/state/broker.db');
    expect(c.targets.map((t) => [t.name, t.account, t.default])).toEqual([
      ['dev', '111122223333', true],
      ['prod', '444455556666', false],
    ]);
    expect(pickTarget(c, undefined)?.name).toBe('dev');
    expect(pickTarget(c, 'prod')?.externalId).toBe('guard-aws-prod');
    expect(pickTarget(c, 'nope')).toBeUndefined();
  });

  it('the shipped example is valid', () => {
    const c = loadBrokerConfig(resolve(__dirname, '../../examples/broker.yaml'));
    expect(c.targets.length).toBeGreaterThan(0);
  });

  const cases: [string, string, RegExp][] = [
    ['bad role ARN', GOOD.replace('role/guard-dev', 'user/guard-dev'), /^\/etc\/guard\/broker\.yaml:9:14: targets\[0\]\.roleArn: must be an IAM role ARN/],
    ['unknown key', GOOD.replace('audience:', 'audiance: x\naudience:'), /^\/etc\/guard\/broker\.yaml:2:1: audiance: Unrecognized key/],
    ['missing key', GOOD.replace('clientId: guard-aws-cli\n', ''), /^\/etc\/guard\/broker\.yaml:1:1: clientId: /],
    ['duration too short', `${GOOD}sessionDurationSec: 60\n`, /:15:21: sessionDurationSec: /],
    ['duplicate target', GOOD.replace('name: prod', 'name: dev'), /:11:11: targets\[1\]\.name: duplicate target name dev/],
    ['two defaults', GOOD.replace('region: eu-west-1', 'region: eu-west-1\n    default: true').replace('externalId: guard-aws-prod', 'externalId: guard-aws-prod\n    default: true'), /:16:14: targets\[1\]\.default: only one target/],
    ['alg none', `${GOOD}algorithms: [none]\n`, /:15:14: algorithms\[0\]: /],
    ['YAML syntax', 'issuer: [unclosed\n', /^\/etc\/guard\/broker\.yaml:\d+:\d+: /],
    ['duplicate YAML key', `${GOOD}issuer: https://other\n`, /^\/etc\/guard\/broker\.yaml:15:1: /],
    ['issuer not a URL', GOOD.replace('https://idp.example.com', 'idp'), /:1:9: issuer: /],
  ];
  it.each(cases)('%s → config_invalid with file:line:col', (_n, text, re) => {
    const e = err(text);
    expect(e.code).toBe('config_invalid');
    expect(e.exitCode).toBe(78);
    expect(e.message).toMatch(re);
    expect(e.message).not.toContain('\n');
  });

  it('an unreadable file → config_invalid naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-cfg-'));
    const f = join(dir, 'missing.yaml');
    expect(() => loadBrokerConfig(f)).toThrow(new RegExp(`^${f}: cannot read broker config: ENOENT`));
    writeFileSync(join(dir, 'ok.yaml'), GOOD);
    expect(loadBrokerConfig(join(dir, 'ok.yaml')).storage.sqlite).toBe(join(dir, 'state/broker.db'));
  });
});

describe('broker config: sections of other modules', () => {
  it('accepts approvals and auditorGroups, validating them with file:line:col', () => {
    const c = parseBrokerConfig(`${GOOD}approvals:\n  pendingTtlSec: 600\nauditorGroups: [sec-audit, soc]\n`, '/b.yaml');
    expect(c.approvals?.pendingTtlSec).toBe(600);
    expect(c.auditorGroups).toEqual(['sec-audit', 'soc']);
    expect(parseBrokerConfig(GOOD, '/b.yaml').auditorGroups).toEqual(['auditors']);
    expect(() => parseBrokerConfig(`${GOOD}auditorGroups: []\n`, '/b.yaml')).toThrow(/^\/b\.yaml:15:16: auditorGroups: /);
    expect(() => parseBrokerConfig(`${GOOD}approvals:\n  pendingTtlSec: 5\n`, '/b.yaml')).toThrow(/^\/b\.yaml:16:18: approvals\.pendingTtlSec: /);
  });
});

describe('broker config: the former auditor settings', () => {
  const parse = (extra: string) => {
    const warnings: string[] = [];
    const c = parseBrokerConfig(`${GOOD}${extra}`, '/b.yaml', (l) => warnings.push(l));
    return { c, warnings };
  };

  it('auditorGroup (one group) is read as auditorGroups, with a warning naming file:line:col', () => {
    const { c, warnings } = parse('auditorGroup: auditors\n');
    expect(c.auditorGroups).toEqual(['auditors']);
    expect(warnings).toEqual(['/b.yaml:15:1: warning: `auditorGroup` is deprecated; write `auditorGroups`']);
  });

  it('approvals.auditorGroups is read as auditorGroups when both name the same groups', () => {
    const { c, warnings } = parse('auditorGroup: sec\napprovals:\n  auditorGroups: [sec]\n');
    expect(c.auditorGroups).toEqual(['sec']);
    expect(c.approvals).not.toHaveProperty('auditorGroups');
    expect(warnings).toEqual([
      '/b.yaml:15:1: warning: `auditorGroup` is deprecated; write `auditorGroups`',
      '/b.yaml:17:3: warning: `approvals.auditorGroups` is deprecated; write `auditorGroups`',
    ]);
  });

  it('refuses old settings that differ: merging them would widen who reads the audit log', () => {
    // `auditorGroup` alone: its group now also reads approval requests (less than the transcripts it reads).
    expect(parse('auditorGroup: sec\napprovals:\n  pendingTtlSec: 600\n').c.auditorGroups).toEqual(['sec']);
    expect(() => parse('auditorGroup: sec\napprovals:\n  auditorGroups: [sec, soc]\n')).toThrow(
      /^\/b\.yaml:17:3: `auditorGroup` \(audit log: sec\) and `approvals.auditorGroups` \(approval requests: sec, soc\) are one setting now/,
    );
    // Only the approvals list, naming another group than the audit log's default `auditors`: refused.
    const e = (() => {
      try {
        parse('approvals:\n  auditorGroups: [soc]\n');
      } catch (err) {
        return err as GuardError;
      }
      return undefined;
    })();
    expect(e?.code).toBe('config_invalid');
    expect(() => parse('auditorGroups: [a]\nauditorGroup: a\n')).toThrow(/^\/b\.yaml:16:1: `auditorGroup` and `auditorGroups` are the same setting/);
  });

  it('the same rules apply to a config given in code', () => {
    const warnings: string[] = [];
    const input = {
      issuer: 'https://idp.example.com',
      audience: 'a',
      clientId: 'c',
      policies: ['p.yaml'],
      storage: { sqlite: ':memory:' },
      targets: [{ name: 'dev', roleArn: 'arn:aws:iam::111122223333:role/r', region: 'eu-west-1' }],
      auditorGroup: 'sec',
    } as Parameters<typeof brokerConfigFrom>[0];
    expect(brokerConfigFrom(input, '/', (l) => warnings.push(l)).auditorGroups).toEqual(['sec']);
    expect(warnings).toEqual(['broker config: auditorGroup: warning: `auditorGroup` is deprecated; write `auditorGroups`']);
    expect(input).toHaveProperty('auditorGroup', 'sec');
  });
});

describe('broker config: execution', () => {
  it('defaults: workloads run on the broker, people auto; bounded runs', () => {
    const c = parseBrokerConfig(GOOD, '/etc/guard/broker.yaml');
    expect(c.execution).toMatchObject({ people: 'auto', workloads: 'broker', workloadGroups: ['ci', 'agents'], groups: {}, maxConcurrent: 16, startWithinSec: 60 });
    expect(c.targets[0]!.execution).toBeUndefined();
  });
  it('per target and per group, with runDir resolved against the file', () => {
    const c = parseBrokerConfig(
      `${GOOD}    execution: local\nexecution:\n  people: broker\n  groups: { ops: auto }\n  maxConcurrent: 4\n  runDir: runs\n`,
      '/etc/guard/broker.yaml',
    );
    expect(c.targets[1]!.execution).toBe('local');
    expect(c.execution).toMatchObject({ people: 'broker', workloads: 'broker', groups: { ops: 'auto' }, maxConcurrent: 4, runDir: '/etc/guard/runs' });
  });
  it('an unknown mode is refused naming file:line:col and the key', () => {
    const e = err(`${GOOD}execution:\n  people: remote\n`);
    expect(e.code).toBe('config_invalid');
    expect(e.message).toMatch(/^\/etc\/guard\/broker\.yaml:\d+:\d+: execution\.people: /);
  });
});

describe('broker config: storage', () => {
  const withStorage = (storage: string) => GOOD.replace('storage:\n  sqlite: state/broker.db\n', storage);

  it('PostgreSQL: the URL may stay out of the file; TLS and pool settings; paths resolved against the file', () => {
    const c = parseBrokerConfig(withStorage('storage:\n  postgres:\n    sslmode: verify-full\n    caFile: db-ca.pem\n    poolSize: 4\n  auditKeyFile: keys/audit.pem\ntranscripts:\n  store: { type: file, dir: /shared/bodies }\n'), '/etc/guard/broker.yaml');
    expect(c.storage).toEqual({
      postgres: { sslmode: 'verify-full', caFile: '/etc/guard/db-ca.pem', poolSize: 4, connectTimeoutMs: 5000 },
      auditKeyFile: '/etc/guard/keys/audit.pem',
    });
    // The short form: just the URL.
    const short = parseBrokerConfig(withStorage('storage:\n  postgres: postgres://guard@db.internal/guard\n  auditKeyFile: /k.pem\ntranscripts:\n  store: { type: file, dir: /shared/bodies }\n'), '/b.yaml');
    expect(short.storage.postgres).toMatchObject({ url: 'postgres://guard@db.internal/guard', poolSize: 10 });
  });

  it('PostgreSQL: transcript bodies must be put where every broker finds them (no file beside a database)', () => {
    const pg = 'storage:\n  postgres: postgres://guard@db.internal/guard\n  auditKeyFile: /k.pem\n';
    expect(() => parseBrokerConfig(withStorage(pg), '/b.yaml')).toThrow(/transcripts\.store\.dir: required with storage\.postgres/);
    const s3 = `${pg}transcripts:\n  store: { type: s3, bucket: rec, region: us-east-1, retentionDays: 30 }\n`;
    expect(() => parseBrokerConfig(withStorage(s3), '/b.yaml')).toThrow(/transcripts\.store\.stagingDir: required with storage\.postgres/);
    const ok = parseBrokerConfig(withStorage(`${pg}transcripts:\n  store: { type: s3, bucket: rec, region: us-east-1, retentionDays: 30, stagingDir: /var/lib/guard/staging }\n`), '/b.yaml');
    expect(ok.transcripts.store).toMatchObject({ type: 's3', stagingDir: '/var/lib/guard/staging' });
  });

  it('exactly one of sqlite and postgres; postgres needs the audit key file; a URL must be postgres://', () => {
    expect(() => parseBrokerConfig(withStorage('storage:\n  sqlite: a.db\n  postgres: postgres://x/y\n  auditKeyFile: /k.pem\n'), '/b.yaml')).toThrow(/storage: set exactly one of sqlite/);
    expect(() => parseBrokerConfig(withStorage('storage: {}\n'), '/b.yaml')).toThrow(/storage: set exactly one of sqlite/);
    expect(() => parseBrokerConfig(withStorage('storage:\n  postgres: {}\n'), '/b.yaml')).toThrow(/storage\.auditKeyFile: required with postgres/);
    expect(() => parseBrokerConfig(withStorage('storage:\n  postgres:\n    url: mysql://x/y\n  auditKeyFile: /k.pem\n'), '/b.yaml')).toThrow(/storage\.postgres\.url: must be a postgres:\/\/ URL/);
    expect(() => parseBrokerConfig(withStorage('storage:\n  postgres:\n    sslmode: prefer\n  auditKeyFile: /k.pem\n'), '/b.yaml')).toThrow(/storage\.postgres\.sslmode/);
  });
});

describe('broker config: transcripts', () => {
  it('stagingTtlHours defaults to 24; 1 h to a year; anything else names file:line:col and the key', () => {
    expect(parseBrokerConfig(GOOD, '/etc/guard/broker.yaml').transcripts.stagingTtlHours).toBe(24);
    expect(parseBrokerConfig(`${GOOD}transcripts:\n  stagingTtlHours: 6\n`, '/etc/guard/broker.yaml').transcripts.stagingTtlHours).toBe(6);
    for (const bad of ['0', '1.5', 'soon', '9000']) {
      const e = err(`${GOOD}transcripts:\n  stagingTtlHours: ${bad}\n`);
      expect(e.code).toBe('config_invalid');
      expect(e.message).toMatch(/^\/etc\/guard\/broker\.yaml:\d+:\d+: transcripts\.stagingTtlHours: /);
      expect(e.message).not.toContain('\n');
    }
  });
  it('the S3 store takes bodies over 5 GiB (multipart upload): maxBodyBytes up to its 64 GiB cap', () => {
    const c = parseBrokerConfig(`${GOOD}transcripts:\n  maxBodyBytes: 68719476736\n  store: { type: s3, bucket: rec, region: us-east-1, retentionDays: 30 }\n`, '/etc/guard/broker.yaml');
    expect(c.transcripts.maxBodyBytes).toBe(64 * 1024 ** 3);
  });
});
