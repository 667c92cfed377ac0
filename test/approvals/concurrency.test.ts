import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { migratedSqlite, testDatabases } from '../helpers/postgres.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { ApprovalService } from '../../src/approvals/service.js';
import { alice, approveDecision, bob, carol, dave, deleteBucket } from './fixtures.js';
import { transpileTree } from './helpers/transpile.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-approvals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.parse('2026-11-25T12:00:00Z');

describe('consume: exactly once, across connections', () => {
  it('a second connection sees the first one\'s use', async () => {
    const file = join(dir, 'seq.sqlite');
    const a = new ApprovalService(await migratedSqlite(file), { now: () => NOW });
    const b = new ApprovalService(await migratedSqlite(file), { now: () => NOW });
    const s = await a.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    await b.approve(s.id, bob);
    expect((await a.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' })).status).toBe('used');
    await expect(b.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' })).rejects.toThrow(
      expect.objectContaining({ code: 'approval_used' }) as unknown as GuardError,
    );
  });

  it('two transactions in two threads consuming the same approval at the same moment: exactly one wins, every time', async () => {
    const file = join(dir, 'race.sqlite');
    const main = new ApprovalService(await migratedSqlite(file), { now: () => NOW });
    // Inside node_modules: the transpiled store imports better-sqlite3 and pg, resolved from the repository's.
    const tree = transpileTree(join(repo, 'src'), ['approvals/service.ts', 'store/db.ts'], join(repo, 'node_modules'));
    const ROUNDS = 25;
    const barrier = new SharedArrayBuffer(4 * ROUNDS);
    const workers = ['w1', 'w2'].map(
      (name) =>
        new Worker(join(here, 'helpers/consume-worker.mjs'), {
          workerData: {
            name,
            dbFile: file,
            now: NOW,
            barrier,
            requester: alice,
            servicePath: tree.path('approvals/service.ts'),
            dbPath: tree.path('store/db.ts'),
          },
        }),
    );
    try {
      await Promise.all(workers.map((w) => new Promise((r, j) => (w.once('message', r), w.once('error', j)))));
      const invocation = deleteBucket();
      for (let round = 0; round < ROUNDS; round++) {
        const s = await main.open({ requester: alice, invocation: deleteBucket(`race-${round}`), target: 'prod', decision: approveDecision(), reason: '' });
        await main.approve(s.id, bob);
        const inv = { ...invocation, ...deleteBucket(`race-${round}`) };
        const results = await Promise.all(
          workers.map(
            (w) =>
              new Promise<string>((r, j) => {
                w.once('error', j);
                w.once('message', (m: { result: string }) => {
                  w.off('error', j);
                  r(m.result);
                });
                w.postMessage({ id: s.id, round, invocation: inv });
              }),
          ),
        );
        expect(results.sort()).toEqual(['approval_used', 'ok']);
        const used = (await main.get(s.id))!;
        expect(used.status).toBe('used');
        expect(['g-w1', 'g-w2']).toContain(used.grantId);
      }
      const db = new Database(file, { readonly: true });
      const perRequest = db.prepare(`SELECT approval_id, COUNT(*) AS n FROM approval_events WHERE kind = 'used' GROUP BY approval_id`).all() as { n: number }[];
      expect(perRequest.length).toBe(ROUNDS);
      expect(perRequest.every((r) => r.n === 1)).toBe(true);
      db.close();
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
      rmSync(tree.dir, { recursive: true, force: true });
    }
  });
});

// Several brokers on one PostgreSQL database: each "broker" here is its own connection pool and its own
// ApprovalService, as in separate processes; the requests race for real on the server (row locks, advisory locks).
describe('several brokers on one PostgreSQL database', () => {
  const dbs = testDatabases('postgres');
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());
  const brokers = async (key: string, n = 2) => {
    const out: ApprovalService[] = [];
    for (let i = 0; i < n; i++) out.push(new ApprovalService(await dbs.open(key), { now: () => NOW, maxPendingPerRequester: 3 }));
    return out;
  };
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof GuardError ? e.code : `error: ${(e as Error).message}`),
    );

  it('concurrent redemptions of one approval on two brokers: exactly one wins, every time', async () => {
    const [a, b] = await brokers('redeem');
    for (let round = 0; round < 25; round++) {
      const inv = deleteBucket(`race-${round}`);
      const s = await a!.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: '' });
      await b!.approve(s.id, bob);
      const results = await Promise.all([
        outcome(a!.consume(s.id, { requester: alice, invocation: inv, target: 'prod', grantId: 'g-a' })),
        outcome(b!.consume(s.id, { requester: alice, invocation: inv, target: 'prod', grantId: 'g-b' })),
      ]);
      expect(results.sort()).toEqual(['approval_used', 'ok']);
    }
    const rows = await dbs.open('redeem').then((db) => db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM approval_events WHERE kind = 'used' GROUP BY approval_id`));
    expect(rows.length).toBe(25);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });

  it('concurrent votes: the same approver on two brokers counts once; two approvers meet a quorum of two', async () => {
    const [a, b] = await brokers('votes');
    const s = await a!.open({ requester: alice, invocation: deleteBucket('votes'), target: 'prod', decision: approveDecision(2), reason: '' });
    const twice = await Promise.all([outcome(a!.approve(s.id, bob)), outcome(b!.approve(s.id, bob))]);
    expect(twice.sort()).toEqual(['approval_duplicate', 'ok']);
    expect((await a!.get(s.id))!.status).toBe('pending');
    const s2 = await a!.open({ requester: alice, invocation: deleteBucket('votes-2'), target: 'prod', decision: approveDecision(2), reason: '' });
    const both = await Promise.all([outcome(a!.approve(s2.id, bob)), outcome(b!.approve(s2.id, carol))]);
    expect(both).toEqual(['ok', 'ok']);
    const after = (await b!.get(s2.id))!;
    expect(after.status).toBe('approved');
    expect(after.approvals.map((v) => v.by).sort()).toEqual(['bob', 'carol']);
    // Self-approval stays refused whichever broker is asked.
    expect(await outcome(b!.approve(s2.id, alice))).toBe('self_approval');
  });

  it('the pending cap and the duplicate check hold across brokers', async () => {
    const [a, b] = await brokers('cap');
    // Ten different calls at once, split over two brokers: the cap (3) admits exactly three.
    const opened = await Promise.all(
      Array.from({ length: 10 }, (_, i) => outcome((i % 2 ? a! : b!).open({ requester: alice, invocation: deleteBucket(`cap-${i}`), target: 'prod', decision: approveDecision(), reason: '' }))),
    );
    expect(opened.filter((r) => r === 'ok').length).toBe(3);
    expect(opened.filter((r) => r === 'forbidden').length).toBe(7);
    // The same call asked on both brokers at once: one request, not two.
    const [x, y] = await brokers('dup');
    const same = await Promise.all([x!, y!].map((svc) => svc.open({ requester: dave, invocation: deleteBucket('same'), target: 'prod', decision: approveDecision(), reason: '' })));
    expect(same[0]!.id).toBe(same[1]!.id);
  });
});
