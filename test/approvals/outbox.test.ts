import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueWebhook, startOutboxWorker, type OutboxWorker } from '../../src/approvals/outbox.js';
import { verifyWebhookSignature } from '../../src/approvals/webhook.js';
import type { ApprovalNotification } from '../../src/approvals/service.js';
import type { Db } from '../../src/store/db.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

// The webhook outbox on both stores (src/approvals/outbox.ts): two delivery workers on one database (two brokers)
// against a real HTTP receiver on loopback. The three-broker process test is test/ha/outbox.test.ts.

const SECRET = 'outbox-unit-secret-0123456789abcdef01234567';
const summary = (id: string) => ({ id, status: 'pending', requester: 'alice', argv: ['s3', 'ls'], target: 'dev', approvals: [] }) as unknown as ApprovalNotification['approval'];
const note = (id: string): ApprovalNotification => ({ kind: 'opened', at: new Date(0).toISOString(), actor: 'alice', approval: summary(id) });

let receiver: Server;
let url: string;
let answer: (n: number) => number = () => 204;
const hits: { id: string; ok: boolean }[] = [];
beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ok = verifyWebhookSignature({ secret: SECRET, body: Buffer.concat(chunks), timestamp: req.headers['x-guard-aws-timestamp'] as string, signature: req.headers['x-guard-aws-signature'] as string });
      hits.push({ id: req.headers['x-guard-aws-delivery'] as string, ok });
      res.writeHead(answer(hits.length)).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
});
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

describe.each(DIALECTS)('webhook outbox on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  const workers: OutboxWorker[] = [];
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.close();
    hits.length = 0;
    answer = () => 204;
  });

  // PostgreSQL: two pools on one schema (two brokers). SQLite: two workers on the one handle of its one broker
  // (two connections in one process would wait on each other's write lock synchronously, which brokers in
  // separate processes never do).
  let n = 0;
  const twoBrokers = async (): Promise<[Db, Db]> => {
    if (dialect === 'sqlite') {
      const db = await dbs.open(`outbox-${++n}`);
      return [db, db];
    }
    const key = `outbox-${++n}`;
    return [await dbs.open(key), await dbs.open(key)];
  };
  const worker = (db: Db, o: { maxAttempts?: number } = {}) => {
    const w = startOutboxWorker(db, { url, secret: SECRET, timeoutMs: 2000, baseDelayMs: 20, maxDelayMs: 50, ...o }, { pollMs: 25, random: () => 0 });
    workers.push(w);
    return w;
  };
  const waitFor = async (ok: () => boolean, ms = 15_000) => {
    const until = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > until) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('two brokers deliver each of 40 events exactly once, signed, and mark every row delivered', async () => {
    const [a, b] = await twoBrokers();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await a.transaction((tx) => enqueueWebhook(tx, note(`apr_${i}`), Date.now())));
    worker(a);
    worker(b);
    await waitFor(() => hits.length >= 40);
    await new Promise((r) => setTimeout(r, 150)); // a double delivery would show up within a few polls
    expect(hits.map((h) => h.id).sort()).toEqual([...ids].sort());
    expect(hits.every((h) => h.ok)).toBe(true);
    const left = await a.get<{ n: number }>('SELECT COUNT(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL');
    expect(Number(left!.n)).toBe(0);
  });

  it('an event whose transaction rolled back is never delivered', async () => {
    const [a] = await twoBrokers();
    await expect(
      a.transaction(async (tx) => {
        await enqueueWebhook(tx, note('apr_rolled_back'), Date.now());
        throw new Error('the approval change failed');
      }),
    ).rejects.toThrow('the approval change failed');
    worker(a);
    await new Promise((r) => setTimeout(r, 200));
    expect(hits).toEqual([]);
  });

  it('5xx answers are retried with backoff (same delivery id) until one succeeds; a 4xx is final', async () => {
    const [a, b] = await twoBrokers();
    answer = (k) => (k <= 2 ? 503 : 204);
    const id = await a.transaction((tx) => enqueueWebhook(tx, note('apr_retry'), Date.now()));
    worker(a);
    worker(b);
    await waitFor(() => hits.length >= 3);
    expect(hits.map((h) => h.id)).toEqual([id, id, id]);
    const row = await a.get<{ attempts: number; delivered_at: number | null }>('SELECT attempts, delivered_at FROM webhook_outbox WHERE id = ?', [id]);
    expect(Number(row!.attempts)).toBe(3);
    expect(row!.delivered_at).not.toBeNull();

    hits.length = 0;
    answer = () => 410;
    const gone = await a.transaction((tx) => enqueueWebhook(tx, note('apr_gone'), Date.now()));
    await waitFor(() => hits.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(hits).toHaveLength(1);
    const failed = await a.get<{ failed_at: number | null; last_error: string }>('SELECT failed_at, last_error FROM webhook_outbox WHERE id = ?', [gone]);
    expect(failed!.failed_at).not.toBeNull();
    expect(failed!.last_error).toBe('HTTP 410');
  });
});
