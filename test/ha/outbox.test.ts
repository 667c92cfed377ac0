import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyPath, loadOrCreateBrokerKey, recordKeyInHistory } from '../../src/audit/broker-key.js';
import { openPostgresDb } from '../../src/store/db.js';
import { createTranscriptKey } from '../../src/transcript/sign.js';
import { verifyWebhookSignature } from '../../src/approvals/webhook.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { HAVE_POSTGRES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTestIdp, type TestIdp } from '../broker/helpers/idp.js';
import { startBrokerProc, type BrokerProc } from './brokers.js';

// The webhook outbox with three real broker processes on one PostgreSQL and a real HTTP receiver on loopback that
// checks each delivery's signature and counts deliveries per event id (src/approvals/outbox.ts). Needs a build and
// PostgreSQL.

const SECRET = 'outbox-test-secret-0123456789abcdef0123456789';
let dir: string;
let pg: TestPostgres;
let moto: Moto;
let idp: TestIdp;
let receiver: Server;
let receiverUrl: string;
const brokers: BrokerProc[] = [];
const tokens: Record<string, string> = {};
/** Delivery id → how many POSTs carried it; and the event type of each. */
const seen = new Map<string, number>();
const types = new Map<string, string>();
let badSignatures = 0;
/** When set, the receiver holds requests of this event type open instead of answering (the broker is killed then). */
let holdType: string | undefined;
const held: ServerResponse[] = [];

function onDelivery(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const ok = verifyWebhookSignature({ secret: SECRET, body, timestamp: req.headers['x-guard-aws-timestamp'] as string, signature: req.headers['x-guard-aws-signature'] as string });
    if (!ok) badSignatures++;
    const id = req.headers['x-guard-aws-delivery'] as string;
    const type = req.headers['x-guard-aws-event'] as string;
    expect(JSON.parse(body.toString('utf8')).deliveryId).toBe(id);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    types.set(id, type);
    if (holdType && type === holdType) {
      held.push(res);
      return;
    }
    res.writeHead(204).end();
  });
}

const spec = (name: string) => ({
  name,
  dir,
  idp,
  stsEndpoint: moto.endpoint,
  storage: `{ postgres: { url: "${pg.url}", poolSize: 6 }, auditKeyFile: ${join(dir, name, 'audit-key.pem')} }`,
  env: { GUARD_AWS_WEBHOOK_SECRET: SECRET },
  // Short per-attempt deadline: a claim lapses after 2 × 1 s + 5 s when its broker died.
  extraYaml: `approvals:\n  webhook: { url: "${receiverUrl}", format: json, timeoutMs: 1000, baseDelayMs: 200, maxDelayMs: 1000 }\n`,
});

async function ask(b: BrokerProc, bucket: string): Promise<string> {
  const res = await fetch(`${b.url}/v1/grants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' },
    body: JSON.stringify({ argv: ['s3api', 'delete-bucket', '--bucket', bucket], transcriptKey: createTranscriptKey().publicKey, reason: 'outbox test' }),
  });
  const j = (await res.json()) as { error: { approval: { id: string } } };
  expect(res.status, JSON.stringify(j)).toBe(403);
  if (!j.error?.approval) throw new Error(JSON.stringify(j));
  return j.error.approval.id;
}
const approve = (b: BrokerProc, id: string) =>
  fetch(`${b.url}/v1/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob}`, 'content-type': 'application/json' }, body: '{}' });

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms: number) {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-ha-outbox-'));
  receiver = createServer(onDelivery);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  [pg, moto, idp] = await Promise.all([startPostgres(), startMoto(), startTestIdp()]);
  const master = join(dir, 'audit-key.pem');
  recordKeyInHistory(master, loadOrCreateBrokerKey(master));
  for (const n of ['a', 'b', 'c']) {
    mkdirSync(join(dir, n), { recursive: true, mode: 0o700 });
    copyFileSync(master, join(dir, n, 'audit-key.pem'));
    copyFileSync(historyPath(master), historyPath(join(dir, n, 'audit-key.pem')));
  }
  brokers.push(...(await Promise.all(['a', 'b', 'c'].map((n) => startBrokerProc(spec(n))))));
  tokens.alice = await idp.sign({ sub: 'alice@example.com', groups: ['developers'] }, { expiresIn: '1h' });
  tokens.bob = await idp.sign({ sub: 'bob@example.com', groups: ['approvers'] }, { expiresIn: '1h' });
}, 120_000);
afterAll(async () => {
  for (const r of held) r.destroy();
  for (const b of brokers) await b.kill('SIGKILL');
  receiver?.close();
  await idp?.close();
  await moto?.stop();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Skipped only without PostgreSQL's binaries; scripts/setup-system.sh installs them, so CI runs it.
describe.skipIf(!HAVE_POSTGRES)('webhook outbox with three brokers', () => {
  it('each event is delivered exactly once, whichever broker made the change', async () => {
    const ids = await Promise.all(Array.from({ length: 15 }, (_, i) => ask(brokers[i % 3]!, `e2e-outbox-${i}`)));
    await Promise.all(ids.map((id, i) => approve(brokers[(i + 1) % 3]!, id)));
    // 15 requested + 15 approved events (15: one requester may have 20 requests open, across brokers too).
    await waitFor('30 deliveries', () => seen.size >= 30, 30_000);
    await new Promise((r) => setTimeout(r, 1500)); // a duplicate would arrive within a poll or two
    expect(seen.size).toBe(30);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect([...types.values()].filter((t) => t === 'approval.requested')).toHaveLength(15);
    expect(badSignatures).toBe(0);
    // Every row is marked delivered, none failed or left claimed.
    const db = await openPostgresDb({ url: pg.url, poolSize: 1 });
    try {
      const left = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL');
      expect(Number(left?.n)).toBe(0);
    } finally {
      await db.close();
    }
  }, 90_000);

  it('the delivering broker killed -9 before it marked the event: another broker delivers it again (at-least-once, same id)', async () => {
    holdType = 'approval.approved';
    const id = await ask(brokers[0]!, 'e2e-outbox-kill');
    await approve(brokers[1]!, id);
    await waitFor('the approval event to arrive (held open)', () => held.length === 1, 20_000);
    // Which broker holds it: the claim names its process.
    const db = await openPostgresDb({ url: pg.url, poolSize: 1 });
    let deliveryId: string;
    try {
      const row = await db.get<{ id: string; claimed_by: string }>("SELECT id, claimed_by FROM webhook_outbox WHERE type = 'approval.approved' AND delivered_at IS NULL");
      deliveryId = row!.id;
      const pid = Number(row!.claimed_by.split('-')[0]);
      const victim = brokers.find((b) => b.child.pid === pid)!;
      expect(victim, `claim ${row!.claimed_by}`).toBeDefined();
      holdType = undefined;
      await victim.kill('SIGKILL');
      held.splice(0).forEach((r) => r.destroy());
      // The claim lapses (2 × 1 s + 5 s) and a live broker delivers the same event, with the same delivery id.
      await waitFor('the redelivery', () => (seen.get(deliveryId) ?? 0) >= 2, 30_000);
      expect(seen.get(deliveryId)).toBe(2);
      await waitFor('the row marked delivered', async () => (await db.get<{ d: unknown }>('SELECT delivered_at AS d FROM webhook_outbox WHERE id = ?', [deliveryId]))?.d != null, 10_000);
    } finally {
      await db.close();
    }
  }, 90_000);
});
