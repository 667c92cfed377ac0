import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { brokerConfigFrom, type BrokerConfig, type BrokerConfigInput } from '../broker/config.js';
import { assembleBroker } from '../broker/assemble.js';
import { startBroker } from '../broker/server.js';
import { GuardError } from '../errors.js';
import { bwrapAvailable } from '../runner/isolation.js';
import type { IoHost } from '../io/host.js';
import { generateSigningKey, startIdp, type SigningJwk } from '../idp/index.js';
import { DEFAULT_USERS, DEFAULT_WORKLOAD_CLIENT_ID, DEFAULT_WORKLOAD_GROUPS, type IdpUser } from '../idp/users.js';
import { startMotoServer, type MotoChild } from './moto.js';

/**
 * `guard-aws dev`: the whole system in one process for a laptop or a demo — the embedded identity provider
 * (oidc-provider, device flow, a plain HTML login form), the broker with SQLite and the shipped (or given)
 * policies, approvals and the audit log, and one default target. With an AWS endpoint (a local moto_server),
 * everything runs offline.
 */
export interface EmbeddedOptions {
  host: IoHost;
  dataDir: string;
  policies: string[];
  brokerPort: number;
  idpPort: number;
  /** The target's AWS endpoint (moto_server); none = real AWS with the broker's own credentials. */
  awsEndpoint?: string;
  /** Start a moto_server child and use it as the endpoint. */
  startMoto?: boolean;
  /** YAML file of users: [{username, password, groups, name?}]. Default: DEFAULT_USERS. */
  usersFile?: string;
  roleArn: string;
  region: string;
  log?: (line: string) => void;
  /** The broker's `execution` section (where calls run); default the broker config's defaults. */
  execution?: BrokerConfigInput['execution'];
}

export interface Embedded {
  brokerUrl: string;
  /** The web console (approvals, audit log), when the broker listens on a fixed port. */
  consoleUrl?: string;
  issuer: string;
  verificationUri: string;
  awsEndpoint?: string;
  /** True when this process started moto_server (its state lives in that child's memory only). */
  motoStarted: boolean;
  users: readonly IdpUser[];
  workload: { clientId: string; clientSecret: string; secretFile: string; tokenEndpoint: string; audience: string };
  close(): Promise<void>;
}

const usersSchema = z
  .array(
    z.strictObject({
      username: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/),
      password: z.string().min(8),
      groups: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/)),
      name: z.string().max(128).optional(),
    }),
  )
  .min(1);

function loadUsers(file: string): IdpUser[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new GuardError('config_invalid', `${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = usersSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new GuardError('config_invalid', `${file}: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return r.data;
}

/** The IdP's signing key survives restarts (logins stay valid); kept private in the data dir. */
async function signingKey(dataDir: string): Promise<SigningJwk> {
  const path = join(dataDir, 'idp-signing-key.json');
  if (existsSync(path)) {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as SigningJwk;
    } catch {
      throw new GuardError('config_invalid', `${path}: not a JSON key; delete it to make a new one`);
    }
  }
  const key = await generateSigningKey('RS256');
  writeFileSync(path, JSON.stringify(key), { mode: 0o600 });
  return key;
}

/** The CI/agent client's secret, made once and kept private in the data dir (its path is printed, not the secret). */
function workloadSecret(dataDir: string): { path: string; secret: string } {
  const path = join(dataDir, 'workload-client-secret');
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  return { path, secret: readFileSync(path, 'utf8').trim() };
}

/**
 * A port already taken (most often by another `guard-aws dev`) is a setting to change, not a bug: name the port and
 * the option that moves it (exit 78), instead of letting EADDRINUSE surface as an internal error.
 */
async function portInUse<T>(port: number, option: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    // The IdP rejects with the socket error itself; the broker wraps it in a GuardError whose cause it is.
    const codes = [(e as NodeJS.ErrnoException).code, (e as { cause?: NodeJS.ErrnoException }).cause?.code];
    const code = codes.find((c) => c === 'EADDRINUSE' || c === 'EACCES');
    if (code === 'EADDRINUSE') {
      throw new GuardError(
        'config_invalid',
        `port ${port} on 127.0.0.1 is already in use (is another \`guard-aws dev\` running?); stop it, or pick another port with ${option} N (0 = any free port)`,
        { cause: e, details: { port, option } },
      );
    }
    if (code === 'EACCES') {
      throw new GuardError('config_invalid', `not allowed to listen on port ${port}; pick another with ${option} N`, { cause: e, details: { port, option } });
    }
    throw e;
  }
}

export async function startEmbedded(o: EmbeddedOptions): Promise<Embedded> {
  const users = o.usersFile ? loadUsers(o.usersFile) : DEFAULT_USERS;
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(o.dataDir, 0o700);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    let moto: MotoChild | undefined;
    let awsEndpoint = o.awsEndpoint;
    if (o.startMoto) {
      moto = await startMotoServer();
      closers.push(() => moto!.stop());
      awsEndpoint = moto.endpoint;
    }
    if (awsEndpoint && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
      // A local emulator accepts any signature; the broker still signs its AssumeRole calls with something.
      process.env.AWS_ACCESS_KEY_ID = 'GUARDAWSDEVEXAMPLE01';
      process.env.AWS_SECRET_ACCESS_KEY = 'guard-aws-dev-not-a-secret';
    }
    const workload = workloadSecret(o.dataDir);
    const key = await signingKey(o.dataDir);
    // The web console needs its redirect URI registered before the broker exists: known only for a fixed port.
    const consoleUrl = o.brokerPort > 0 ? `http://127.0.0.1:${o.brokerPort}` : undefined;
    const idp = await portInUse(o.idpPort, '--idp-port', () =>
      startIdp({
        port: o.idpPort,
        ...(consoleUrl ? { consoleRedirectUris: [`${consoleUrl}/ui/callback`] } : {}),
        users,
        workloads: [{ clientId: DEFAULT_WORKLOAD_CLIENT_ID, clientSecret: workload.secret, groups: [...DEFAULT_WORKLOAD_GROUPS] }],
        signingKeys: [key],
        // Logins (refresh tokens) survive a restart with the same data directory and identity provider port.
        storeFile: join(o.dataDir, 'idp-logins.json'),
        ...(o.log ? { log: o.log } : {}),
      }),
    );
    closers.push(() => idp.close());
    const config: BrokerConfig = brokerConfigFrom(
      {
        listen: { host: '127.0.0.1', port: o.brokerPort },
        issuer: idp.issuer,
        audience: idp.audience,
        clientId: idp.clientId,
        jwksUri: idp.jwksUri,
        groupsClaim: idp.groupsClaim,
        policies: o.policies,
        storage: { sqlite: join(o.dataDir, 'broker.sqlite') },
        ...(consoleUrl ? { console: { publicUrl: consoleUrl } } : {}),
        // Broker runs are confined with bubblewrap; a development machine without it still gets a working setup,
        // unconfined and said so at start (execution.isolation.mode none, SECURITY.md). A production broker has no
        // such fallback: it refuses to start.
        ...(o.execution ? { execution: o.execution } : bwrapAvailable() ? {} : { execution: { isolation: { mode: 'none' as const } } }),
        targets: [
          {
            name: 'dev',
            roleArn: o.roleArn,
            region: o.region,
            default: true,
            ...(awsEndpoint ? { endpoint: awsEndpoint } : {}),
          },
        ],
      },
      o.dataDir,
    );
    const deps = await assembleBroker(config);
    const broker = await portInUse(o.brokerPort, '--port', () => startBroker(config, deps));
    closers.push(() => broker.close());
    const w = idp.workloads[0]!;
    return {
      brokerUrl: broker.url,
      ...(consoleUrl ? { consoleUrl: `${consoleUrl}/ui/` } : {}),
      issuer: idp.issuer,
      verificationUri: idp.verificationUri,
      ...(awsEndpoint ? { awsEndpoint } : {}),
      motoStarted: !!moto,
      users,
      workload: { clientId: w.clientId, clientSecret: w.clientSecret, secretFile: workload.path, tokenEndpoint: idp.tokenEndpoint, audience: idp.audience },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** What `guard-aws dev` prints: where things are and what to type next. Passwords shown are the demo ones. */
export function describeEmbedded(e: Embedded, o: Pick<EmbeddedOptions, 'roleArn' | 'region' | 'policies' | 'dataDir'>): string {
  const users = e.users.map((u) => `    ${u.username.padEnd(8)} password ${u.password.padEnd(16)} groups ${u.groups.join(',')}`);
  return [
    'guard-aws dev is running (Ctrl-C stops it)',
    `  broker:            ${e.brokerUrl}`,
    ...(e.consoleUrl ? [`  web console:       ${e.consoleUrl}  (sign in as bob to approve, carol to audit)`] : []),
    `  identity provider: ${e.issuer}  (device flow; login form at ${e.verificationUri})`,
    `  target "dev":      ${o.roleArn} in ${o.region}${e.awsEndpoint ? ` via ${e.awsEndpoint}` : ' (real AWS: the broker needs AWS credentials that may assume it)'}`,
    ...(e.motoStarted ? ['                     (moto keeps its data in memory: buckets, secrets… are gone when dev stops)'] : []),
    `  data:              ${o.dataDir} (approvals, audit log, keys and logins survive a restart on the same ports)`,
    `  policies:          ${o.policies.join(', ')}`,
    '  users (demo passwords):',
    ...users,
    `  CI/agent client:   ${e.workload.clientId}, secret in ${e.workload.secretFile}`,
    `                     token: curl -s -u ${e.workload.clientId}:"$(cat ${e.workload.secretFile})" -d grant_type=client_credentials -d resource=${e.workload.audience} ${e.workload.tokenEndpoint}`,
    '',
    'In another terminal:',
    `  export GUARD_AWS_BROKER=${e.brokerUrl}`,
    '  export PATH="$PWD/bin:$PATH"          # from the clone, so `guard-aws` is a command',
    '  guard-aws login                       # complete it in a browser as alice',
    '  guard-aws sts get-caller-identity     # allowed',
    '  guard-aws iam create-user --user-name x   # denied (exit 77)',
  ].join('\n');
}
