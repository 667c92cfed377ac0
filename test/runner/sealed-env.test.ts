import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws, testClis } from '../helpers/aws.js';
import { createSandbox } from '../../src/runner/sandbox.js';
import { realAws, run, scopedCredentials, settledRequestCount } from './helpers.js';

/**
 * Reference §5.1: every way the caller's environment could redirect, re-credential or instrument the CLI.
 * The parent process is made as hostile as possible (variables, HOME with config/aliases/models, PYTHONPATH
 * with code that runs on import), then the runner runs a real aws call against a real moto. The call must go
 * to moto, signed with the scoped key, and nothing hostile may run or be contacted.
 */

let moto: Moto;
let trap: Server;
let trapUrl: string;
const trapHits: string[] = [];
let csm: Socket;
let csmPort = 0;
const csmPackets: Buffer[] = [];
let hostile: string;
let marks: string;
const saved: Record<string, string | undefined> = {};

function setEnv(vars: Record<string, string>) {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in saved)) saved[k] = process.env[k];
    process.env[k] = v;
  }
}

beforeAll(async () => {
  moto = await startMoto();
  trap = createServer((req, res) => {
    trapHits.push(`${req.method} ${req.url}`);
    res.writeHead(500).end();
  });
  // Proxies get CONNECT requests, not ordinary ones.
  trap.on('connect', (req, sock) => {
    trapHits.push(`CONNECT ${req.url}`);
    sock.destroy();
  });
  await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
  trapUrl = `http://127.0.0.1:${(trap.address() as { port: number }).port}`;
  csm = createSocket('udp4');
  csm.on('message', (m) => csmPackets.push(m));
  await new Promise<void>((r) => csm.bind(0, '127.0.0.1', r));
  csmPort = csm.address().port;

  hostile = mkdtempSync(join(tmpdir(), 'guard-aws-hostile-'));
  marks = join(hostile, 'marks');
  mkdirSync(marks);
  const touch = (name: string) => `touch ${join(marks, name)}`;
  mkdirSync(join(hostile, '.aws', 'cli'), { recursive: true });
  // Vectors 2, 3, 5, 7, 10, 18: the caller's config file.
  const config = [
    '[default]',
    `endpoint_url = ${trapUrl}`,
    'ca_bundle = /nonexistent/ca.pem',
    `credential_process = sh -c '${touch('credential_process')}'`,
    'cli_history = enabled',
    '[profile evil]',
    `credential_process = sh -c '${touch('credential_process_profile')}'`,
    '[plugins]',
    'evil = evil_plugin',
    '[services evil]',
    `sts =\n  endpoint_url = ${trapUrl}`,
    '',
  ].join('\n');
  writeFileSync(join(hostile, '.aws', 'config'), config);
  writeFileSync(join(hostile, '.aws', 'credentials'), '[default]\naws_access_key_id = AKIAFROMFILEEXAMPLE0\naws_secret_access_key = fromfilefromfilefromfilefromfilefromfile\n');
  // Vector 9: an alias shadowing the very command we run.
  writeFileSync(join(hostile, '.aws', 'cli', 'alias'), `[toplevel]\nsts = !${touch('alias')}\n`);
  // Vector 11: model overrides in HOME and in AWS_DATA_PATH (broken JSON: if loaded, aws fails).
  for (const base of [join(hostile, '.aws', 'models'), join(hostile, 'data-path')]) {
    mkdirSync(join(base, 'sts', '2011-06-15'), { recursive: true });
    writeFileSync(join(base, 'sts', '2011-06-15', 'service-2.json'), '{ broken');
  }
  // Vector 10: code that runs when Python imports it.
  const py = join(hostile, 'py');
  mkdirSync(py);
  writeFileSync(join(py, 'sitecustomize.py'), `import os\nopen(${JSON.stringify(join(marks, 'sitecustomize'))}, 'w').close()\n`);
  writeFileSync(join(py, 'usercustomize.py'), `open(${JSON.stringify(join(marks, 'usercustomize'))}, 'w').close()\n`);
  writeFileSync(join(py, 'evil_plugin.py'), `open(${JSON.stringify(join(marks, 'plugin'))}, 'w').close()\ndef awscli_initialize(cli): pass\n`);
  writeFileSync(join(py, 'startup.py'), `open(${JSON.stringify(join(marks, 'pythonstartup'))}, 'w').close()\n`);
  // Vector 20: hostile helpers on the caller's PATH.
  const bin = join(hostile, 'bin');
  mkdirSync(bin);
  for (const b of ['session-manager-plugin', 'less', 'python3']) writeFileSync(join(bin, b), `#!/bin/sh\n${touch(b)}\n`, { mode: 0o755 });

  setEnv({
    HOME: hostile,
    PATH: `${bin}:${process.env.PATH}`,
    AWS_ACCESS_KEY_ID: 'AKIAHOSTILEEXAMPLE00',
    AWS_SECRET_ACCESS_KEY: 'hostilehostilehostilehostilehostilehosti',
    AWS_SESSION_TOKEN: 'hostile-token',
    AWS_PROFILE: 'evil',
    AWS_DEFAULT_PROFILE: 'evil',
    AWS_CONFIG_FILE: join(hostile, '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(hostile, '.aws', 'credentials'),
    AWS_ENDPOINT_URL: trapUrl,
    AWS_ENDPOINT_URL_STS: trapUrl,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: trapUrl,
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'false',
    AWS_CA_BUNDLE: '/nonexistent/ca.pem',
    REQUESTS_CA_BUNDLE: '/nonexistent/ca.pem',
    SSL_CERT_FILE: '/nonexistent/ca.pem',
    HTTP_PROXY: trapUrl,
    HTTPS_PROXY: trapUrl,
    http_proxy: trapUrl,
    https_proxy: trapUrl,
    ALL_PROXY: trapUrl,
    NO_PROXY: '',
    PYTHONPATH: py,
    PYTHONSTARTUP: join(py, 'startup.py'),
    PYTHONHOME: '/nonexistent',
    PYTHONINSPECT: '1',
    AWS_DATA_PATH: join(hostile, 'data-path'),
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(csmPort),
    AWS_CSM_HOST: '127.0.0.1',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: trapUrl,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: trapUrl,
    AWS_EC2_METADATA_DISABLED: 'false',
    BOTO_CONFIG: join(hostile, '.aws', 'config'),
    AWS_PAGER: `sh -c '${touch('pager')}'`,
    PAGER: `sh -c '${touch('pager2')}'`,
    AWS_CLI_HISTORY_FILE: join(marks, 'history.db'),
    AWS_MAX_ATTEMPTS: '0',
    AWS_USE_FIPS_ENDPOINT: 'true',
    AWS_DEFAULT_OUTPUT: 'table',
  });
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await moto?.stop();
  trap?.close();
  csm?.close();
});

afterEach(() => {
  expect(readdirSync(marks)).toEqual([]);
  expect(trapHits).toEqual([]);
  expect(csmPackets).toEqual([]);
});

// On AWS CLI v1 and v2 alike: v2 reads the same files and variables, plus its pager (AWS_PAGER, PAGER and a
// hostile `less` on PATH above) and auto-prompt; both are off in the sealed run.
describe.each(testClis())('the caller\'s environment cannot reach the sealed aws ($name)', (cli) => {
  test('a call signs with the scoped key and goes to the granted endpoint, whatever the parent has set', async () => {
    const creds = scopedCredentials(moto.endpoint);
    const before = await settledRequestCount(moto);
    const r = await run({ argv: ['sts', 'get-caller-identity'], credentials: creds, endpoint: moto.endpoint, callerEnv: process.env, cli });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    // moto answers GetCallerIdentity with the identity the signing key belongs to: the assumed role session.
    expect(JSON.parse(r.stdout).Arn).toBe(creds.arn);
    // json, not the caller's AWS_DEFAULT_OUTPUT=table
    expect(r.stdout.startsWith('{')).toBe(true);
    expect(await settledRequestCount(moto)).toBe(before + 1);
    // The alias shadowing `sts`, the plugin, credential_process, sitecustomize, the models: checked in afterEach.
  });

  test('http(s):// parameter values are not fetched (v1: cli_follow_urlparam = false; v2 never fetches)', async () => {
    const creds = scopedCredentials(moto.endpoint);
    const r = await run({
      argv: ['secretsmanager', 'create-secret', '--name', `urlparam-${cli.name}`, '--secret-string', `${trapUrl}/steal`],
      credentials: creds,
      endpoint: moto.endpoint,
      cli,
    });
    expect(r.exitCode).toBe(0);
    const got = plainAws(['secretsmanager', 'get-secret-value', '--secret-id', `urlparam-${cli.name}`, '--output', 'json'], moto.endpoint);
    expect(JSON.parse(got.stdout).SecretString).toBe(`${trapUrl}/steal`);
  });

  test('file:// paths with ~ expand to the private HOME, not the caller\'s (vector 14)', async () => {
    const creds = scopedCredentials(moto.endpoint);
    const before = await settledRequestCount(moto);
    const r = await run({
      argv: ['secretsmanager', 'create-secret', '--name', `tilde-${cli.name}`, '--secret-string', 'file://~/.aws/credentials'],
      credentials: creds,
      endpoint: moto.endpoint,
      cli,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Unable to load paramfile/);
    expect(r.stderr).not.toContain('AKIAFROMFILE');
    expect(await settledRequestCount(moto)).toBe(before);
  });
});

describe('the sandbox itself', () => {
  test('v2 on a terminal: no pager runs, even with one on PATH (vector 17)', async () => {
    // v2 pipes output through AWS_PAGER / cli_pager / PAGER (default `less -R`) only when stdout is a terminal
    // (awscli/utils.py OutputStreamFactory): `script` gives it one. The hostile `less` is put first on PATH.
    const v2 = testClis().find((c) => c.major === 2);
    if (!v2) return;
    const creds = scopedCredentials(moto.endpoint);
    // aws runs under `script` here, a grandchild of this process: no parent tie (parentPid 0), or the plugin would
    // rightly end it at once (that tie is tested in test/fault/kill.test.ts).
    const sb = createSandbox({ aws: { path: v2.path, major: 2 }, credentials: creds, region: 'us-east-1', extraFields: [], dockerLoginToken: false, tty: null, parentPid: 0 });
    const { spawnSync } = await import('node:child_process');
    const onTerminal = (env: Record<string, string>) =>
      spawnSync('script', ['-qec', `${v2.path} --endpoint-url ${moto.endpoint} sts get-caller-identity`, '/dev/null'], {
        env: { ...env, PATH: `${join(hostile, 'bin')}:${env.PATH}` },
        encoding: 'utf8',
      });
    try {
      // The probe can see a pager: told to use one, v2 runs the hostile `less`.
      onTerminal({ ...sb.env, AWS_PAGER: 'less' });
      expect(existsSync(join(marks, 'less'))).toBe(true);
      rmSync(join(marks, 'less'));
      // The sealed settings: none runs, from the environment (AWS_PAGER='') or from the config alone (cli_pager =).
      for (const env of [sb.env, Object.fromEntries(Object.entries(sb.env).filter(([k]) => k !== 'AWS_PAGER'))]) {
        const r = onTerminal(env);
        expect(r.status, r.stdout).toBe(0);
        expect(r.stdout).toContain(creds.arn);
      }
    } finally {
      sb.dispose();
    }
  });

  test('the environment is exactly the allow-list, HOME is private and removed afterwards', () => {
    const sb = createSandbox({
      aws: realAws(),
      credentials: { accessKeyId: 'ASIAX', secretAccessKey: 'S', sessionToken: 'T' },
      region: 'eu-west-1',
      extraFields: [],
      dockerLoginToken: false,
      tty: null,
    });
    try {
      expect(Object.keys(sb.env).sort()).toEqual(
        [
          'AWS_ACCESS_KEY_ID',
          'AWS_CLI_AUTO_PROMPT',
          'AWS_CONFIG_FILE',
          'AWS_CSM_ENABLED',
          'AWS_DEFAULT_REGION',
          'AWS_EC2_METADATA_DISABLED',
          'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS',
          'AWS_PAGER',
          'AWS_REGION',
          'AWS_SECRET_ACCESS_KEY',
          'AWS_SESSION_TOKEN',
          'AWS_SHARED_CREDENTIALS_FILE',
          'GUARD_AWS_ACTIVE',
          'HOME',
          'LANG',
          'LC_ALL',
          'PATH',
          'PYTHONDONTWRITEBYTECODE',
          'PYTHONNOUSERSITE',
          'PYTHONPATH',
          'PYTHONUNBUFFERED',
          'TMPDIR',
        ].sort(),
      );
      expect(sb.env.PATH).toBe(`${join(realAws().path, '..')}:/usr/bin:/bin`);
      expect(sb.env.AWS_SHARED_CREDENTIALS_FILE).toBe('/dev/null');
      expect(statSync(sb.home).mode & 0o777).toBe(0o700);
      const cfg = readFileSync(sb.env.AWS_CONFIG_FILE!, 'utf8');
      expect(cfg).toContain('cli_follow_urlparam = false');
      expect(cfg).toContain('region = eu-west-1');
      expect(cfg).not.toMatch(/endpoint|credential|ca_bundle|profile /);
      expect(existsSync(join(sb.home, '.aws'))).toBe(false);
    } finally {
      sb.dispose();
    }
    expect(existsSync(sb.home)).toBe(false);
  });

  test('a region that would inject config lines is refused', () => {
    expect(() =>
      createSandbox({
        aws: realAws(),
        credentials: { accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 'c' },
        region: 'us-east-1\n[plugins]\nx = y',
        extraFields: [],
        dockerLoginToken: false,
        tty: null,
      }),
    ).toThrow(/region/);
  });

  test('private HOMEs are removed after every run, also failed ones', async () => {
    const root = mkdtempSync(join(tmpdir(), 'guard-aws-tmproot-'));
    const creds = scopedCredentials(moto.endpoint);
    const ok = await run({ argv: ['sts', 'get-caller-identity'], credentials: creds, endpoint: moto.endpoint, tmpRoot: root });
    expect(ok.exitCode).toBe(0);
    const bad = await run({ argv: ['sts', 'no-such-operation'], credentials: creds, endpoint: moto.endpoint, tmpRoot: root });
    expect(bad.exitCode).not.toBe(0);
    const err = await run({ argv: ['sts', 'get-caller-identity'], credentials: creds, endpoint: moto.endpoint, tmpRoot: root, spawn: (() => {
      throw new Error('spawn failed');
    }) as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(readdirSync(root)).toEqual([]);
  });
});
