/**
 * Typos and v2-only commands (docs/aws-cli-parsing.md §2.7): a mistyped command, operation, s3 command,
 * configure sub-command or waiter is refused with the names it was probably meant to be; a command only AWS
 * CLI v2 has is named as such on v1. Always GuardError('parse'), exit 64, one line, nothing run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { closeMatches, oneEditApart, similarity } from '../../src/invocation/choices.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { InvocationContext } from '../../src/invocation/types.js';
import { modelIndex } from '../../src/invocation/model.js';

const v1: InvocationContext = { account: '111122223333', region: 'us-east-1' };
const v2: InvocationContext = { ...v1, cliVersion: 'v2' };

function refusal(argv: string[], ctx: InvocationContext = v1): GuardError {
  try {
    parseInvocation(argv, ctx);
  } catch (e) {
    expect(e).toBeInstanceOf(GuardError);
    const error = e as GuardError;
    expect(error.code).toBe('parse');
    expect(error.exitCode).toBe(64);
    expect(error.message).not.toMatch(/\n/);
    return error;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('a typo gets a suggestion and is still refused', () => {
  it.each([
    [['s3', 'lss', 's3://b'], ['ls']],
    [['s3api', 'list-bukets'], ['list-buckets']],
    [['ec3', 'describe-instances'], ['ec2']],
    [['sts', 'get-caller-identiy'], ['get-caller-identity']],
    [['configure', 'lst'], ['list']],
    [['ec2', 'wait', 'instance-runnin'], ['instance-running']],
    [['logs', 'start-live-tial'], ['start-live-tail']],
  ])('%j', (argv, expected) => {
    const error = refusal(argv);
    const suggestions = error.details.suggestions as string[];
    expect(suggestions).toEqual(expect.arrayContaining(expected));
    expect(error.message).toContain(`maybe you meant: ${suggestions.join(', ')}`);
    expect(argv[error.details.index as number]).toBe(error.details.token);
  });

  it('a repeated typo (answered from the parse cache) gets the same suggestions, unaffected by callers', () => {
    const first = refusal(['s3api', 'get-objcet']);
    (first.details.suggestions as string[]).push('tampered'); // the first caller's copy is its own
    const again = refusal(['s3api', 'get-objcet']);
    expect(() => (again.details.suggestions as string[]).push('tampered')).toThrow(TypeError); // later ones are shared, frozen
    const second = refusal(['s3api', 'get-objcet']);
    expect(second.details.suggestions).toEqual(['get-object']);
    expect(second.message).toBe(first.message);
  });

  it('names of Object.prototype members are unknown names, not crashes', () => {
    for (const argv of [['configure', 'constructor'], ['history', 'toString'], ['s3', '__proto__'], ['ec2', 'wait', 'constructor'], ['ec2', 'wait', 'hasOwnProperty'], ['constructor', 'x'], ['ec2', 'constructor']]) {
      expect(refusal(argv).details.token).toBe(argv[argv.length - 1] === 'x' ? 'constructor' : argv[argv.length - 1]);
    }
  });

  it('a word close to nothing gets no made-up suggestion', () => {
    const error = refusal(['s3api', 'xyzzy-plugh']);
    expect(error.details.suggestions).toBeUndefined();
    expect(error.message).not.toContain('maybe you meant');
    expect(refusal(['myalias', 'run']).message).not.toContain('maybe you meant');
  });

  it('an operation of another service is not suggested, nor the typed word itself', () => {
    const suggestions = refusal(['s3api', 'describe-instancess']).details.suggestions;
    expect(suggestions).toBeUndefined();
  });

  it('a long token costs nothing and suggests nothing', () => {
    const start = performance.now();
    const error = refusal(['x'.repeat(200_000)]);
    expect(error.details.suggestions).toBeUndefined();
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('the similarity is difflib’s, as the AWS CLI uses it', () => {
  const pairs: [string, string][] = [
    ['ls', 'lss'],
    ['list-buckets', 'list-bukets'],
    ['ec2', 'ec3'],
    ['describe-instances', 'describe-instance'],
    ['abcd', 'bcda'],
    ['configure', 'configur'],
    ['get-object', 'put-object'],
    ['aaab', 'abaa'],
    ['wait', 'tail'],
    ['', 'x'],
    ['start-live-tail', 'tail'],
    ['cloudformation', 'cloudfromation'],
  ];

  it('matches Python difflib.SequenceMatcher.ratio() on the same pairs', () => {
    // The real difflib (Python 3, the interpreter AWS CLI v1 runs on), not a copy of its numbers.
    const script = 'import difflib, json, sys\nprint(json.dumps([difflib.SequenceMatcher(None, a, b).ratio() for a, b in json.load(sys.stdin)]))';
    const python = spawnSync('python3', ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8' });
    expect(python.status, python.stderr).toBe(0);
    const expected = JSON.parse(python.stdout) as number[];
    expect(pairs.map(([a, b]) => similarity(a, b))).toEqual(expected.map((ratio) => expect.closeTo(ratio, 12)));
  });

  it('one-edit rule: insertion, deletion, substitution, adjacent swap; nothing further', () => {
    expect(oneEditApart('ec2', 'ec3')).toBe(true);
    expect(oneEditApart('ls', 'lss')).toBe(true);
    expect(oneEditApart('list', 'lsit')).toBe(true);
    expect(oneEditApart('list', 'ltsi')).toBe(false);
    expect(oneEditApart('abc', 'xyz')).toBe(false);
    expect(oneEditApart('same', 'same')).toBe(false);
    expect(closeMatches('ec3', ['ec2', 'ecs', 'ecr', 'eks', 's3'])).toEqual(['ec2', 'ecr', 'ecs']);
    expect(closeMatches('ls', ['ls', 'cp'])).toEqual([]);
  });
});

describe('commands that exist only in AWS CLI v2', () => {
  it.each([
    [['logs', 'tail', '/aws/lambda/x'], 'logs tail'],
    [['sso', 'login'], 'sso login'],
    [['ddb', 'select', 'table'], 'ddb'],
    [['configure', 'sso'], 'configure sso'],
    [['configure', 'export-credentials'], 'configure export-credentials'],
    [['ec2-instance-connect', 'ssh', '--instance-id', 'i-1'], 'ec2-instance-connect ssh'],
  ])('on v1, %j says it exists only in v2', (argv, name) => {
    const error = refusal(argv);
    expect(error.details.reason).toBe('v2_only');
    expect(error.message).toMatch(new RegExp(`^${name} exists only in AWS CLI v2`));
  });

  it('on v2 the modelled ones parse, the others are refused as unsupported, not as missing', () => {
    expect(parseInvocation(['logs', 'tail', '/aws/lambda/x'], v2).actions).toEqual(['logs:FilterLogEvents']);
    expect(parseInvocation(['configure', 'list-profiles'], v2).kind).toBe('local');
    // v2's own table (data/aws-model-v2) has ddb: read as the Scan/Query it makes.
    expect(parseInvocation(['ddb', 'select', 'table'], v2).actions).toEqual(['dynamodb:Scan']);
    expect(refusal(['cli-dev', 'list-commands'], v2).details.reason).toBe('unsupported_customization');
    // sso login is the caller's own sign-in flow: refused with what to do instead.
    const sso = refusal(['sso', 'login'], v2);
    expect(sso.details.reason).toBe('credential_flow');
    expect(sso.message).toMatch(/without guard-aws/);
  });

  it('names v1 has are not caught by the v2 table', () => {
    // v1's `sso logout` is the SSO portal API's Logout: it reaches the action table (which has no IAM action
    // for it) instead of being called v2-only.
    expect(refusal(['sso', 'logout', '--access-token', 'x']).details.reason).toBe('unmapped');
    expect(refusal(['history', 'sso']).details.reason).toBeUndefined();
  });
});

describe('through the built CLI', () => {
  // Spawns bin/guard-aws.js over dist/ (`npm run build` first, as for the other CLI tests).
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const bin = join(repoRoot, 'bin/guard-aws.js');
  const home = mkdtempSync(join(tmpdir(), 'guard-choices-'));
  // An `aws` first on PATH that answers `--version` as the v1 release of the tables (the guard asks it which
  // table to read with) and leaves a mark if anything else ever runs it.
  const fakeBin = mkdtempSync(join(tmpdir(), 'guard-choices-bin-'));
  const marker = join(fakeBin, 'ran');
  writeFileSync(
    join(fakeBin, 'aws'),
    `#!/bin/sh\nif [ "$1" = --version ]; then echo 'aws-cli/${modelIndex('v1').cliVersion} Python/3.11.7'; exit 0; fi\ntouch '${marker}'\n`,
  );
  chmodSync(join(fakeBin, 'aws'), 0o755);
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], {
      env: { PATH: `${fakeBin}:/usr/bin:/bin`, HOME: home, NO_COLOR: '1' },
      encoding: 'utf8',
    });

  it('`guard-aws explain -- s3 lss` exits 64 with the suggestion on stderr', () => {
    const r = run('explain', '--', 's3', 'lss');
    expect(r.status).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('maybe you meant: ls');
  });

  it('`guard-aws logs tail` on v1 says v2 only, exits 64 and runs nothing', () => {
    const r = run('logs', 'tail', '/aws/lambda/x');
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('logs tail exists only in AWS CLI v2');
    const typo = run('s3api', 'list-bukets');
    expect(typo.status).toBe(64);
    expect(typo.stderr).toContain('maybe you meant: list-buckets');
    expect(existsSync(marker)).toBe(false);
  });
});
