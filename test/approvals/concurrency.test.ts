import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { ApprovalService } from '../../src/approvals/service.js';
import { alice, approveDecision, bob, deleteBucket } from './fixtures.js';
import { transpileTree } from './helpers/transpile.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');
const dir = mkdtempSync(join(tmpdir(), 'guard-aws-approvals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.parse('2026-11-25T12:00:00Z');

describe('consume: exactly once, across connections', () => {
  it('a second connection sees the first one\'s use', () => {
    const file = join(dir, 'seq.sqlite');
    const a = new ApprovalService(new Database(file), { now: () => NOW });
    const b = new ApprovalService(new Database(file), { now: () => NOW });
    const s = a.open({ requester: alice, invocation: deleteBucket(), target: 'prod', decision: approveDecision(), reason: '' });
    b.approve(s.id, bob);
    expect(a.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' }).status).toBe('used');
    expect(() => b.consume(s.id, { requester: alice, invocation: deleteBucket(), target: 'prod' })).toThrow(
      expect.objectContaining({ code: 'approval_used' }) as unknown as GuardError,
    );
  });

  it('two transactions in two threads consuming the same approval at the same moment: exactly one wins, every time', async () => {
    const file = join(dir, 'race.sqlite');
    const main = new ApprovalService(new Database(file), { now: () => NOW });
    const tree = transpileTree(join(repo, 'src'), 'approvals/service.ts');
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
            requireFrom: join(repo, 'package.json'),
          },
        }),
    );
    try {
      await Promise.all(workers.map((w) => new Promise((r, j) => (w.once('message', r), w.once('error', j)))));
      const invocation = deleteBucket();
      for (let round = 0; round < ROUNDS; round++) {
        const s = main.open({ requester: alice, invocation: deleteBucket(`race-${round}`), target: 'prod', decision: approveDecision(), reason: '' });
        main.approve(s.id, bob);
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
        const used = main.get(s.id)!;
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
