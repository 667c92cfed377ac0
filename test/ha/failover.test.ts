import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoto, type Moto } from '../helpers/moto.js';
import { startTestIdp, type TestIdp } from '../broker/helpers/idp.js';
import { clientEnv, runCli, startBrokerProc, type BrokerProc } from './brokers.js';

// Client failover between real brokers (issue 9; the rule is in src/api/broker-urls.ts): broker processes of the
// built CLI, killed with SIGKILL, real moto_server as STS, the built client with GUARD_AWS_BROKER listing several
// URLs. Each broker here has its own SQLite file (what a broker did is read from it); the brokers sharing one
// PostgreSQL are in test/ha/cluster.test.ts. Needs a build.

let dir: string;
let moto: Moto;
let idp: TestIdp;
let a: BrokerProc;
let b: BrokerProc;
let token: string;
const others: BrokerProc[] = [];
const servers: Server[] = [];

const db = (name: string) => join(dir, name, 'broker.db');
function count(name: string, sql: string): number {
  const d = new Database(db(name), { readonly: true });
  try {
    return (d.prepare(sql).get() as { n: number }).n;
  } finally {
    d.close();
  }
}
const grants = (name: string) => count(name, 'SELECT COUNT(*) AS n FROM grants');
const transcripts = (name: string) => count(name, "SELECT COUNT(*) AS n FROM audit_log WHERE kind = 'transcript'");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-ha-failover-'));
  moto = await startMoto();
  idp = await startTestIdp();
  const start = (name: string) => startBrokerProc({ name, dir, idp, stsEndpoint: moto.endpoint, storage: `{ sqlite: ${db(name)} }` });
  [a, b] = await Promise.all([start('a'), start('b')]);
  token = await idp.sign({ sub: 'dana@example.com', groups: ['developers', 'auditors'] }, { expiresIn: '1h' });
}, 60_000);
afterAll(async () => {
  for (const p of [a, b, ...others]) await p?.kill();
  for (const s of servers) s.close();
  await idp?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('several brokers in GUARD_AWS_BROKER', () => {
  it('kill -9 of the first broker: the call is granted and recorded by the next one, which is then asked first', async () => {
    expect((await runCli(['sts', 'get-caller-identity'], clientEnv(dir, `${a.url},${b.url}`, token, { XDG_CACHE_HOME: join(dir, 'cache-1') }))).status).toBe(0);
    expect(grants('a')).toBe(1);
    expect(grants('b')).toBe(0);

    await a.kill('SIGKILL');
    const env = clientEnv(dir, `${a.url},${b.url}`, token, { XDG_CACHE_HOME: join(dir, 'cache-1') });
    const r = await runCli(['sts', 'get-caller-identity'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).Account).toBe('123456789012');
    expect(grants('b')).toBe(1);
    expect(transcripts('b')).toBe(1);
    // The next process reads which broker answered: it does not start with the dead one.
    const pick = JSON.parse(readFileSync(join(dir, 'cache-1', 'guard-aws', 'broker-pick.json'), 'utf8')) as { url: string };
    expect(pick.url).toBe(b.url);
    const again = await runCli(['approvals', 'list', '--json'], env);
    expect(again.status, again.stderr).toBe(0);
  }, 90_000);

  it('a broker that took the grant request and died before answering: not asked again elsewhere (exit 69)', async () => {
    // Broker c reaches STS through this proxy; the moment it calls STS (it is working on the grant, the request is
    // in), it is killed with SIGKILL: the client's connection breaks with the request delivered.
    let c: BrokerProc | undefined;
    let stsCalls = 0;
    const proxy = createServer((s: Socket) => {
      stsCalls++;
      s.on('error', () => undefined);
      void c?.kill('SIGKILL').then(() => s.destroy());
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    c = await startBrokerProc({ name: 'c', dir, idp, stsEndpoint: proxyUrl, storage: `{ sqlite: ${db('c')} }` });
    others.push(c);
    const before = grants('b');
    const r = await runCli(['sts', 'get-caller-identity'], clientEnv(dir, `${c.url},${b.url}`, token, { XDG_CACHE_HOME: join(dir, 'cache-2') }));
    expect(stsCalls).toBeGreaterThanOrEqual(1);
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/took the POST v1\/runs request and broke off before answering/);
    expect(r.stderr).toMatch(/not sent to another broker/);
    expect(grants('b')).toBe(before);
    expect(existsSync(join(dir, 'cache-2', 'guard-aws', 'broker-pick.json'))).toBe(false);
  }, 90_000);

  it('every broker down: exit 69 naming each', async () => {
    const r = await runCli(['sts', 'get-caller-identity'], clientEnv(dir, `${a.url},${others[0]!.url}`, token, { XDG_CACHE_HOME: join(dir, 'cache-3') }));
    expect(r.status).toBe(69);
    expect(r.stderr).toContain(`no broker reachable: ${a.url}: ECONNREFUSED; ${others[0]!.url}: ECONNREFUSED`);
  }, 60_000);
});
