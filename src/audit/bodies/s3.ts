import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { holdStaging } from './staging.js';
import { checkDigest, stageThenAdopt, type BodyStore } from './store.js';

/** Bodies larger than this go up in parts (one PutObject takes at most 5 GiB: S3 User Guide, "Uploading objects"). */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;
/** Part size; S3 takes 5 MiB to 5 GiB a part (the last may be smaller) and at most 10,000 parts (S3 User Guide,
 * "Amazon S3 multipart upload limits"). */
export const PART_SIZE = 64 * 1024 * 1024;
const MIN_PART = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

export interface S3BodyStoreOptions {
  bucket: string;
  prefix: string;
  region: string;
  endpoint?: string | undefined;
  forcePathStyle?: boolean;
  /** Object Lock retention in compliance mode, days from the upload. */
  retentionDays: number;
  /** Local staging directory (uploads and broker-run bodies are written here before they go to the bucket). */
  stagingDir: string;
  /** Explicit credentials (tests against moto); default the SDK's chain (the broker's own role). */
  credentials?: S3ClientConfig['credentials'];
  clock?: () => number;
  /** Bodies over this many bytes are sent with a multipart upload (default MULTIPART_THRESHOLD; tests: smaller). */
  multipartThreshold?: number;
  /** Part size of a multipart upload (default PART_SIZE; at least S3's 5 MiB minimum). */
  partSize?: number;
}

/**
 * Bodies in S3-compatible object storage under Object Lock (S3 User Guide, "Locking objects with Object Lock"):
 * each body is put once at `<prefix>sha256/<hex>` with retention mode COMPLIANCE until now + retentionDays. In
 * compliance mode no user — the root user included — can delete or overwrite that object version or shorten its
 * retention before it ends, so not even a broker administrator can remove a recording. The bucket must have Object
 * Lock enabled (which also turns on versioning: a second PUT to the same key would only add a version; this store
 * never sends one — it checks with HEAD first, and the key is the content's digest). The upload carries the body's
 * SHA-256 as `x-amz-checksum-sha256`, so S3 itself refuses bytes that are not the recorded body.
 *
 * Bodies over `multipartThreshold` (64 MiB) go up as a multipart upload instead: CreateMultipartUpload carries the
 * same retention (the object the upload completes into is locked exactly as a PUT one), each part carries its own
 * SHA-256 checksum (S3 refuses a part whose bytes are not those), and the whole file is re-hashed while the parts are
 * read so CompleteMultipartUpload is only sent when the bytes sent are the recorded body — a multipart object's
 * checksum is a checksum of part checksums (S3 User Guide, "Checking object integrity"), not the body's SHA-256.
 *
 * There is deliberately no delete or overwrite method: the broker has no code path that could ask for one. The only
 * removal it sends is AbortMultipartUpload of its own unfinished upload when a part fails: that discards parts that
 * never became an object (S3 User Guide, "Aborting a multipart upload"); it cannot touch a stored object version.
 */
export class S3BodyStore implements BodyStore {
  readonly stagingDir: string;
  private readonly client: S3Client;
  private readonly clock: () => number;

  constructor(private readonly o: S3BodyStoreOptions) {
    this.stagingDir = o.stagingDir;
    mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
    this.clock = o.clock ?? Date.now;
    this.client = new S3Client({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      forcePathStyle: o.forcePathStyle ?? false,
      ...(o.credentials ? { credentials: o.credentials } : {}),
    });
  }

  key(sha256: string): string {
    return `${this.o.prefix}sha256/${checkDigest(sha256)}`;
  }

  location(sha256: string): string {
    return `s3://${this.o.bucket}/${this.key(sha256)}`;
  }

  async stat(sha256: string): Promise<{ size: number } | undefined> {
    try {
      const first = await this.firstVersion(this.key(sha256));
      return first && { size: first.size };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** The key's first version (S3 lists a key's versions newest first: the last one listed). */
  private async firstVersion(key: string): Promise<{ id: string; size: number } | undefined> {
    const versions = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.o.bucket, Prefix: key }));
    const mine = (versions.Versions ?? []).filter((v) => v.Key === key && v.VersionId);
    const first = mine.at(-1);
    return first ? { id: first.VersionId!, size: Number(first.Size ?? 0) } : undefined;
  }

  /**
   * The body as first written: the oldest version under its key. Someone with write access to the bucket can add a
   * newer version on top (a PUT to a locked key is allowed, it only adds a version), but cannot remove or change the
   * locked first one — so that is the one read, and a later version changes nothing here.
   */
  async get(sha256: string): Promise<Readable | undefined> {
    const key = this.key(sha256);
    try {
      const first = await this.firstVersion(key);
      if (!first) return undefined;
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key, VersionId: first.id }));
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  put(body: Readable): Promise<{ sha256: string; size: number }> {
    // The digest names the object, so the bytes are staged on disk first (bounded memory), then uploaded.
    return stageThenAdopt(this.stagingDir, body, (tmp, sha256, size) => this.adopt(tmp, sha256, size));
  }

  async adopt(path: string, sha256: string, size: number): Promise<void> {
    const release = holdStaging(path);
    try {
      if (statSync(path).size !== size) throw new Error('staged body has another size than recorded');
      // Content-addressed: the same body is there already, under its own retention. Never a second PUT.
      if (await this.stat(sha256)) return;
      const until = new Date(this.clock() + this.o.retentionDays * 86_400_000);
      if (size > (this.o.multipartThreshold ?? MULTIPART_THRESHOLD)) return await this.multipart(path, sha256, size, until);
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key: this.key(sha256),
          Body: createReadStream(path, { highWaterMark: 1024 * 1024 }),
          ContentLength: size,
          ContentType: 'application/vnd.guard-aws.transcript-body',
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: until,
        }),
      );
    } finally {
      rmSync(path, { force: true });
      release();
    }
  }

  /**
   * One body in parts. Any failure — a part refused, the file not hashing to `sha256`, the connection lost — aborts
   * the upload, so no unfinished parts are left billed in the bucket and no object appears under the key.
   */
  private async multipart(path: string, sha256: string, size: number, until: Date): Promise<void> {
    const Bucket = this.o.bucket;
    const Key = this.key(sha256);
    // Enough parts of at least the configured size that a body of any accepted size fits in 10,000 of them.
    const partSize = Math.max(this.o.partSize ?? PART_SIZE, MIN_PART, Math.ceil(size / MAX_PARTS));
    const created = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket,
        Key,
        ContentType: 'application/vnd.guard-aws.transcript-body',
        ChecksumAlgorithm: 'SHA256',
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: until,
      }),
    );
    const UploadId = created.UploadId!;
    try {
      const whole = createHash('sha256');
      const parts: CompletedPart[] = [];
      for (let start = 0, n = 1; start < size; start += partSize, n++) {
        const end = Math.min(start + partSize, size);
        // First pass over the part: its own checksum (sent with it) and the whole body's digest.
        const part = createHash('sha256');
        let got = 0;
        for await (const c of createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 })) {
          part.update(c as Buffer);
          whole.update(c as Buffer);
          got += (c as Buffer).length;
        }
        if (got !== end - start) throw new Error('staged body changed size while it was uploaded');
        const ChecksumSHA256 = part.digest('base64');
        const r = await this.client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: n,
            Body: createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }),
            ContentLength: end - start,
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256,
          }),
        );
        parts.push({ PartNumber: n, ETag: r.ETag!, ChecksumSHA256 });
      }
      // S3 checked each part; only this checks that the parts together are the body the record names.
      if (whole.digest('hex') !== sha256) throw new Error('staged body does not hash to the digest it is stored under');
      const done = await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
      await this.ensureLocked(Key, done.VersionId, until);
    } catch (e) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {
        /* the original error is the one to report; a bucket lifecycle rule cleans up what an abort could not */
      });
      throw e;
    }
  }

  /**
   * S3 locks the object a multipart upload completes into with the retention CreateMultipartUpload named. Not every
   * S3-compatible service does (moto 5.2 drops those headers on multipart uploads): the new version is checked, and
   * locked with PutObjectRetention (the same mode and date; S3 only ever lets compliance retention be extended) when
   * it came out unlocked — a recording is never left deletable because the service ignored a header.
   */
  private async ensureLocked(Key: string, VersionId: string | undefined, until: Date): Promise<void> {
    const Bucket = this.o.bucket;
    const head = await this.client.send(new HeadObjectCommand({ Bucket, Key, ...(VersionId ? { VersionId } : {}) }));
    const have = head.ObjectLockRetainUntilDate?.getTime() ?? 0;
    if (head.ObjectLockMode === 'COMPLIANCE' && have >= until.getTime() - 1000) return;
    await this.client.send(
      new PutObjectRetentionCommand({
        Bucket,
        Key,
        ...(VersionId ? { VersionId } : {}),
        Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until },
        ChecksumAlgorithm: 'SHA256',
      }),
    );
  }
}

function isNotFound(e: unknown): boolean {
  const x = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return x?.name === 'NotFound' || x?.name === 'NoSuchKey' || x?.$metadata?.httpStatusCode === 404;
}
