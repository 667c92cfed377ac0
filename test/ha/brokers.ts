import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TestIdp } from '../broker/helpers/idp.js';

/**
 * Broker processes for the multi-broker tests: each a real `guard-aws broker --config` child of the built CLI (so
 * it can be killed with SIGKILL mid-request), with its own config file under `dir`. Needs a build.
 */
export const repo = resolve(__dirname, '../..');
export const bin = join(repo, 'bin/guard-aws.js');

export interface BrokerProc {
  name: string;
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything it wrote to stderr (its JSON-line log). */
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface BrokerSpec {
  name: string;
  dir: string;
  idp: TestIdp;
  /** Where AWS STS is (moto, or a proxy in front of it). */
  stsEndpoint: string;
  /** The `storage:` value, YAML flow style (e.g. `{ sqlite: /x/broker.db }`). */
  storage: string;
  port?: number;
  /** Extra top-level YAML lines. */
  extraYaml?: string;
  env?: Record<string, string>;
  args?: string[];
}

export function brokerEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

export function writeBrokerConfig(s: BrokerSpec): string {
  const home = join(s.dir, s.name);
  mkdirSync(home, { recursive: true });
  const file = join(home, 'broker.yaml');
  writeFileSync(
    file,
    `listen: { host: 127.0.0.1, port: ${s.port ?? 0} }
issuer: ${s.idp.issuer}
audience: ${s.idp.audience}
clientId: guard-aws-cli
jwksUri: ${s.idp.jwksUri}
algorithms: [ES256]
policies: [${join(repo, 'test/e2e/fixtures/e2e-policy.yaml')}]
storage: ${s.storage}
${s.storage.includes('postgres') ? `transcripts: { store: { type: file, dir: ${join(s.dir, 'bodies')} } }\n` : ''}execution: { people: local, workloads: local }
auditorGroups: [auditors]
targets:
  - name: dev
    roleArn: arn:aws:iam::123456789012:role/guard-dev
    region: us-east-1
    endpoint: ${s.stsEndpoint}
    default: true
  - name: prod
    roleArn: arn:aws:iam::123456789012:role/guard-prod
    region: us-east-1
    endpoint: ${s.stsEndpoint}
${s.extraYaml ?? ''}`,
  );
  return file;
}

/** Starts one broker; resolves once it listens, rejects with its stderr if it exits first. */
export function startBrokerProc(s: BrokerSpec): Promise<BrokerProc> {
  const file = writeBrokerConfig(s);
  const child = spawn(process.execPath, [bin, 'broker', '--config', file, ...(s.args ?? [])], {
    env: brokerEnv(join(s.dir, s.name), s.env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`broker ${s.name} did not start: ${err}`)), 30_000);
    const onData = () => {
      const m = /guard-aws broker listening on (http:\/\/\S+)/.exec(err);
      if (!m) return;
      clearTimeout(t);
      child.stderr!.off('data', onData);
      const url = m[1]!;
      res({
        name: s.name,
        child,
        url,
        port: Number(new URL(url).port),
        log: () => err,
        kill: (signal = 'SIGKILL') =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill(signal);
          }),
      });
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(t);
      rej(Object.assign(new Error(`broker ${s.name} exited ${code}: ${err}`), { exitCode: code, stderr: err }));
    });
  });
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the built client with `env` (no shell). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout!.on('data', (b: Buffer) => (out += b));
    c.stderr!.on('data', (b: Buffer) => (err += b));
    const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.on('error', rej);
    c.on('close', (status) => {
      clearTimeout(timer);
      res({ status, stdout: out, stderr: err, ms: Date.now() - t0 });
    });
    c.stdin!.end(input);
  });
}

/** A client environment of its own under `dir` (HOME, XDG directories), CI mode, the given brokers and token. */
export function clientEnv(dir: string, brokers: string, token: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: join(dir, 'home'),
    XDG_STATE_HOME: join(dir, 'client-state'),
    XDG_CACHE_HOME: join(dir, 'client-cache'),
    XDG_CONFIG_HOME: join(dir, 'client-config'),
    GUARD_AWS_BROKER: brokers,
    GUARD_AWS_TOKEN: token,
    CI: 'true',
    ...extra,
  };
}
