import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantResponse } from '../../src/api/types.js';
import { auditRoutes } from '../../src/broker/routes/audit.js';
import { createTranscriptKey, type TranscriptKey } from '../../src/transcript/sign.js';
import { flushSpool } from '../../src/transcript/spool.js';
import { createTranscriptUploader } from '../../src/transcript/upload.js';
import { startBrokerEnv, type BrokerEnvironment } from '../broker/helpers/broker-env.js';
import { spoolGranted } from '../transcript/helpers.js';

// The chunked, resumable body upload on real parts: the broker over HTTP with a real SQLite file and the file body
// store beside it, the client's uploader over node:http, and a real client process killed with SIGKILL part-way.
const repoRoot = resolve(__dirname, '../..');
let env: BrokerEnvironment;
const module = auditRoutes();
const alice = () => env.token({ sub: 'alice@example.com', groups: ['developers'] });
const bob = () => env.token({ sub: 'bob@example.com', groups: ['developers'] });

beforeAll(async () => {
  // A 64 MiB limit, so a body over it is cheap to claim.
  env = await startBrokerEnv({ routes: [module] }, { transcripts: { maxBodyBytes: 64 * 1024 * 1024 } });
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function grant(): Promise<{ g: GrantResponse; key: TranscriptKey }> {
  const key = createTranscriptKey();
  const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: key.publicKey }, await alice());
  expect(res.status).toBe(200);
  return { g: (await res.json()) as GrantResponse, key };
}

/** One run's transcript in a fresh spool, `bytes` of output (random: incompressible, every byte counts). */
async function spooled(bytes: number) {
  const { g, key } = await grant();
  return { g, ...spoolGranted(g, key, bytes) };
}

const staged = (grantId: string) => join(`${env.dbPath}.bodies`, 'staging', `upload-${grantId}`);

async function put(grantId: string, q: string, body: Buffer, token: string): Promise<[number, { offset?: number; error?: { code: string; offset?: number } }]> {
  const r = await fetch(`${env.broker.url}/v1/transcripts/${grantId}/body?${q}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
  return [r.status, (await r.json()) as never];
}

describe('transcript body upload (PUT /v1/transcripts/{grant}/body)', () => {
  it('acknowledges each chunk with the new offset; a chunk at another offset gets 409 body_offset with the broker\'s', async () => {
    const s = await spooled(300 * 1024);
    const b = s.envelope.transcript.body!;
    const bytes = readFileSync(s.bodyFile);
    const q = `sha256=${b.sha256}&size=${b.size}`;
    const got = await fetch(`${env.broker.url}/v1/transcripts/${s.g.grantId}/body?${q}`, { headers: { authorization: `Bearer ${await alice()}` } });
    expect(await got.json()).toEqual({ offset: 0 });
    expect(await put(s.g.grantId, `${q}&offset=0`, bytes.subarray(0, 100_000), await alice())).toEqual([200, { offset: 100_000 }]);
    // A client that lost the answer and sends the same chunk again is told where the broker is.
    const [st, again] = await put(s.g.grantId, `${q}&offset=0`, bytes.subarray(0, 100_000), await alice());
    expect([st, again.error?.code, again.error?.offset]).toEqual([409, 'body_offset', 100_000]);
    // Another caller's grant, a chunk past the declared size, a body over the broker's limit: refused, nothing staged.
    expect((await put(s.g.grantId, `${q}&offset=100000`, bytes.subarray(100_000, 200_000), await bob()))[0]).toBe(403);
    expect((await put(s.g.grantId, `${q}&offset=100000`, Buffer.concat([bytes.subarray(100_000), Buffer.alloc(10)]), await alice()))[1].error?.code).toBe('payload_too_large');
    expect((await put(s.g.grantId, `sha256=${b.sha256}&size=${200 * 1024 * 1024}&offset=0`, Buffer.alloc(1), await alice()))[1].error?.code).toBe('payload_too_large');
    // The transcript before its whole body: refused, and nothing is appended.
    const early = await env.post('/v1/transcripts', s.envelope, await alice());
    expect([early.status, ((await early.json()) as { error: { code: string } }).error.code]).toEqual([409, 'transcript_body_missing']);
    expect(await module.service!.log.getByGrant(s.g.grantId)).toBeUndefined();
    // The uploader picks up from the broker's offset and finishes; the stored body is the spooled one.
    const r = await flushSpool({ spoolDir: s.spoolDir, upload: createTranscriptUploader({ brokerUrl: env.broker.url, getToken: alice, chunkBytes: 64 * 1024 }) });
    expect(r.uploaded).toEqual([{ grantId: s.g.grantId, status: 'complete', outcome: 'recorded' }]);
    const stored = await module.bodies!.get(b.sha256);
    const h = createHash('sha256');
    for await (const c of stored!) h.update(c as Buffer);
    expect(h.digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(existsSync(staged(s.g.grantId))).toBe(false);
  });

  it('a transcript cannot name a body its caller did not send, and the broker does not say whether it holds one', async () => {
    // A body that is in the store (another grant's, recorded).
    const a = await spooled(50_000);
    await flushSpool({ spoolDir: a.spoolDir, upload: createTranscriptUploader({ brokerUrl: env.broker.url, getToken: alice }) });
    const known = a.envelope.transcript.body!;
    expect(await module.bodies!.stat(known.sha256)).toEqual({ size: known.size });
    // Another grant's transcript, validly signed, naming that body without uploading it.
    const { g, key } = await grant();
    const { signTranscript } = await import('../../src/transcript/sign.js');
    const claim = signTranscript({ ...a.envelope.transcript, grantId: g.grantId, body: known }, key.privateKey);
    const q = `sha256=${known.sha256}&size=${known.size}`;
    const offset = await fetch(`${env.broker.url}/v1/transcripts/${g.grantId}/body?${q}`, { headers: { authorization: `Bearer ${await alice()}` } });
    expect(await offset.json()).toEqual({ offset: 0 });
    const posted = await env.post('/v1/transcripts', claim, await alice());
    expect([posted.status, ((await posted.json()) as { error: { code: string } }).error.code]).toEqual([409, 'transcript_body_missing']);
    expect(await module.service!.log.getByGrant(g.grantId)).toBeUndefined();
  });

  it('a connection broken mid-chunk keeps what arrived; the upload resumes from the broker\'s offset', async () => {
    const s = await spooled(2 * 1024 * 1024);
    const b = s.envelope.transcript.body!;
    const bytes = readFileSync(s.bodyFile);
    const token = await alice();
    // Half a chunk sent on a raw connection, then the socket is destroyed (a network cut, not a clean end).
    await new Promise<void>((done) => {
      const url = new URL(`${env.broker.url}/v1/transcripts/${s.g.grantId}/body?sha256=${b.sha256}&size=${b.size}&offset=0`);
      const req = request(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } });
      req.on('error', () => done());
      req.write(bytes.subarray(0, 700_000), () => setTimeout(() => (req.destroy(), setTimeout(done, 200)), 200));
    });
    const have = existsSync(staged(s.g.grantId)) ? statSync(staged(s.g.grantId)).size : 0;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(700_000);
    const offsets: number[] = [];
    const spy: typeof fetch = (u, init) => {
      const m = /[?&]offset=(\d+)/.exec(String(u));
      if (init?.method === 'PUT' && m) offsets.push(Number(m[1]));
      return fetch(u, init);
    };
    const r = await flushSpool({ spoolDir: s.spoolDir, upload: createTranscriptUploader({ brokerUrl: env.broker.url, getToken: alice, fetch: spy, chunkBytes: 512 * 1024 }) });
    expect(r.uploaded).toHaveLength(1);
    expect(offsets[0]).toBe(have);
    expect(JSON.parse((await module.service!.log.getByGrant(s.g.grantId))!.body).body).toMatchObject({ sha256: b.sha256, size: b.size });
  });

  it('a client killed (SIGKILL) mid-upload resumes on the next run from the acknowledged offset', async () => {
    const dist = join(repoRoot, 'dist', 'transcript', 'spool.js');
    if (!existsSync(dist)) throw new Error('build dist first: npm run build');
    const s = await spooled(12 * 1024 * 1024);
    const b = s.envelope.transcript.body!;
    // The client process: flushes its spool with 1 MiB chunks and is killed by SIGKILL right after the broker
    // acknowledged the third (its fourth request is on its way): nothing of it runs after that.
    const child = `
      import { flushSpool } from ${JSON.stringify(dist)};
      import { createTranscriptUploader } from ${JSON.stringify(join(repoRoot, 'dist/transcript/upload.js'))};
      let acks = 0;
      const f = async (u, init) => {
        const r = await fetch(u, init);
        if (init.method === 'PUT' && r.status === 200 && ++acks === 3) {
          setTimeout(() => process.kill(process.pid, 'SIGKILL'), 0);
        }
        return r;
      };
      await flushSpool({ spoolDir: process.argv[1], upload: createTranscriptUploader({ brokerUrl: process.argv[2], getToken: async () => process.env.TOKEN, fetch: f, chunkBytes: 1024 * 1024 }) });
      process.stdout.write('finished (should have been killed)');
    `;
    // Not spawnSync: the broker answering it lives in this process's event loop.
    const p = spawn(process.execPath, ['--input-type=module', '-e', child, s.spoolDir, env.broker.url], { env: { ...process.env, TOKEN: await alice() } });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    const r = await new Promise<{ signal: NodeJS.Signals | null; stdout: string }>((done) => p.on('close', (_c, signal) => done({ signal, stdout })));
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout).not.toContain('finished');
    // The fourth chunk may still be reaching the staging file when the client dies (its bytes were on the wire):
    // the broker's offset is what its staging holds once nothing more arrives.
    let have = statSync(staged(s.g.grantId)).size;
    for (let last = -1; have !== last; ) {
      last = have;
      await new Promise((r) => setTimeout(r, 300));
      have = statSync(staged(s.g.grantId)).size;
    }
    expect(have).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(have).toBeLessThan(b.size);
    expect(await module.service!.log.getByGrant(s.g.grantId)).toBeUndefined();
    // The next run (any guard-aws call flushes the spool first): the claimed entry of the dead flusher is returned,
    // and the upload goes on from the broker's offset, not from zero.
    const offsets: number[] = [];
    const spy: typeof fetch = (u, init) => {
      const m = /[?&]offset=(\d+)/.exec(String(u));
      if (init?.method === 'PUT' && m) offsets.push(Number(m[1]));
      return fetch(u, init);
    };
    const next = await flushSpool({ spoolDir: s.spoolDir, upload: createTranscriptUploader({ brokerUrl: env.broker.url, getToken: alice, fetch: spy, chunkBytes: 1024 * 1024 }) });
    expect(next.uploaded).toEqual([{ grantId: s.g.grantId, status: 'complete', outcome: 'recorded' }]);
    expect(offsets[0]).toBe(have);
    expect(offsets.length).toBe(Math.ceil((b.size - have) / (1024 * 1024)));
    const rec = (await module.service!.log.getByGrant(s.g.grantId))!;
    expect(JSON.parse(rec.body).body).toMatchObject({ sha256: b.sha256, size: b.size });
    const v = (await (await fetch(`${env.broker.url}/v1/audit/verify?bodies=true`, { headers: { authorization: `Bearer ${await env.token({ sub: 'carol', groups: ['auditors'] })}` } })).json()) as {
      ok: boolean;
      bodies: { checked: number };
    };
    expect(v.ok).toBe(true);
    expect(v.bodies.checked).toBeGreaterThanOrEqual(3);
  }, 60_000);
});

