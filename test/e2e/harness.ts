import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleBroker } from '../../src/broker/assemble.js';
import { brokerConfigFrom, type BrokerConfig, type BrokerConfigInput } from '../../src/broker/config.js';
import { startBroker, type RunningBroker } from '../../src/broker/server.js';
import { jsonLineLog } from '../../src/broker/log.js';
import type { IdpUser } from '../../src/idp/users.js';
import type { IdpOptions } from '../../src/idp/server.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { startIdp, userToken, workloadToken, type StartedIdp } from '../helpers/idp.js';

/**
 * The whole system on real parts for end-to-end tests: moto_server as AWS, the embedded oidc-provider as the
 * identity provider, the broker assembled exactly as `guard-aws broker`/`dev` assemble it (SQLite file, approvals,
 * audit log) on a real HTTP port, and the built CLI (`node bin/guard-aws.js`) run as a child process with an
 * isolated HOME, config, state and cache directories.
 */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cli = join(repoRoot, 'bin', 'guard-aws.js');
export const fixtures = join(repoRoot, 'test', 'e2e', 'fixtures');

export const E2E_USERS: IdpUser[] = [
  { username: 'alice', password: 'alice-password', groups: ['developers'] },
  { username: 'bob', password: 'bob-password', groups: ['approvers'] },
  { username: 'carol', password: 'carol-password', groups: ['auditors'] },
  { username: 'dave', password: 'dave-password', groups: ['approvers', 'developers'] },
  { username: 'erin', password: 'erin-password', groups: ['developers'] },
];

export interface Stack {
  /** Everything the broker logged (JSON lines), for assertions that no secret is ever logged. */
  logLines: string[];
  moto: Moto;
  idp: StartedIdp;
  broker: RunningBroker;
  config: BrokerConfig;
  dir: string;
  /** Fresh access token for a user (device flow through the login form). */
  token(user: string): Promise<string>;
  workloadToken(): Promise<string>;
  /** Environment for a CLI child: isolated dirs, broker URL, optional token. */
  env(token?: string, extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Runs the built CLI as a child (asynchronously: the broker answers from this very process). */
  run(args: string[], o?: { token?: string | undefined; env?: Record<string, string>; input?: string; cwd?: string }): Promise<RunResult>;
  /** Runs the built CLI asynchronously (for waits and signals). */
  spawn(args: string[], o?: { token?: string | undefined; env?: Record<string, string> }): ReturnType<typeof spawn>;
  restartBroker(): Promise<void>;
  stopBroker(): Promise<void>;
  close(): Promise<void>;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StackOptions {
  policies?: string[];
  approvals?: { pendingTtlSec?: number };
  brokerPort?: number;
  /** Extra options for the embedded IdP (e.g. the console's redirect URIs). */
  idp?: Omit<IdpOptions, 'users'>;
  /** Extra top-level broker config keys (e.g. `console`). */
  config?: Partial<BrokerConfigInput>;
  /** The broker's `execution` section; default: every call runs locally (these tests are about the local run). */
  execution?: BrokerConfigInput['execution'];
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'guard-aws-e2e-'));
  // The broker (in this process) signs its AssumeRole calls with its own credentials; moto accepts any.
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIABROKEREXAMPLE001';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'broker-secret-example';
  const moto = await startMoto();
  const idp = await startIdp({ ...o.idp, users: E2E_USERS });
  const makeConfig = (port: number) =>
    brokerConfigFrom(
      {
        listen: { host: '127.0.0.1', port },
        issuer: idp.issuer,
        audience: idp.audience,
        clientId: idp.clientId,
        jwksUri: idp.jwksUri,
        groupsClaim: idp.groupsClaim,
        policies: o.policies ?? [join(fixtures, 'e2e-policy.yaml')],
        storage: { sqlite: join(dir, 'broker.sqlite') },
        execution: o.execution ?? { people: 'local', workloads: 'local' },
        ...o.config,
        targets: [
          { name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/dev', region: 'us-east-1', endpoint: moto.endpoint, default: true },
          { name: 'prod', roleArn: 'arn:aws:iam::123456789012:role/prod', region: 'us-east-1', endpoint: moto.endpoint },
        ],
      },
      dir,
    );
  let config = makeConfig(o.brokerPort ?? 0);
  const logLines: string[] = [];
  const start = async () => {
    const b = await startBroker(
      config,
      await assembleBroker(config, {
        ...(o.approvals ? { approvals: o.approvals } : {}),
        overrides: { log: jsonLineLog((l) => logLines.push(l)) },
      }),
    );
    // Keep the same port across restarts so clients' saved URL stays valid.
    config = makeConfig(Number(new URL(b.url).port));
    return b;
  };
  let broker = await start();
  const brokerUrl = broker.url;
  const tokens = new Map<string, Promise<string>>();

  const env = (token?: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: join(dir, 'home'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_DATA_HOME: join(dir, 'data'),
    GUARD_AWS_BROKER: brokerUrl,
    CI: 'true',
    ...(token ? { GUARD_AWS_TOKEN: token } : {}),
    ...extra,
  });

  const stack: Stack = {
    logLines,
    moto,
    idp,
    get broker() {
      return broker;
    },
    config,
    dir,
    token(user) {
      if (!tokens.has(user)) tokens.set(user, userToken(idp, user).then((t) => t.accessToken));
      return tokens.get(user)!;
    },
    workloadToken: () => workloadToken(idp),
    env,
    run(args, ro = {}) {
      return new Promise<RunResult>((resolveRun, reject) => {
        const child = spawn(process.execPath, [cli, ...args], { env: env(ro.token, ro.env), cwd: ro.cwd ?? dir, stdio: ['pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on('data', (b: Buffer) => out.push(b));
        child.stderr!.on('data', (b: Buffer) => err.push(b));
        const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        child.on('error', reject);
        child.on('close', (status, signal) => {
          clearTimeout(timer);
          resolveRun({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
        child.stdin!.end(ro.input ?? '');
      });
    },
    spawn(args, ro = {}) {
      return spawn(process.execPath, [cli, ...args], { env: env(ro.token, ro.env), cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    async stopBroker() {
      await broker.close();
    },
    async restartBroker() {
      broker = await start();
    },
    async close() {
      await broker.close().catch(() => undefined);
      await idp.close().catch(() => undefined);
      await moto.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** Runs plain aws (the baseline) against the stack's moto with fixed credentials; `awsPath` picks the CLI. */
export function plainAwsAt(stack: Stack, args: string[], awsPath = 'aws'): SpawnSyncReturns<string> {
  return spawnSync(awsPath, ['--endpoint-url', stack.moto.endpoint, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AWS_PAGER: '',
      HOME: join(stack.dir, 'plain-home'),
      AWS_ACCESS_KEY_ID: 'AKIAPLAINEXAMPLE0001',
      AWS_SECRET_ACCESS_KEY: 'plain-secret-example',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      PYENV_VERSION: process.env.PYENV_VERSION ?? '',
    },
  });
}
