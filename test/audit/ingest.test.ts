import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey } from '../../src/audit/broker-key.js';
import { ApiError } from '../../src/api/http-error.js';
import { ingestTranscript, type GrantFacts } from '../../src/audit/ingest.js';
import { logOn } from '../helpers/postgres.js';
import { maskArgv } from '../../src/masking/argv.js';
import { createTranscriptKey, signTranscript } from '../../src/transcript/sign.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { newRecorder, tempDir } from '../transcript/helpers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileBodyStore } from '../../src/audit/bodies/store.js';
import { BodyUploads } from '../../src/audit/bodies/uploads.js';

// The broker-side checks on their own, with a real (in-memory) SQLite log and grant facts as the broker's
// store holds them: argv masked with the same function the grants route uses.
const argv = ['secretsmanager', 'create-secret', '--name', 'db', '--secret-string', 'hunter2'];
const key = createTranscriptKey();
const grant: GrantFacts = {
  id: 'grt_ingest00000000000000001',
  subject: 'alice@example.com',
  argv: maskArgv(argv),
  target: 'dev',
  decision: 'approve',
  rule: 'secrets-need-approval',
  approvalId: 'apr_1',
  transcriptKey: key.publicKey,
  createdAt: '2026-11-25T10:00:00.000Z',
  expiresAt: '2026-11-25T10:15:00.000Z',
  groups: ['developers'],
};
// A real file body store and upload staging (src/audit/bodies/), in a temporary directory.
const deps = async () => {
  const uploads = new BodyUploads(new FileBodyStore(tempDir('guard-bodies-')), 1024 ** 3);
  return { log: await logOn(new BetterSqlite3(':memory:'), generateBrokerKey('EdDSA')), getGrant: (id: string) => (id === grant.id ? grant : undefined), bodies: uploads, uploads };
};

/** Sends a spooled body to the broker's staging the way PUT /v1/transcripts/{grant}/body does. */
async function stage(d: Awaited<ReturnType<typeof deps>>, env: TranscriptEnvelope, bytes: Buffer = readFileSync(bodies.get(env)!)) {
  const b = env.transcript.body!;
  await d.uploads.append(env.transcript.grantId, grant.subject, { sha256: b.sha256, size: String(b.size), offset: '0' }, Readable.from([bytes]));
}
const bodies = new WeakMap<TranscriptEnvelope, string>();

function transcript(over: Partial<Parameters<typeof newRecorder>[1]> = {}): TranscriptEnvelope {
  const { rec } = newRecorder(
    tempDir(),
    // The run happens within the grant's lifetime (ingest checks startedAt against it).
    { grantId: grant.id, caller: { subject: grant.subject }, target: 'dev', argv, decision: 'approve', rule: 'secrets-need-approval', approvalId: 'apr_1', clock: () => Date.parse('2026-11-25T10:01:00.000Z'), ...over },
    key,
  );
  rec.onChunk('stdout', '{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}\n');
  const env = rec.finish(0);
  bodies.set(env, join(rec.entryDir, 'body.bin'));
  return env;
}

async function refusal(env: unknown, given?: Awaited<ReturnType<typeof deps>>): Promise<string> {
  const d = given ?? (await deps());
  try {
    await ingestTranscript(env, { subject: 'alice@example.com' }, d);
    return 'accepted';
  } catch (e) {
    return e instanceof ApiError ? `${e.status} ${e.code} ${e.message}` : String(e);
  }
}

describe('ingestTranscript', () => {
  it('accepts the run\'s own transcript: the unmasked argv the runner had masks to what the grant stored', async () => {
    const d = await deps();
    const env = transcript();
    await stage(d, env);
    const r = await ingestTranscript(env, { subject: 'alice@example.com' }, d);
    expect(r.status).toBe('recorded');
    expect(r.record.body).not.toContain('hunter2');
    // The record binds the body by digest, size and where it is stored; the body is in the store now.
    const b = env.transcript.body!;
    expect(JSON.parse(r.record.body).body).toEqual({ sha256: b.sha256, size: b.size, location: `file:sha256/${b.sha256.slice(0, 2)}/${b.sha256.slice(2)}` });
    expect(await d.uploads.store.stat(b.sha256)).toEqual({ size: b.size });
  });

  it('appends nothing before the whole body is at the broker, and refuses a body that is not the one signed', async () => {
    const d = await deps();
    const env = transcript();
    expect(await refusal(env, d)).toMatch(/^409 transcript_body_missing /);
    // Half of it: still missing.
    const bytes = readFileSync(bodies.get(env)!);
    await d.uploads.append(grant.id, grant.subject, { sha256: env.transcript.body!.sha256, size: String(bytes.length), offset: '0' }, Readable.from([bytes.subarray(0, 20)]));
    expect(await refusal(env, d)).toMatch(/^409 transcript_body_missing /);
    // The rest, but with one byte changed: the broker re-hashes the staged body and refuses it.
    const rest = Buffer.from(bytes.subarray(20));
    rest[rest.length - 3] = rest[rest.length - 3]! ^ 0x20;
    await d.uploads.append(grant.id, grant.subject, { sha256: env.transcript.body!.sha256, size: String(bytes.length), offset: '20' }, Readable.from([rest]));
    expect(await refusal(env, d)).toMatch(/^403 transcript_mismatch .*SHA-256/);
    expect(await d.log.count()).toBe(0);
    expect(await d.uploads.store.stat(env.transcript.body!.sha256)).toBeUndefined();
  });

  it('refuses a validly signed transcript whose call differs from the grant, naming the field', async () => {
    expect(await refusal(transcript({ argv: ['secretsmanager', 'create-secret', '--name', 'other', '--secret-string', 'x'] }))).toMatch(/^403 transcript_mismatch .*argv differs/);
    expect(await refusal(transcript({ target: 'prod' }))).toMatch(/^403 transcript_mismatch .*target differs/);
    expect(await refusal(transcript({ approvalId: null }))).toMatch(/^403 transcript_mismatch .*approvalId differs/);
    // Groups or a name the broker never verified for this grant.
    expect(await refusal(transcript({ caller: { subject: grant.subject, groups: ['approvers', 'admins'] } }))).toMatch(/^403 transcript_mismatch .*caller groups differs/);
    // A run dated outside the grant's lifetime (before it was issued, or after its session expired).
    expect(await refusal(transcript({ clock: () => Date.parse('2026-11-25T09:00:00.000Z') }))).toMatch(/^403 transcript_mismatch .*outside grant/);
    expect(await refusal(transcript({ clock: () => Date.parse('2026-11-25T11:00:00.000Z') }))).toMatch(/^403 transcript_mismatch .*outside grant/);
    expect(await refusal(transcript({ decision: 'allow' }))).toMatch(/^403 transcript_mismatch .*decision differs/);
    expect(await refusal(transcript({ caller: { subject: 'mallory' } }))).toMatch(/^403 transcript_mismatch .*caller differs/);
  });

  it('still records a v1 transcript with its output inline (earlier clients); v2 without a body or v1 with one is malformed', async () => {
    const good = transcript();
    const { body: _b, ...rest } = good.transcript;
    const v1 = signTranscript({ ...rest, v: 1, chunks: [{ t: 0, s: 'o', d: Buffer.from('inline\n').toString('base64') }] }, key.privateKey);
    const d = await deps();
    const r = await ingestTranscript(v1, { subject: grant.subject }, d);
    expect(r.status).toBe('recorded');
    expect(JSON.parse(r.record.body).body).toBeUndefined();
    expect(await refusal(signTranscript({ ...rest, v: 2 }, key.privateKey))).toMatch(/^400 bad_request .*body/);
    expect(await refusal(signTranscript({ ...good.transcript, v: 1 }, key.privateKey))).toMatch(/^400 bad_request .*body/);
  });

  it('refuses malformed envelopes with the offending field, before any lookup', async () => {
    const good = transcript();
    expect(await refusal({ ...good, extra: 1 })).toMatch(/^400 bad_request/);
    expect(await refusal({ ...good, transcript: { ...good.transcript, chunks: [{ t: -1, s: 'o', d: '' }] } })).toMatch(/^400 bad_request transcript: transcript\.chunks\.0\.t/);
    expect(await refusal({ ...good, transcript: { ...good.transcript, status: 'done' } })).toMatch(/^400 bad_request .*status/);
    const resigned = signTranscript({ ...good.transcript, outputBytes: 1 }, createTranscriptKey().privateKey);
    expect(await refusal(resigned)).toMatch(/^403 transcript_signature_invalid/);
  });
});
