import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantResponse } from '../../src/api/types.js';
import { auditRoutes } from '../../src/broker/routes/audit.js';
import { createTranscriptKey } from '../../src/transcript/sign.js';
import { flushSpool } from '../../src/transcript/spool.js';
import { createTranscriptUploader } from '../../src/transcript/upload.js';
import { startBrokerEnv, type BrokerEnvironment } from '../broker/helpers/broker-env.js';
import { spoolGranted, tempDir } from '../transcript/helpers.js';

// The staging sweep (src/audit/bodies/staging.ts) on a real broker over HTTP with a real SQLite file and the file
// body store: files are aged with utimesSync (their mtime is what the sweep reads), the sweep is run through the
// route module (as its hourly timer does) and once by the broker's start.
let env: BrokerEnvironment;
const module = auditRoutes({ stagingSweepMs: 0 });
const bodiesDir = tempDir('guard-sweep-bodies-');
const staging = join(bodiesDir, 'staging');
const alice = () => env.token({ sub: 'alice@example.com', groups: ['developers'] });
const DAY = 86_400_000;
/** Sets a file's mtime `ms` in the past. */
const age = (path: string, ms: number) => utimesSync(path, new Date(Date.now() - ms), new Date(Date.now() - ms));
const MARK = 'OUTPUT-THAT-MUST-NOT-BE-LOGGED';

// Left by "a previous broker process": a run it crashed in, an upload a client gave up on, a half-hashed put.
const leftovers = {
  'crashed-run.body': Buffer.from(`GAWSBODY1\n${MARK}`),
  'crashed-run.body.tail': Buffer.alloc(1000, 1),
  'upload-abandoned': Buffer.from(MARK),
  'upload-abandoned.json': Buffer.from('{"sha256":"00","size":1,"subject":"x"}'),
  'put-AbCd_123': Buffer.alloc(10),
};

beforeAll(async () => {
  mkdirSync(staging, { recursive: true });
  for (const [name, b] of Object.entries(leftovers)) {
    writeFileSync(join(staging, name), b);
    age(join(staging, name), 2 * DAY);
  }
  // Not the broker's (its name is none it writes): never touched, however old.
  writeFileSync(join(staging, 'operator-notes.txt'), 'mine');
  age(join(staging, 'operator-notes.txt'), 30 * DAY);
  // A run body written a minute ago (another broker sharing the directory, still running).
  writeFileSync(join(staging, 'live-run.body'), 'GAWSBODY1\n');
  age(join(staging, 'live-run.body'), 60_000);
  env = await startBrokerEnv({ routes: [module] }, { transcripts: { maxBodyBytes: 64 * 1024 * 1024, stagingTtlHours: 24, store: { type: 'file', dir: bodiesDir } } });
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function spooled(bytes: number) {
  const key = createTranscriptKey();
  const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: key.publicKey }, await alice());
  expect(res.status).toBe(200);
  const g = (await res.json()) as GrantResponse;
  const { spoolDir, envelope, bodyFile } = spoolGranted(g, key, bytes);
  const body = envelope.transcript.body!;
  return { g, spoolDir, envelope, bytes: readFileSync(bodyFile), q: `sha256=${body.sha256}&size=${body.size}` };
}

async function put(grantId: string, q: string, body: Buffer): Promise<[number, { offset?: number; error?: { code: string; offset?: number } }]> {
  const r = await fetch(`${env.broker.url}/v1/transcripts/${grantId}/body?${q}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await alice()}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
  return [r.status, (await r.json()) as never];
}

async function offset(grantId: string, q: string): Promise<number> {
  const r = await fetch(`${env.broker.url}/v1/transcripts/${grantId}/body?${q}`, { headers: { authorization: `Bearer ${await alice()}` } });
  return ((await r.json()) as { offset: number }).offset;
}

const upload = (grantId: string) => join(staging, `upload-${grantId}`);

describe('staging sweep (transcripts.stagingTtlHours)', () => {
  it('at broker start: removes what a previous process left older than the TTL, logs counts only, keeps fresh and foreign files', () => {
    for (const name of Object.keys(leftovers)) expect(existsSync(join(staging, name)), name).toBe(false);
    expect(existsSync(join(staging, 'operator-notes.txt'))).toBe(true);
    expect(existsSync(join(staging, 'live-run.body'))).toBe(true);
    const bytes = Object.values(leftovers).reduce((n, b) => n + b.length, 0);
    expect(env.logs.filter((l) => l.msg === 'stale transcript staging files removed')).toEqual([
      { level: 'info', msg: 'stale transcript staging files removed', files: 5, bytes },
    ]);
    expect(env.logText()).not.toContain(MARK);
  });

  it('an upload in progress is not swept (its newest chunk is recent, or this process is writing it); an abandoned one is', async () => {
    const live = await spooled(300 * 1024);
    const dead = await spooled(300 * 1024);
    expect(await put(live.g.grantId, `${live.q}&offset=0`, live.bytes.subarray(0, 100_000))).toEqual([200, { offset: 100_000 }]);
    expect(await put(dead.g.grantId, `${dead.q}&offset=0`, dead.bytes.subarray(0, 100_000))).toEqual([200, { offset: 100_000 }]);
    // The live upload's claim was written at its start, long ago; its data got a chunk a minute ago.
    age(`${upload(live.g.grantId)}.json`, 2 * DAY);
    age(upload(live.g.grantId), 60_000);
    // The dead one: nothing for 25 hours.
    age(upload(dead.g.grantId), 25 * 3_600_000);
    age(`${upload(dead.g.grantId)}.json`, 25 * 3_600_000);
    // A broker run's body this process is writing, silent for two days (a run that prints nothing): held.
    const runBody = join(staging, 'quiet-run.body');
    writeFileSync(runBody, 'GAWSBODY1\n');
    writeFileSync(`${runBody}.tail`, '');
    age(runBody, 2 * DAY);
    age(`${runBody}.tail`, 2 * DAY);
    const release = module.bodies!.hold(runBody);

    const deadClaim = readFileSync(`${upload(dead.g.grantId)}.json`).length;
    const r = module.sweepStaging();
    expect(r).toEqual({ files: 2, bytes: 100_000 + deadClaim });
    expect(existsSync(upload(dead.g.grantId))).toBe(false);
    expect(existsSync(`${upload(dead.g.grantId)}.json`)).toBe(false);
    expect(existsSync(upload(live.g.grantId))).toBe(true);
    expect(existsSync(`${upload(live.g.grantId)}.json`)).toBe(true);
    expect(existsSync(runBody)).toBe(true);
    // The live upload goes on from where it was.
    expect(await offset(live.g.grantId, live.q)).toBe(100_000);
    expect(await put(live.g.grantId, `${live.q}&offset=100000`, live.bytes.subarray(100_000))).toEqual([200, { offset: live.bytes.length }]);
    expect((await env.post('/v1/transcripts', live.envelope, await alice())).status).toBe(201);

    // Released (the run ended without adopting it: the broker crashed before, say), the old body goes.
    release();
    expect(module.sweepStaging()).toEqual({ files: 2, bytes: 'GAWSBODY1\n'.length });
    expect(existsSync(runBody)).toBe(false);
  });

  it('a swept upload resumed restarts from 0 (never a partial body adopted); the final record verifies', async () => {
    const s = await spooled(600 * 1024);
    expect(await put(s.g.grantId, `${s.q}&offset=0`, s.bytes.subarray(0, 200_000))).toEqual([200, { offset: 200_000 }]);
    age(upload(s.g.grantId), 2 * DAY);
    age(`${upload(s.g.grantId)}.json`, 2 * DAY);
    expect(module.sweepStaging().files).toBe(2);

    // The client comes back: the broker has nothing; a chunk at the old offset is refused with where to start.
    expect(await offset(s.g.grantId, s.q)).toBe(0);
    const [st, resumed] = await put(s.g.grantId, `${s.q}&offset=200000`, s.bytes.subarray(200_000, 400_000));
    expect([st, resumed.error?.code, resumed.error?.offset]).toEqual([409, 'body_offset', 0]);
    // The transcript before its body is whole again: refused, nothing recorded.
    const early = await env.post('/v1/transcripts', s.envelope, await alice());
    expect([early.status, ((await early.json()) as { error: { code: string } }).error.code]).toEqual([409, 'transcript_body_missing']);
    expect(await module.service!.log.getByGrant(s.g.grantId)).toBeUndefined();

    // Only the sweep's half: the claim is gone but data is there (another broker removed the claim first) — a fresh
    // start never continues data it has no claim for.
    expect(await put(s.g.grantId, `${s.q}&offset=0`, s.bytes.subarray(0, 100_000))).toEqual([200, { offset: 100_000 }]);
    rmSync(`${upload(s.g.grantId)}.json`);
    expect(await offset(s.g.grantId, s.q)).toBe(0);
    expect(await put(s.g.grantId, `${s.q}&offset=0`, s.bytes.subarray(0, 50_000))).toEqual([200, { offset: 50_000 }]);

    // The client's uploader starts over from the broker's offset and finishes; the record binds the whole body.
    const r = await flushSpool({ spoolDir: s.spoolDir, upload: createTranscriptUploader({ brokerUrl: env.broker.url, getToken: alice, chunkBytes: 256 * 1024 }) });
    expect(r.uploaded).toEqual([{ grantId: s.g.grantId, status: 'complete', outcome: 'recorded' }]);
    const rec = (await module.service!.log.getByGrant(s.g.grantId))!;
    expect(JSON.parse(rec.body).body).toMatchObject({ sha256: s.envelope.transcript.body!.sha256, size: s.bytes.length });
    const v = (await (await fetch(`${env.broker.url}/v1/audit/verify?bodies=true`, { headers: { authorization: `Bearer ${await env.token({ sub: 'carol', groups: ['auditors'] })}` } })).json()) as {
      ok: boolean;
      bodies: { ok: boolean; checked: number };
    };
    expect(v.ok).toBe(true);
    expect(v.bodies).toMatchObject({ ok: true, checked: 2 });
  });

  it('runs periodically on its own (stagingSweepMs), not only at start', async () => {
    const dir = tempDir('guard-sweep-timer-');
    const m = auditRoutes({ stagingSweepMs: 50 });
    const other = await startBrokerEnv({ routes: [m] }, { transcripts: { stagingTtlHours: 1, store: { type: 'file', dir } } });
    try {
      const orphan = join(dir, 'staging', 'run_orphan.body');
      writeFileSync(orphan, 'GAWSBODY1\n');
      age(orphan, 2 * 3_600_000);
      for (let i = 0; i < 100 && existsSync(orphan); i++) await new Promise((r) => setTimeout(r, 20));
      expect(existsSync(orphan)).toBe(false);
      expect(other.logs.some((l) => l.msg === 'stale transcript staging files removed' && l.files === 1)).toBe(true);
    } finally {
      await other.stop();
    }
  }, 60_000);
});
