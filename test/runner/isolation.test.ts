import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startMoto, type Moto } from '../helpers/moto.js';
import { plainAws, testClis, V1 } from '../helpers/aws.js';
import { GuardError } from '../../src/errors.js';
import { bwrapAvailable, createIsolation, DEFAULT_RUN_AS, isolationConfigSchema, awsInstallRoots } from '../../src/runner/isolation.js';
import type { RunIsolation } from '../../src/runner/run-aws.js';
import type { AwsBinary } from '../../src/runner/find-aws.js';
import { WarmPool, warmPoolConfigSchema } from '../../src/runner/warm/pool.js';
import { realAws, run, scopedCredentials, settledRequestCount, type Captured, type RunInput } from './helpers.js';

/**
 * SECURITY.md "Confinement of broker runs": what the broker runs for a caller reaches nothing of the broker's.
 * Every escape is tried through a real runAws call (real aws v1, real moto_server, real bubblewrap), and each
 * one is first shown to work without the confinement, so a test that passes means the confinement stopped it.
 */

const inCi = Boolean(process.env.CI);
const haveBwrap = bwrapAvailable();
if (!haveBwrap && !inCi) {
  console.warn('isolation.test.ts: skipped — bubblewrap (bwrap) is not installed; scripts/setup-system.sh installs it (required in CI)');
}
const isRoot = process.getuid?.() === 0;
const marker = randomBytes(6).toString('hex');
const BROKER_SECRET = `BROKER-SIGNING-KEY-${marker}`;
const BROKER_KEY_ID = `AKIABROKER${marker.toUpperCase()}`;

let moto: Moto;
let creds: ReturnType<typeof scopedCredentials>;
let brokerDir: string;
let runsRoot: string;
let imds: Server;
const imdsHits: string[] = [];
let hang: Server;
let hangUrl: string;
const hangSockets: Socket[] = [];
const savedEnv: Record<string, string | undefined> = {};
const bucket = `iso-${marker}`;

function setEnv(vars: Record<string, string>) {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in savedEnv)) savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
}

/**
 * The warm path (issue 16): when set, every confined run is forked from this pool's supervisor instead (its
 * directory under the pool's run root), and each escape must fail there the same way.
 */
let pool: WarmPool | undefined;
const pools = new Map<string, WarmPool>();

/** A private per-run directory, as the broker makes one: cwd and parent of the private HOME. */
function runDir(files: Record<string, string> = {}, warm: WarmPool | undefined = pool): string {
  const dir = mkdtempSync(join(warm?.runRoot ?? runsRoot, 'run-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function isolation(aws: AwsBinary = realAws()): RunIsolation {
  return createIsolation({ mode: 'bwrap' }, aws, { protect: [brokerDir] });
}

/** The same call twice: confined (as the broker runs it) and not (the control that shows the escape is real). */
async function confined(argv: string[], files: Record<string, string> = {}, extra: Partial<RunInput> = {}): Promise<Captured & { dir: string }> {
  const dir = runDir(files, extra.cli ? pools.get(extra.cli.name) : pool);
  const aws = extra.cli ? { path: extra.cli.path, major: extra.cli.major } : realAws();
  const warm = extra.cli ? pools.get(extra.cli.name) : pool;
  const r = await run({ argv, credentials: creds, endpoint: moto.endpoint, cwd: dir, tmpRoot: dir, isolation: isolation(aws), ...(warm ? { warm } : {}), ...extra });
  // The warm path must really be taken, or these tests would prove nothing about it.
  expect((r as unknown as { runner: string }).runner).toBe(warm ? 'warm' : 'fresh');
  return { ...r, dir };
}
async function unconfined(argv: string[], files: Record<string, string> = {}, extra: Partial<RunInput> = {}): Promise<Captured & { dir: string }> {
  const dir = runDir(files);
  const r = await run({ argv, credentials: creds, endpoint: moto.endpoint, cwd: dir, tmpRoot: dir, ...extra });
  return { ...r, dir };
}

function objectExists(key: string): boolean {
  return plainAws(['s3api', 'head-object', '--bucket', bucket, '--key', key], moto.endpoint).status === 0;
}
function objectText(key: string): string {
  const r = plainAws(['s3', 'cp', `s3://${bucket}/${key}`, '-'], moto.endpoint);
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}
function bucketNames(): string[] {
  const r = plainAws(['s3api', 'list-buckets', '--query', 'Buckets[].Name', '--output', 'json'], moto.endpoint);
  return JSON.parse(r.stdout) as string[];
}

// Skipped only on a developer machine without bubblewrap; in CI a missing bwrap fails the suite instead (inCi), and
// the warm variant runs wherever the broker is root (the warm pool needs a uid per run).
describe.skipIf(!haveBwrap && !inCi).each(isRoot ? (['fresh', 'warm'] as const) : (['fresh'] as const))('broker runs confined by bubblewrap (%s)', (mode) => {
  beforeAll(async () => {
    moto = await startMoto();
    creds = scopedCredentials(moto.endpoint, 'isolation-test');
    expect(plainAws(['s3', 'mb', `s3://${bucket}`], moto.endpoint).status).toBe(0);

    // The broker's own things, outside any run directory: a signing key and a "database" that happens to be
    // valid --cli-input-json (so reading it would visibly succeed).
    brokerDir = mkdtempSync(join(tmpdir(), 'guard-aws-broker-'));
    writeFileSync(join(brokerDir, 'signing-key.pem'), `${BROKER_SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(brokerDir, 'broker.db'), JSON.stringify({ Bucket: `leaked-${marker}` }), { mode: 0o600 });
    // Where the broker keeps its runs: private to the broker.
    runsRoot = mkdtempSync(join(tmpdir(), 'guard-aws-runs-'));
    chmodSync(runsRoot, 0o700);
    if (mode === 'warm') {
      for (const cli of testClis()) {
        const p = new WarmPool({
          aws: { path: cli.path, major: cli.major },
          config: warmPoolConfigSchema.parse({ enabled: true }),
          isolation: { mode: 'bwrap' },
          protect: [brokerDir],
          runDir: runsRoot,
          maxConcurrent: 4,
        });
        await p.ready();
        pools.set(cli.name, p);
      }
      pool = pools.get('v1');
    }

    // A fake instance metadata service on loopback, named in the broker's own environment.
    imds = createServer((req, res) => {
      imdsHits.push(`${req.method} ${req.url}`);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;

    // A server that never answers: an aws call that stays running until it is stopped.
    hang = createServer(() => {});
    hang.on('connection', (s) => hangSockets.push(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;

    // The broker process's environment holds its own credentials and settings.
    setEnv({
      AWS_ACCESS_KEY_ID: BROKER_KEY_ID,
      AWS_SECRET_ACCESS_KEY: `broker-secret-${marker}`,
      GUARD_AWS_SIGNING_KEY: BROKER_SECRET,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsUrl,
      AWS_EC2_METADATA_DISABLED: 'false',
    });
  }, 60_000);

  afterAll(async () => {
    for (const p of pools.values()) p.close();
    pools.clear();
    pool = undefined;
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    hang?.closeAllConnections();
    hang?.close();
    imds?.close();
    await moto?.stop();
    if (runsRoot) rmSync(runsRoot, { recursive: true, force: true });
    if (brokerDir) rmSync(brokerDir, { recursive: true, force: true });
  });

  test('a normal call works and its output is byte-identical to the unconfined run', async () => {
    const argv = ['sts', 'get-caller-identity'];
    const [a, b] = [await confined(argv), await unconfined(argv)];
    expect(a.exitCode, a.stderr).toBe(0);
    // moto makes up a new UserId suffix on every call; everything else is the same bytes.
    const userId = (s: string) => s.replace(/"UserId": "[^"]*"/, '"UserId": "…"');
    expect(userId(a.stdout)).toBe(userId(b.stdout));
    expect(a.stderr).toBe(b.stderr);
    // Signed with the scoped session, not with anything of the broker's environment.
    expect(JSON.parse(a.stdout).Arn).toBe(creds.arn);
    expect(a.stdout + a.stderr).not.toContain(BROKER_KEY_ID);

    // (--no-progress: the progress line carries a transfer rate, different on every run.)
    const up = ['s3', 'cp', 'in.txt', `s3://${bucket}/in-confined.txt`, '--no-progress'];
    const c = await confined(up, { 'in.txt': `hello ${marker}\n` });
    const d = await unconfined(up, { 'in.txt': `hello ${marker}\n` });
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toBe(d.stdout);
    expect(c.stderr).toBe(d.stderr);
    expect(objectText('in-confined.txt')).toBe(`hello ${marker}\n`);
    // stdin streams through the sandbox (`s3 cp -` reads fd 0; no /proc is needed for that).
    const piped = await confined(['s3', 'cp', '-', `s3://${bucket}/in-stdin.txt`], {}, { stdin: `piped ${marker}` });
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(objectText('in-stdin.txt')).toBe(`piped ${marker}`);

    const list = ['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'in-'];
    const [e, f] = [await confined(list), await unconfined(list)];
    expect(e.exitCode, e.stderr).toBe(0);
    expect(Buffer.from(e.stdout)).toEqual(Buffer.from(f.stdout));
  }, 60_000);

  test.each(testClis().filter((c) => c.name === 'v2'))('AWS CLI $name runs confined too, with the same output', async (cli) => {
    const argv = ['s3api', 'list-buckets', '--query', 'Buckets[].Name'];
    const [a, b] = [await confined(argv, {}, { cli }), await unconfined(argv, {}, { cli })];
    expect(a.exitCode, a.stderr).toBe(0);
    expect(a.stdout).toContain(bucket);
    expect({ out: a.stdout, err: a.stderr }).toEqual({ out: b.stdout, err: b.stderr });
  }, 60_000);

  test('failing calls keep their exit code and error bytes', async () => {
    for (const argv of [
      ['s3api', 'head-object', '--bucket', bucket, '--key', 'missing'],
      ['s3', 'ls', `s3://no-such-bucket-${marker}`],
      ['s3', 'cp', 'absent.txt', `s3://${bucket}/x`],
    ]) {
      const [a, b] = [await confined(argv), await unconfined(argv)];
      expect(b.exitCode).not.toBe(0);
      expect({ code: a.exitCode, out: a.stdout, err: a.stderr }).toEqual({ code: b.exitCode, out: b.stdout, err: b.stderr });
    }
  }, 60_000);

  test("a broker file named by absolute path (s3 cp source) never reaches AWS or the output", async () => {
    const secret = join(brokerDir, 'signing-key.pem');
    const control = await unconfined(['s3', 'cp', secret, `s3://${bucket}/control-key`]);
    expect(control.exitCode, control.stderr).toBe(0);
    expect(objectText('control-key')).toContain(BROKER_SECRET);

    const r = await confined(['s3', 'cp', secret, `s3://${bucket}/leak-key`]);
    expect(r.exitCode).not.toBe(0);
    expect(objectExists('leak-key')).toBe(false);
    expect(r.stdout + r.stderr).not.toContain(BROKER_SECRET);
  }, 60_000);

  test('a broker file named by --cli-input-json file:// is not readable', async () => {
    const db = `file://${join(brokerDir, 'broker.db')}`;
    const control = await unconfined(['s3api', 'create-bucket', '--cli-input-json', db]);
    expect(control.exitCode, control.stderr).toBe(0);
    expect(bucketNames()).toContain(`leaked-${marker}`);
    expect(plainAws(['s3', 'rb', `s3://leaked-${marker}`], moto.endpoint).status).toBe(0);

    const r = await confined(['s3api', 'create-bucket', '--cli-input-json', db]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No such file or directory/);
    expect(bucketNames()).not.toContain(`leaked-${marker}`);
  }, 60_000);

  test("aws's own environment (the scoped credentials) and the broker's are not readable as files", async () => {
    // Without the confinement, /proc/self/environ hands the scoped secret key to whoever reads the secret back
    // (`s3 cp` would upload nothing: /proc files report size 0; a file:// parameter reads them whole).
    const leak = (name: string, path: string) => ['secretsmanager', 'create-secret', '--name', name, '--secret-string', `file://${path}`];
    const readBack = (name: string) =>
      plainAws(['secretsmanager', 'get-secret-value', '--secret-id', name, '--query', 'SecretString', '--output', 'text'], moto.endpoint);
    const control = await unconfined(leak(`control-env-${marker}`, '/proc/self/environ'));
    expect(control.exitCode, control.stderr).toBe(0);
    expect(readBack(`control-env-${marker}`).stdout).toContain(creds.secretAccessKey);

    for (const path of ['/proc/self/environ', '/proc/1/environ', `/proc/${process.pid}/environ`]) {
      const name = `leak-env-${path.split('/')[2]}-${marker}`;
      const r = await confined(leak(name, path));
      expect(r.exitCode, path).not.toBe(0);
      expect(r.stderr, path).toMatch(/No such file or directory/);
      expect(readBack(name).status, path).not.toBe(0);
      expect(r.stdout + r.stderr).not.toContain(creds.secretAccessKey);
      expect(r.stdout + r.stderr).not.toContain(BROKER_SECRET);
    }
  }, 60_000);

  test('downloads land only in the run directory; broker files cannot be overwritten', async () => {
    writeFileSync(join(runsRoot, 'payload.txt'), `payload ${marker}`);
    expect(plainAws(['s3', 'cp', join(runsRoot, 'payload.txt'), `s3://${bucket}/payload.txt`], moto.endpoint).status).toBe(0);
    const key = join(brokerDir, 'signing-key.pem');
    const elsewhere = join(brokerDir, 'new-file');

    const control = await unconfined(['s3', 'cp', `s3://${bucket}/payload.txt`, elsewhere]);
    expect(control.exitCode, control.stderr).toBe(0);
    rmSync(elsewhere);

    // (aws v1 itself exits 0 without a word when it cannot create a download's parent directory — a KeyError in
    // its result handler — so what is checked is where bytes landed, on the host.)
    for (const target of [key, elsewhere, `/tmp/guard-aws-escape-${marker}`, `/root/escape-${marker}`, `/usr/escape-${marker}`]) {
      const r = await confined(['s3', 'cp', `s3://${bucket}/payload.txt`, target]);
      expect(r.stdout, target).not.toMatch(/^download:/m);
      expect(existsSync(target) && readFileSync(target, 'utf8').includes(`payload ${marker}`), target).toBe(false);
    }
    expect(readFileSync(key, 'utf8')).toBe(`${BROKER_SECRET}\n`);
    expect(existsSync(elsewhere)).toBe(false);

    const ok = await confined(['s3', 'cp', `s3://${bucket}/payload.txt`, 'out/payload.txt']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(readFileSync(join(ok.dir, 'out', 'payload.txt'), 'utf8')).toBe(`payload ${marker}`);
    // Fresh: nobody. Warm: the uid of that run alone (uidBase + its slot).
    const owner = statSync(join(ok.dir, 'out', 'payload.txt')).uid;
    const { uidBase } = warmPoolConfigSchema.parse({});
    if (isRoot && mode === 'fresh') expect(owner).toBe(DEFAULT_RUN_AS.uid);
    if (isRoot && mode === 'warm') expect(owner >= uidBase && owner < uidBase + 4).toBe(true);
  }, 60_000);

  test('the instance metadata service named in the broker environment is never contacted', async () => {
    // Control: an aws without credentials, given that environment, does go to it.
    // (Spawned asynchronously: the fake IMDS answers from this process's event loop.)
    const ctl = spawn(V1.path, ['sts', 'get-caller-identity', '--endpoint-url', moto.endpoint], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH, HOME: '/nonexistent', AWS_DEFAULT_REGION: 'us-east-1', AWS_EC2_METADATA_SERVICE_ENDPOINT: process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT },
    });
    const status = await new Promise<number | null>((r) => ctl.once('exit', (c) => r(c)));
    expect(status).not.toBe(0);
    expect(imdsHits.length).toBeGreaterThan(0);
    imdsHits.length = 0;

    for (const argv of [['sts', 'get-caller-identity'], ['ec2', 'describe-regions']]) {
      const r = await confined(argv);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    expect(imdsHits).toEqual([]);
  }, 60_000);

  // (The warm path runs only aws: what its child can reach is probed through aws by the tests above and, for the
  // process itself — uid, capabilities, descriptors — by test/runner/warm/supervisor_test.py.)
  test.skipIf(mode === 'warm')('inside: no broker process, no /proc, an unprivileged user, and nothing writable but the run directory', () => {
    const iso = isolation();
    const dir = runDir();
    mkdirSync(join(dir, 'home'));
    iso.prepare({ home: join(dir, 'home'), cwd: dir });
    const script = [
      'id -u; id -g; id -G',
      'echo "top: $(ls -A / | tr "\\n" " ")"',
      'echo "root: $(ls -A /root | tr "\\n" " ")"',
      `ls ${brokerDir} 2>&1 || echo no-broker-dir`,
      `kill -0 ${process.pid} 2>&1 || echo no-broker-pid`,
      'ls /proc 2>&1 || echo no-proc',
      'for p in / /tmp /usr /etc /root; do touch "$p/w" 2>/dev/null && echo "wrote $p"; done',
      'touch ./w && echo wrote-run-dir',
      'hostname',
    ].join('\n');
    const w = iso.wrap('/bin/sh', ['-c', script]);
    const r = spawnSync(w.command, w.args, { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    if (isRoot) expect(lines.slice(0, 3)).toEqual([String(DEFAULT_RUN_AS.uid), String(DEFAULT_RUN_AS.gid), String(DEFAULT_RUN_AS.gid)]);
    expect(r.stdout).toContain('no-broker-dir');
    expect(r.stdout).toContain('no-broker-pid');
    expect(r.stdout).toContain('no-proc');
    expect(r.stdout).not.toMatch(/^wrote \//m);
    expect(r.stdout).toContain('wrote-run-dir');
    expect(r.stdout).toContain('guard-aws-run');
    // Under /root only the path down to the aws installation's own prefix (pyenv), nothing else of root's home.
    const inRoot = awsInstallRoots(realAws()).filter((d) => d.startsWith('/root/')).map((d) => d.split('/')[2]!);
    expect(lines).toContain(`root: ${[...new Set(inRoot)].sort().map((n) => `${n} `).join('')}`);
    // The top level holds system directories, the aws installation's and the run's ancestors, nothing else.
    const top = lines.find((l) => l.startsWith('top: '))!.slice(5).trim().split(' ');
    const allowed = new Set(['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc', 'dev', 'tmp', 'root']);
    expect(top.filter((n) => !allowed.has(n))).toEqual([]);
  });

  test('SIGTERM and SIGINT forwarded by runAws stop the confined aws', async () => {
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const signals = new EventEmitter();
      const before = hangSockets.length;
      const dir = runDir();
      const p = run({
        argv: ['sts', 'get-caller-identity', '--cli-read-timeout', '50'],
        credentials: creds,
        endpoint: hangUrl,
        cwd: dir,
        tmpRoot: dir,
        isolation: isolation(),
        ...(pool ? { warm: pool } : {}),
        signals,
      });
      const deadline = Date.now() + 20_000;
      while (hangSockets.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const sock = hangSockets[hangSockets.length - 1]!;
      const closed = new Promise<void>((r) => (sock.destroyed ? r() : sock.once('close', () => r())));
      signals.emit(sig);
      const r = await p;
      await closed; // aws's connection closed: the process is gone, not orphaned
      expect(r.exitCode).toBe(code);
      expect(readdirSync(dir).filter((n) => n.startsWith('guard-aws-run-'))).toEqual([]);
    }
  }, 60_000);

  // A broker that is not root: bwrap builds the sandbox in an unprivileged user namespace and aws keeps the
  // broker's uid, so the mount namespace alone must keep out a file that uid can read. (Debian's v2: the pyenv v1
  // under /root is not executable for another user.)
  const v2 = testClis().find((c) => c.name === 'v2');
  test.skipIf(!isRoot || !v2 || mode === 'warm')('a broker that is not root: a file its own uid can read stays out of reach', async () => {
    const aws = { path: v2!.path, major: v2!.major };
    const shared = mkdtempSync(join(tmpdir(), 'guard-aws-shared-'));
    chmodSync(shared, 0o755);
    const file = join(shared, 'broker-readable.txt');
    writeFileSync(file, `${BROKER_SECRET}\n`, { mode: 0o644 });
    const driver = join(__dirname, 'fixtures', 'isolated-run-driver.mjs');
    const asNobody = async (mode: 'bwrap' | 'none', name: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'guard-aws-nonroot-run-'));
      spawnSync('chown', [`${DEFAULT_RUN_AS.uid}:${DEFAULT_RUN_AS.gid}`, dir]);
      const opts = { aws, argv: ['secretsmanager', 'create-secret', '--name', name, '--secret-string', `file://${file}`], credentials: creds, endpoint: moto.endpoint, dir, mode };
      const child = spawn(
        'setpriv',
        [`--reuid=${DEFAULT_RUN_AS.uid}`, `--regid=${DEFAULT_RUN_AS.gid}`, '--clear-groups', '--', process.execPath, driver, JSON.stringify(opts)],
        { env: { PATH: '/usr/bin:/bin', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      rmSync(dir, { recursive: true, force: true });
      return { code, err };
    };
    const readBack = (name: string) =>
      plainAws(['secretsmanager', 'get-secret-value', '--secret-id', name, '--query', 'SecretString', '--output', 'text'], moto.endpoint);
    try {
      const control = await asNobody('none', `nonroot-control-${marker}`);
      expect(control.code, control.err).toBe(0);
      expect(readBack(`nonroot-control-${marker}`).stdout).toContain(BROKER_SECRET);

      const r = await asNobody('bwrap', `nonroot-leak-${marker}`);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/No such file or directory/);
      expect(readBack(`nonroot-leak-${marker}`).status).not.toBe(0);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  }, 60_000);

  // Fresh path only: the warm pool builds its confinement once, at supervisor start (test/runner/warm-pool.test.ts).
  test.skipIf(mode === 'warm')('fails closed: a missing bubblewrap or a misplaced run directory stops the run before aws starts', async () => {
    let e: unknown;
    try {
      createIsolation({ mode: 'bwrap', bwrapPath: '/nonexistent/bwrap' }, realAws());
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GuardError);
    expect((e as GuardError).code).toBe('config_invalid');

    // A run whose private HOME is not inside its run directory (the broker's cwd would be handed over).
    const dir = runDir();
    // Settled first: the previous test's last request can still be on its way into moto's log.
    const before = await settledRequestCount(moto);
    await expect(
      run({ argv: ['sts', 'get-caller-identity'], credentials: creds, endpoint: moto.endpoint, cwd: dir, isolation: isolation() }),
    ).rejects.toMatchObject({ code: 'internal' });
    expect(await settledRequestCount(moto)).toBe(before);

    // A program the sandbox cannot see is refused by name, not started as a confusing exit 127.
    const iso = isolation();
    const dir2 = runDir();
    mkdirSync(join(dir2, 'home'));
    iso.prepare({ home: join(dir2, 'home'), cwd: dir2 });
    expect(() => iso.wrap(join(brokerDir, 'aws'), ['s3', 'ls'])).toThrow(/outside what a confined run can see/);

    // A broker file inside the aws installation would be readable by every run.
    const aws = realAws();
    const inside = awsInstallRoots(aws)[0];
    if (inside) {
      expect(() => createIsolation({ mode: 'bwrap' }, aws, { protect: [join(inside, 'broker.db')] })).toThrow(GuardError);
    }
  });

  // Fresh path only: configuration is the same object for both paths; checking it once is enough.
  test.skipIf(mode === 'warm')('config: bwrap by default, root refused as runAs, mode none passes through', () => {
    expect(isolationConfigSchema.parse(undefined)).toEqual({ mode: 'bwrap' });
    expect(isolationConfigSchema.safeParse({ mode: 'bwrap', runAs: { uid: 0, gid: 0 } }).success).toBe(false);
    expect(isolationConfigSchema.safeParse({ mode: 'chroot' }).success).toBe(false);
    expect(isolationConfigSchema.safeParse({ mode: 'bwrap', bwrapPath: 'bwrap' }).success).toBe(false);
    const none = createIsolation({ mode: 'none' }, realAws());
    expect(none.wrap('/x/aws', ['s3', 'ls'])).toEqual({ command: '/x/aws', args: ['s3', 'ls'] });
  });
});
