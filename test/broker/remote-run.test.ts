import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/api/http-error.js';
import { DEFAULT_EXECUTION } from '../../src/broker/execution.js';
import type { Issued } from '../../src/broker/issue.js';
import { RunRegistry } from '../../src/broker/remote-run.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';

// The run registry's bounds, without running aws: a decided run that is never started, the concurrency cap, the
// stdin cap. (Runs that do run aws are covered end to end in test/e2e/remote-run.test.ts.) The Issued value is
// built by hand: only its secret-free facts are read on these paths.
function issued(): Issued {
  const invocation = parseInvocation(['s3', 'cp', '-', 's3://b/k'], { account: '123456789012', region: 'us-east-1' });
  return {
    grantId: 'grt_AAAAAAAAAAAAAAAAAAAAAA',
    target: { name: 'dev', roleArn: 'arn:aws:iam::123456789012:role/x', account: '123456789012', region: 'us-east-1', default: true },
    invocation,
    decision: { decision: 'allow', rule: 'r', reason: 'ok' },
    cli: { version: '1.45.11', table: 'v1', tableVersion: '1.45.11' } as Issued['cli'],
    execution: { mode: 'broker', where: 'broker', reasons: [] },
    credentials: { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 's', sessionToken: 't', expiration: new Date(Date.now() + 900_000).toISOString() },
    sessionPolicy: '{}',
    approvalId: undefined,
    grantResponse: () => {
      throw new Error('never');
    },
  };
}

function registry(cfg: Partial<typeof DEFAULT_EXECUTION>, attested: TranscriptEnvelope[]) {
  return new RunRegistry(
    { attest: async (e) => (attested.push(e), { id: `rec-${attested.length}` }) },
    () => ({ ...DEFAULT_EXECUTION, ...cfg }),
    undefined,
    () => undefined,
  );
}
const create = (r: RunRegistry, stdin = false) =>
  r.create({ owner: 'alice', issued: issued(), files: new Map(), cwd: '/', home: undefined, key: r.newKey(), stdin, plan: { inputs: [], outputs: [] } });

describe('remote runs: bounds', () => {
  it('a run not started within execution.startWithinSec is dropped, recorded as never run, its directory removed', async () => {
    const attested: TranscriptEnvelope[] = [];
    const r = registry({ startWithinSec: 1 }, attested);
    const v = create(r);
    const dir = (r as unknown as { runs: Map<string, { dir: string }> }).runs.get(v.runId)!.dir;
    expect(existsSync(dir)).toBe(true);
    await new Promise((res) => setTimeout(res, 1300));
    expect(existsSync(dir)).toBe(false);
    expect(attested).toHaveLength(1);
    expect(attested[0]!.transcript).toMatchObject({ grantId: 'grt_AAAAAAAAAAAAAAAAAAAAAA', status: 'partial', endedAt: null, exitCode: null, chunks: [] });
    expect(() => r.start(v.runId, 'alice')).toThrow(ApiError);
  });

  it('past execution.maxConcurrent the next run is refused with 429 too_many_runs', () => {
    const r = registry({ maxConcurrent: 2 }, []);
    create(r);
    create(r);
    let e: unknown;
    try {
      r.checkCapacity();
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe('too_many_runs');
    r.close();
  });

  it('stdin past execution.maxStdinBytes fails with 413, and only the owner may send it', async () => {
    const r = registry({ maxStdinBytes: 1000 }, []);
    const v = create(r, true);
    await expect(r.feed(v.runId, 'mallory', Readable.from([Buffer.alloc(10)]))).rejects.toMatchObject({ code: 'not_found' });
    await expect(r.feed(v.runId, 'alice', Readable.from([Buffer.alloc(600), Buffer.alloc(600)]))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(r.feed(v.runId, 'alice', Readable.from([Buffer.alloc(1)]))).rejects.toMatchObject({ code: 'run_state' });
    r.close();
  });
});
