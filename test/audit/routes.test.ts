import { createServer, connect, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/audit/broker-key.js';
import { verifyExportLines } from '../../src/audit/export.js';
import type { GrantResponse } from '../../src/api/types.js';
import { auditRoutes } from '../../src/broker/routes/audit.js';
import { StreamMasker, compileMasking } from '../../src/masking/index.js';
import { TranscriptRecorder } from '../../src/transcript/recorder.js';
import { createTranscriptKey, signTranscript, type TranscriptKey } from '../../src/transcript/sign.js';
import { flushSpool } from '../../src/transcript/spool.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { createTranscriptUploader } from '../../src/transcript/upload.js';
import { startBrokerEnv, type BrokerEnvironment } from '../broker/helpers/broker-env.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../transcript/helpers.js';

// The real broker (hono over HTTP, real SQLite file, jose-signed tokens checked against a JWKS on loopback,
// moto_server as STS) with the transcript/audit routes mounted the way production mounts them. Only the
// invocation parser and policy decision are the broker tests' stand-ins (test/broker/helpers/fake-core.ts).
let env: BrokerEnvironment;
const module = auditRoutes({ clock: () => Date.now() + 2 * 3600_000, auditorGroups: ['auditors', 'soc'] });
const alice = () => env.token({ sub: 'alice@example.com', groups: ['developers'] });
const bob = () => env.token({ sub: 'bob@example.com', groups: ['developers'] });
const auditor = () => env.token({ sub: 'carol@example.com', groups: ['auditors'] });

beforeAll(async () => {
  env = await startBrokerEnv({ routes: [module] });
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function grant(argv: string[], token?: string): Promise<{ g: GrantResponse; key: TranscriptKey }> {
  const key = createTranscriptKey();
  const res = await env.post('/v1/grants', { argv, transcriptKey: key.publicKey }, token ?? (await alice()));
  expect(res.status).toBe(200);
  return { g: (await res.json()) as GrantResponse, key };
}

function record(g: GrantResponse, key: TranscriptKey, spoolDir: string, out = '{"Account": "123456789012"}\n'): TranscriptEnvelope {
  const rec = new TranscriptRecorder({
    grantId: g.grantId,
    caller: g.caller!,
    target: g.target,
    argv: g.argv,
    decision: g.decision,
    rule: g.rule,
    approvalId: g.approvalId ?? null,
    privateKey: key.privateKey,
    spoolDir,
  });
  rec.onChunk('stdout', out);
  return rec.finish(0);
}

const uploadAs = (token: () => Promise<string>, url = () => env.broker.url) => (e: TranscriptEnvelope) =>
  createTranscriptUploader({ brokerUrl: url(), getToken: token })(e);

describe('POST /v1/transcripts', () => {
  it('records a transcript signed with the grant\'s key once; the same upload again is "already recorded"', async () => {
    const { g, key } = await grant(['sts', 'get-caller-identity']);
    const spool = tempDir();
    const env1 = record(g, key, spool);
    const r = await flushSpool({ spoolDir: spool, upload: uploadAs(alice) });
    expect(r.uploaded).toEqual([{ grantId: g.grantId, status: 'complete', outcome: 'recorded' }]);
    expect(await uploadAs(alice)(env1)).toBe('already_recorded');
    const raw = await env.post('/v1/transcripts', env1, await alice());
    expect(raw.status).toBe(200);
    expect(await raw.json()).toMatchObject({ status: 'already_recorded', seq: expect.any(Number) });
    // A different transcript for the same grant (even properly signed) is refused.
    const other = signTranscript({ ...env1.transcript, exitCode: 3 }, key.privateKey);
    const conflict = await env.post('/v1/transcripts', other, await alice());
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe('transcript_conflict');
  });

  it('refuses forged transcripts: wrong key, body changed after signing, signed for another grant, another caller', async () => {
    const a = await grant(['sts', 'get-caller-identity']);
    const b = await grant(['ec2', 'describe-instances']);
    const good = record(a.g, a.key, tempDir());
    const code = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string } }).error.code];

    const wrongKey = signTranscript(good.transcript, createTranscriptKey().privateKey);
    expect(await code(await env.post('/v1/transcripts', wrongKey, await alice()))).toEqual([403, 'transcript_signature_invalid']);

    const changed = structuredClone(good);
    changed.transcript.chunks[0]!.d = Buffer.from('{"Account": "000000000000"}\n').toString('base64');
    expect(await code(await env.post('/v1/transcripts', changed, await alice()))).toEqual([403, 'transcript_signature_invalid']);

    // Grant b's own key vouching for a transcript that claims grant b but describes grant a's call.
    const transplanted = signTranscript({ ...good.transcript, grantId: b.g.grantId }, b.key.privateKey);
    expect(await code(await env.post('/v1/transcripts', transplanted, await alice()))).toEqual([403, 'transcript_mismatch']);

    expect(await code(await env.post('/v1/transcripts', good, await bob()))).toEqual([403, 'forbidden']);
    const unknown = signTranscript({ ...good.transcript, grantId: 'grt_doesnotexist0000000000' }, a.key.privateKey);
    expect(await code(await env.post('/v1/transcripts', unknown, await alice()))).toEqual([404, 'not_found']);
    expect(await code(await env.post('/v1/transcripts', { transcript: {}, sig: 'x', alg: 'Ed25519' }, await alice()))).toEqual([400, 'bad_request']);
    expect((await env.post('/v1/transcripts', good, null)).status).toBe(401);
    // None of these reached the log; the genuine one still can.
    expect(await uploadAs(alice)(good)).toBe('recorded');
  });

  it('a transcript made while the broker is down arrives later, exactly once', async () => {
    // A real TCP front on a fixed port: closed (connection refused) while "down", forwarding to the broker once "up".
    const port = await freePort();
    const target = new URL(env.broker.url);
    const front = `http://127.0.0.1:${port}`;
    const { g, key } = await grant(['sts', 'get-caller-identity']);
    const spool = tempDir();
    record(g, key, spool);

    const down = await flushSpool({ spoolDir: spool, upload: uploadAs(alice, () => front) });
    expect(down.uploaded).toEqual([]);
    expect(down.pending[0]).toMatchObject({ grantId: g.grantId });
    expect(down.pending[0]!.reason).toMatch(/unreachable/);

    const proxy: Server = createServer((c) => {
      const s = connect(Number(target.port), target.hostname);
      c.pipe(s).pipe(c);
      c.on('error', () => s.destroy());
      s.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', () => r()));
    try {
      const up = await flushSpool({ spoolDir: spool, upload: uploadAs(alice, () => front) });
      expect(up.uploaded).toEqual([{ grantId: g.grantId, status: 'complete', outcome: 'recorded' }]);
      const again = await flushSpool({ spoolDir: spool, upload: uploadAs(alice, () => front) });
      expect(again.uploaded).toEqual([]);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
    const n = await module.service!.log.list({ grantId: g.grantId, kind: 'transcript' });
    expect(n).toHaveLength(1);
  });
});

describe('audit routes', () => {
  const get = async (path: string, token: string | null) =>
    fetch(`${env.broker.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('are for the auditor groups only', async () => {
    for (const p of ['/v1/audit/records', '/v1/audit/verify', '/v1/audit/export']) {
      const res = await get(p, await alice());
      expect([p, res.status]).toEqual([p, 403]);
      expect((await get(p, null)).status).toBe(401);
    }
    // Any of the configured auditorGroups (broker config) will do.
    expect((await get('/v1/audit/verify', await env.token({ sub: 'dan@example.com', groups: ['soc'] }))).status).toBe(200);
  });

  it('list, show, verify and export; the export verifies offline with GET /v1/keys (no token)', async () => {
    const { g, key } = await grant(['sts', 'get-caller-identity'], await bob());
    const sent = record(g, key, tempDir(), 'bob output\n');
    expect(await uploadAs(bob)(sent)).toBe('recorded');

    const list = (await (await get('/v1/audit/records?user=bob%40example.com', await auditor())).json()) as { records: { grantId: string; status: string }[] };
    expect(list.records.map((r) => r.grantId)).toContain(g.grantId);
    expect(list.records.every((r) => r.status === 'complete')).toBe(true);

    const shown = (await (await get(`/v1/audit/records/${g.grantId}`, await auditor())).json()) as { record: { body: string } };
    expect(JSON.parse(shown.record.body).envelope).toEqual(JSON.parse(JSON.stringify(sent)));

    const v = (await (await get('/v1/audit/verify', await auditor())).json()) as { ok: boolean; count: number };
    expect(v.ok).toBe(true);
    expect(v.count).toBeGreaterThanOrEqual(1);

    const keys = await get('/v1/keys', null);
    expect(keys.status).toBe(200);
    const exp = await get('/v1/audit/export', await auditor());
    expect(exp.headers.get('content-type')).toMatch(/ndjson/);
    const text = await exp.text();
    const r = await verifyExportLines(text.split('\n'), parsePublicKey(await keys.text()));
    expect(r).toMatchObject({ ok: true, count: v.count, fromGenesis: true });

    expect((await get('/v1/audit/records?since=yesterday', await auditor())).status).toBe(400);
    expect((await get('/v1/audit/records/nope', await auditor())).status).toBe(404);
  });

  it('lists grants whose transcript never arrived', async () => {
    const { g } = await grant(['ec2', 'describe-instances']);
    const res = (await (await get('/v1/audit/records?unreported=true', await auditor())).json()) as { unreported: { grantId: string }[] };
    const ids = res.unreported.map((u) => u.grantId);
    expect(ids).toContain(g.grantId);
    // Reported grants are not listed.
    const listed = (await module.service!.log.list({ kind: 'transcript' })).map((r) => r.grantId);
    for (const id of listed) expect(ids).not.toContain(id);
  });

  it('the sweep notes each unreported grant in the chain once; a transcript arriving later is still recorded', async () => {
    const { g, key } = await grant(['sts', 'get-caller-identity']);
    const env1 = record(g, key, tempDir());
    expect(await module.sweep()).toBeGreaterThanOrEqual(1);
    expect(await module.sweep()).toBe(0);
    const note = await module.service!.log.getByGrant(g.grantId, 'unreported');
    expect(note?.subject).toBe('alice@example.com');
    expect(await uploadAs(alice)(env1)).toBe('recorded');
    const v = (await (await get('/v1/audit/verify', await auditor())).json()) as { ok: boolean };
    expect(v.ok).toBe(true);
  });

  it('never stores the issued credentials, even when aws printed them (real masker in front of the recorder)', async () => {
    const { g, key } = await grant(['sts', 'get-caller-identity']);
    const c = g.credentials;
    // Output that carries the run's own credentials and a secret value, split at awkward places, through the
    // runner's streaming masker exactly as runAws feeds the recorder.
    const raw = `{"Credentials": {"AccessKeyId": "${c.accessKeyId}", "SecretAccessKey": "${c.secretAccessKey}", "SessionToken": "${c.sessionToken}"}, "SecretString": "hunter2-db-password"}\nexport AWS_SECRET_ACCESS_KEY=${c.secretAccessKey}\n`;
    const masker = new StreamMasker(compileMasking({ knownSecrets: [c.secretAccessKey, c.sessionToken] }));
    const rec = new TranscriptRecorder({
      grantId: g.grantId, caller: g.caller!, target: g.target, argv: g.argv, decision: g.decision, rule: g.rule,
      approvalId: g.approvalId ?? null, privateKey: key.privateKey, spoolDir: tempDir(),
    });
    for (let i = 0; i < raw.length; i += 37) rec.onChunk('stdout', masker.push(raw.slice(i, i + 37)));
    rec.onChunk('stdout', masker.end());
    expect(await uploadAs(alice)(rec.finish(0))).toBe('recorded');
    const stored = (await module.service!.log.getByGrant(g.grantId))!;
    const all = (await module.service!.log.records()).map((r) => JSON.stringify(r)).join('\n');
    const output = Buffer.concat((JSON.parse(stored.body) as { envelope: TranscriptEnvelope }).envelope.transcript.chunks.map((x) => Buffer.from(x.d, 'base64'))).toString();
    for (const text of [all, output]) {
      expect(text).not.toContain(c.secretAccessKey);
      expect(text).not.toContain(c.sessionToken);
      expect(text).not.toContain('hunter2-db-password');
    }
    expect(output).toContain('SecretAccessKey');
  });
});
