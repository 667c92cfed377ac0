import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { createTokenVerifier } from '../../../src/auth/verify.js';
import { brokerConfigFrom, type BrokerConfigInput } from '../../../src/broker/config.js';
import type { BrokerDeps } from '../../../src/broker/deps.js';
import type { BrokerLogEntry } from '../../../src/broker/log.js';
import { startBroker, type RunningBroker } from '../../../src/broker/server.js';
import { parseInvocation } from '../../../src/invocation/parse.js';
import { decide, loadPolicies } from '../../../src/policy/index.js';
import { openSqliteStore } from '../../../src/broker/storage.js';
import { startMoto, type Moto } from '../../helpers/moto.js';
import { startTestIdp, type TestIdp } from './idp.js';

export const ACCOUNT = '123456789012';
/** The rules the broker tests rely on (deny bucket deletion, approve IAM, read-only reads no objects). */
const BROKER_POLICY = loadPolicies([join(__dirname, 'broker-policy.yaml')]);
export const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/guard-dev`;

/** moto_server with its request recorder on, so tests can read exactly what the broker sent to "AWS". */
export async function startRecordingMoto(dir: string): Promise<Moto & { recorded(): Promise<URLSearchParams[]> }> {
  const prev = process.env.MOTO_RECORDER_FILEPATH;
  process.env.MOTO_RECORDER_FILEPATH = join(dir, 'moto-recording.jsonl');
  const moto = await startMoto();
  if (prev === undefined) delete process.env.MOTO_RECORDER_FILEPATH;
  else process.env.MOTO_RECORDER_FILEPATH = prev;
  await fetch(`${moto.endpoint}/moto-api/recorder/start-recording`, { method: 'POST' });
  return Object.assign(moto, {
    /** STS query-protocol requests moto received (form bodies), in order. */
    async recorded(): Promise<URLSearchParams[]> {
      const text = await (await fetch(`${moto.endpoint}/moto-api/recorder/download-recording`)).text();
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { body: string; body_encoded: boolean })
        .map((e) => new URLSearchParams(e.body_encoded ? Buffer.from(e.body, 'base64').toString('utf8') : e.body ?? ''));
    },
  });
}

export interface BrokerEnvironment {
  dir: string;
  dbPath: string;
  moto: Awaited<ReturnType<typeof startRecordingMoto>>;
  idp: TestIdp;
  broker: RunningBroker;
  logs: BrokerLogEntry[];
  logText(): string;
  token(claims?: Record<string, unknown>): Promise<string>;
  post(path: string, body: unknown, token?: string | null, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

export async function startBrokerEnv(overrides: Partial<BrokerDeps> = {}, cfg: Partial<BrokerConfigInput> = {}): Promise<BrokerEnvironment> {
  const dir = mkdtempSync(join(tmpdir(), 'guard-broker-'));
  const dbPath = join(dir, 'broker.db');
  const moto = await startRecordingMoto(dir);
  const idp = await startTestIdp();
  const logs: BrokerLogEntry[] = [];
  const config = brokerConfigFrom(
    {
      listen: { host: '127.0.0.1', port: 0 },
      issuer: idp.issuer,
      audience: idp.audience,
      clientId: 'guard-aws-cli',
      jwksUri: idp.jwksUri,
      policies: ['unused.yaml'],
      storage: { sqlite: dbPath },
      targets: [
        { name: 'dev', roleArn: ROLE_ARN, region: 'us-east-1', endpoint: moto.endpoint, default: true },
        { name: 'partner', roleArn: 'arn:aws:iam::210987654321:role/guard-partner', region: 'eu-west-1', endpoint: moto.endpoint, externalId: 'ext-123' },
        // Nothing listens on port 9: STS calls fail.
        { name: 'broken', roleArn: ROLE_ARN, region: 'us-east-1', endpoint: 'http://127.0.0.1:9' },
      ],
      // These tests are about grants handed to the caller: every call runs locally unless a test says otherwise
      // (the defaults, broker for workloads and auto for people, are tested in test/broker/runs.test.ts).
      execution: { people: 'local', workloads: 'local' },
      ...cfg,
    },
    dir,
  );
  const broker = await startBroker(config, {
    store: await openSqliteStore({ path: dbPath }),
    // The real verifier (src/auth/verify.ts) against the test issuer's JWKS over HTTP.
    verify: createTokenVerifier({ issuer: config.issuer, audience: config.audience, ...(config.jwksUri ? { jwksUri: config.jwksUri } : {}), algorithms: config.algorithms }),
    // The real parser and decide() over a real policy file; tests inject faults through `overrides`
    // (see fake-core.ts).
    parse: parseInvocation,
    decide: (input) => decide(BROKER_POLICY, input),
    createStsClient: (t) =>
      new STSClient({
        region: t.region,
        ...(t.endpoint ? { endpoint: t.endpoint } : {}),
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        maxAttempts: 1,
      }),
    log: (e) => logs.push(e),
    ...overrides,
  });
  const env: BrokerEnvironment = {
    dir,
    dbPath,
    moto,
    idp,
    broker,
    logs,
    logText: () => logs.map((l) => JSON.stringify(l)).join('\n'),
    token: (claims = { sub: 'alice@example.com', groups: ['developers'], name: 'Alice' }) => idp.sign(claims),
    async post(path, body, token, headers = {}) {
      const h: Record<string, string> = { 'content-type': 'application/json', ...headers };
      if (token !== null) h.authorization = `Bearer ${token ?? (await env.token())}`;
      return fetch(`${broker.url}${path}`, { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
    },
    async stop() {
      await broker.close();
      await idp.close();
      await moto.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** A valid Ed25519 public key in the wire form (any 32 bytes pass validation; the grant only stores it). */
export const TRANSCRIPT_KEY = Buffer.alloc(32, 7).toString('base64url');
