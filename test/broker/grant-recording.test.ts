import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/broker/storage.js';
import type { BrokerStore } from '../../src/store/types.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { TRANSCRIPT_KEY, startBrokerEnv, type BrokerEnvironment } from './helpers/broker-env.js';
import { withFaults } from './helpers/fake-core.js';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

// A grant that cannot be recorded is not handed out: the store below is the real SQLite store with its
// recordGrant failing the way a full disk would, and the parser's `huge …` fault (see helpers/fake-core.ts).
let env: BrokerEnvironment;
let dir: string;
let failing = true;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-rec-'));
  const real = await openSqliteStore({ path: join(dir, 'b.db') });
  const store: BrokerStore = Object.assign(Object.create(real) as BrokerStore, {
    db: real.db,
    recordGrant: async (r: Parameters<BrokerStore['recordGrant']>[0]) => {
      if (failing) throw new Error('SQLITE_FULL: database or disk is full');
      return real.recordGrant(r);
    },
    recordRefusal: (r: Parameters<BrokerStore['recordRefusal']>[0]) => real.recordRefusal(r),
    getGrant: (id: string) => real.getGrant(id),
    listGrants: (f?: Parameters<BrokerStore['listGrants']>[0]) => real.listGrants(f),
    listRefusals: (f?: Parameters<BrokerStore['listRefusals']>[0]) => real.listRefusals(f),
    close: () => real.close(),
  });
  env = await startBrokerEnv({ store, parse: withFaults(parseInvocation) });
});
afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('recording', () => {
  it('no record, no credentials: a failing store turns an allowed grant into a 500 without credentials', async () => {
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toMatch(/accessKeyId|secretAccessKey|sessionToken|SQLITE/);
    expect(env.logText()).toContain('SQLITE_FULL');
    failing = false;
    const ok = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: TRANSCRIPT_KEY });
    expect(ok.status).toBe(200);
  });

  it('every kind of refusal is recorded with its code', async () => {
    const send = (argv: string[], extra: Record<string, unknown> = {}) => env.post('/v1/grants', { argv, transcriptKey: TRANSCRIPT_KEY, ...extra });
    await send(['s3api', 'delete-bucket', '--bucket', 'b']);
    await send(['iam', 'delete-role', '--role-name', 'r']);
    await send(['nonsense']);
    await send(['sts', 'get-caller-identity'], { target: 'nope' });
    await send(['huge', 'x']);
    await send(['sts', 'get-caller-identity'], { target: 'broken' });
    const refusals = await env.broker.broker.ctx.store.listRefusals({ subject: 'alice@example.com' });
    expect(refusals.map((r) => r.code).sort()).toEqual(['approval_required', 'denied', 'policy_too_large', 'sts_failed', 'unknown_target', 'unparseable']);
    expect(refusals.find((r) => r.code === 'approval_required')).toMatchObject({ decision: 'approve', rule: 'iam-needs-approval' });
  });

  it('secret parameter values are masked in stored argv', async () => {
    await env.post('/v1/grants', { argv: ['nonsense', '--secret-string', 'hunter2-very-secret'], transcriptKey: TRANSCRIPT_KEY });
    const [r] = await env.broker.broker.ctx.store.listRefusals({ limit: 1 });
    expect(r!.argv).toEqual(['nonsense', '--secret-string', '<masked>']);
  });
});
