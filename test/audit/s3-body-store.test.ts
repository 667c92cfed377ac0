import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BodyStore } from '../../src/audit/bodies/s3.js';
import { hashStream } from '../../src/audit/bodies/store.js';
import { verifyBodies } from '../../src/audit/bodies/verify.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { tempDir } from '../transcript/helpers.js';

// The S3 body store against a real moto_server with Object Lock enabled on the bucket (S3 User Guide, "Locking
// objects with Object Lock"; moto implements retention checks on DeleteObject and PutObjectRetention).
let moto: Moto;
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
let admin: S3Client;
const bucket = 'guard-transcripts';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  moto = await startMoto();
  // "An administrator": full S3 rights on the bucket, with its own client (not the broker's).
  admin = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials });
  await admin.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
}, 60_000);
afterAll(async () => {
  admin?.destroy();
  await moto?.stop();
});

function store(): S3BodyStore {
  return new S3BodyStore({ bucket, prefix: 'transcripts/', region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, retentionDays: 30, stagingDir: tempDir('guard-s3-staging-'), credentials });
}

describe('S3 body store with Object Lock (moto)', () => {
  it('stores a body once under compliance-mode retention; a delete or an overwrite before it ends is refused, and the broker never sends one', async () => {
    const s = store();
    const before = moto.requests().length;
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha(body);
    // Adopt a staged file (the broker-run path) and put a stream (same content: no second upload).
    const staged = join(s.stagingDir, 'run.body');
    writeFileSync(staged, body);
    await s.adopt(staged, digest, body.length);
    expect(await s.put(Readable.from([body]))).toEqual({ sha256: digest, size: body.length });
    expect(await s.stat(digest)).toEqual({ size: body.length });
    expect(await hashStream((await s.get(digest))!)).toEqual({ sha256: digest, size: body.length });
    expect(s.location(digest)).toBe(`s3://${bucket}/transcripts/sha256/${digest}`);

    // What the broker sent: reads and exactly one PUT of the object; never a DELETE, never a second PUT.
    const sent = moto.requests().slice(before).join('\n');
    expect(sent).not.toMatch(/"DELETE /);
    expect(sent.match(/"PUT \/guard-transcripts\/transcripts\/sha256\//g)).toHaveLength(1);
    // …and it has no method that could: the store's whole surface.
    expect(Object.getOwnPropertyNames(S3BodyStore.prototype).sort()).toEqual(['adopt', 'constructor', 'firstVersion', 'get', 'key', 'location', 'put', 'stat']);

    const key = s.key(digest);
    const versions = await admin.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    const versionId = versions.Versions![0]!.VersionId!;
    // (HeadObject's x-amz-object-lock-* headers: moto's GetObjectRetention answer does not parse in this SDK.)
    const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);

    // The administrator tries to remove the recording: refused.
    await expect(admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }))).rejects.toMatchObject({ name: 'AccessDenied' });
    // (Shortening a compliance-mode retention is refused by S3 too; moto 5.2 does not check that, so it is not tried
    // here.) A DELETE without a version only stacks a delete marker: the locked version stays and is still read.
    await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    expect(await hashStream((await s.get(digest))!)).toEqual({ sha256: digest, size: body.length });
    // …to overwrite it: S3 only stacks a new version on the key; the locked one stays, and it is what the store
    // reads (and verify re-hashes).
    await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('forged output\n'), ChecksumAlgorithm: 'SHA256' }));
    expect(await hashStream((await s.get(digest))!)).toEqual({ sha256: digest, size: body.length });
    const records = [{ seq: 1, id: 'r1', kind: 'transcript' as const, at: '', grantId: 'g', subject: 's', prevHash: '', hash: '', sig: '', body: JSON.stringify({ body: { sha256: digest, size: body.length, location: s.location(digest) } }) }];
    expect(await verifyBodies(records, s)).toMatchObject({ ok: true, checked: 1 });
    // A record naming a body that is not in the bucket is named as missing.
    const other = sha(Buffer.from('never stored'));
    const missing = [{ ...records[0]!, body: JSON.stringify({ body: { sha256: other, size: 1, location: s.location(other) } }) }];
    expect((await verifyBodies(missing, s)).firstBad).toMatchObject({ seq: 1, reason: 'missing' });
  }, 60_000);

  it('is what a broker configured with transcripts.store.type s3 opens (the SDK loaded on first use)', async () => {
    const { openBodyStore } = await import('../../src/audit/bodies/open.js');
    const staging = tempDir('guard-s3-open-');
    process.env.AWS_ACCESS_KEY_ID ??= 'testing';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
    const s = openBodyStore({ type: 's3', bucket, prefix: 'opened/', region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, retentionDays: 1, stagingDir: staging }, ':memory:');
    expect(s.stagingDir).toBe(staging);
    const body = Buffer.from('GAWSBODY1\n');
    const r = await s.put(Readable.from([body]));
    expect(r).toEqual({ sha256: sha(body), size: body.length });
    expect(s.location(r.sha256)).toBe(`s3://${bucket}/opened/sha256/${r.sha256}`);
    expect(await hashStream((await s.get(r.sha256))!)).toEqual(r);
  });
});
