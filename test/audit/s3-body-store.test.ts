import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
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

function store(extra: Partial<ConstructorParameters<typeof S3BodyStore>[0]> = {}): S3BodyStore {
  return new S3BodyStore({ bucket, prefix: 'transcripts/', region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, retentionDays: 30, stagingDir: tempDir('guard-s3-staging-'), credentials, ...extra });
}

/** moto's request log, once it shows `re` (moto writes its log asynchronously: a line can trail the answer). */
async function logged(from: number, re: RegExp): Promise<string> {
  // moto writes its request log after answering, so the line can trail the answer: wait up to 10 s for it, returning
  // as soon as it is there (test/helpers/moto.ts reassembles lines a pipe delivers in pieces).
  for (let i = 0; i < 500; i++) {
    const sent = moto.requests().slice(from).join('\n');
    if (re.test(sent)) return sent;
    await new Promise((r) => setTimeout(r, 20));
  }
  return moto.requests().slice(from).join('\n');
}

/** An HTTP proxy to moto that answers 403 AccessDenied to requests whose URL matches `refuse`. */
async function refusingProxy(refuse: RegExp): Promise<{ endpoint: string; refused: number; close(): Promise<void> }> {
  const state = { refused: 0 };
  const server = createServer((req, res) => {
    if (refuse.test(req.url ?? '')) {
      state.refused++;
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/xml', connection: 'close' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>refused by the test proxy</Message></Error>');
      });
      return;
    }
    const up = httpRequest(`${moto.endpoint}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get refused() {
      return state.refused;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Multipart uploads started and neither completed nor aborted, under a prefix. */
async function unfinished(prefix: string): Promise<number> {
  return ((await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? []).length;
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
    expect(Object.getOwnPropertyNames(S3BodyStore.prototype).sort()).toEqual(['adopt', 'constructor', 'ensureLocked', 'firstVersion', 'get', 'key', 'location', 'multipart', 'put', 'stat']);

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

  // Bodies over the threshold go up in parts (one PutObject takes at most 5 GiB). S3's smallest part is 5 MiB, and
  // moto enforces it too, so the test uses 5 MiB parts and a threshold of 1 MiB: a 12 MiB body is three parts.
  const PART = 5 * 1024 * 1024;

  it('a body over the multipart threshold goes up in parts, once, locked like a PUT; read back by its SHA-256; an overwrite leaves the locked version', async () => {
    const s = store({ prefix: 'multi/', multipartThreshold: 1024 * 1024, partSize: PART });
    const before = moto.requests().length;
    const body = randomBytes(2 * PART + 2 * 1024 * 1024 + 5);
    const digest = sha(body);
    const staged = join(s.stagingDir, 'run.body');
    writeFileSync(staged, body);
    await s.adopt(staged, digest, body.length);
    // The same content again (a put of a stream): content-addressed, nothing sent.
    expect(await s.put(Readable.from([body]))).toEqual({ sha256: digest, size: body.length });

    const sent = (await logged(before, /\?uploadId=[^ ]* HTTP/)).split('\n');
    expect(sent.join('\n')).not.toMatch(/"DELETE /);
    // One CreateMultipartUpload, three UploadPart, one Complete; no single PUT of the object.
    expect(sent.filter((l) => /"POST \/guard-transcripts\/multi\/sha256\/[0-9a-f]{64}\?uploads/.test(l))).toHaveLength(1);
    expect(sent.filter((l) => /"PUT \/guard-transcripts\/multi\/sha256\/[0-9a-f]{64}\?[^ ]*partNumber=/.test(l))).toHaveLength(3);
    expect(sent.filter((l) => /"POST \/guard-transcripts\/multi\/sha256\/[0-9a-f]{64}\?uploadId=/.test(l))).toHaveLength(1);
    expect(sent.filter((l) => /"PUT \/guard-transcripts\/multi\/sha256\/[0-9a-f]{64}(?:\?x-id=PutObject)? /.test(l))).toHaveLength(0);
    // moto 5.2 ignores the Object Lock headers of CreateMultipartUpload (AWS applies them): the store sees the new
    // version unlocked and locks it with PutObjectRetention — on AWS that request is not needed and not sent.
    expect(sent.filter((l) => /"PUT \/guard-transcripts\/multi\/sha256\/[0-9a-f]{64}\?[^ ]*retention/.test(l))).toHaveLength(1);
    expect(await unfinished('multi/')).toBe(0);

    const key = s.key(digest);
    const versions = await admin.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    expect(versions.Versions).toHaveLength(1);
    const versionId = versions.Versions![0]!.VersionId!;
    const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(head.ContentLength).toBe(body.length);
    expect(await hashStream((await s.get(digest))!)).toEqual({ sha256: digest, size: body.length });

    await expect(admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }))).rejects.toMatchObject({ name: 'AccessDenied' });
    await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('forged output\n'), ChecksumAlgorithm: 'SHA256' }));
    expect(await hashStream((await s.get(digest))!)).toEqual({ sha256: digest, size: body.length });
    const records = [{ seq: 1, id: 'r1', kind: 'transcript' as const, at: '', grantId: 'g', subject: 's', prevHash: '', hash: '', sig: '', body: JSON.stringify({ body: { sha256: digest, size: body.length, location: s.location(digest) } }) }];
    expect(await verifyBodies(records, s)).toMatchObject({ ok: true, checked: 1 });
  }, 60_000);

  it('a multipart upload that fails part-way is aborted: no object, no unfinished upload left, the staged file consumed', async () => {
    const s = store({ prefix: 'aborted/', multipartThreshold: 1024 * 1024, partSize: PART });
    const body = randomBytes(2 * PART + 1024);
    // Bytes that do not hash to the digest they are adopted under: every part is accepted (its own checksum is
    // right), the whole is not the recorded body, so the upload must never complete.
    const claimed = sha(Buffer.from('another body'));
    const staged = join(s.stagingDir, 'wrong.body');
    writeFileSync(staged, body);
    const before = moto.requests().length;
    await expect(s.adopt(staged, claimed, body.length)).rejects.toThrow(/does not hash to the digest/);
    const sent = await logged(before, /"DELETE [^ ]*\?uploadId=/);
    expect(sent.match(/"PUT \/guard-transcripts\/aborted\/sha256\/[0-9a-f]{64}\?[^ ]*partNumber=/g)).toHaveLength(3);
    expect(sent).toMatch(/"DELETE \/guard-transcripts\/aborted\/sha256\/[0-9a-f]{64}\?uploadId=/);
    expect(sent).not.toMatch(/"POST \/guard-transcripts\/aborted\/sha256\/[0-9a-f]{64}\?uploadId=/);
    expect(await unfinished('aborted/')).toBe(0);
    expect(await s.stat(claimed)).toBeUndefined();
    expect(existsSync(staged)).toBe(false);

    // A part the service refuses (a proxy in front of moto answers the second UploadPart 403, as a bucket policy
    // or a network fault could): the upload is aborted, nothing completes.
    const proxy = await refusingProxy(/partNumber=2&/);
    try {
      const s2 = store({ prefix: 'aborted2/', multipartThreshold: 1024 * 1024, partSize: PART, endpoint: proxy.endpoint });
      const staged2 = join(s2.stagingDir, 'refused.body');
      writeFileSync(staged2, body);
      await expect(s2.adopt(staged2, sha(body), body.length)).rejects.toMatchObject({ name: 'AccessDenied' });
      expect(proxy.refused).toBe(1);
      expect(await unfinished('aborted2/')).toBe(0);
      expect(await s2.stat(sha(body))).toBeUndefined();
      expect(existsSync(staged2)).toBe(false);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
