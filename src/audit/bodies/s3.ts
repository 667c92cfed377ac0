import { createReadStream, mkdirSync, rmSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { checkDigest, stageThenAdopt, type BodyStore } from './store.js';

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
 * There is deliberately no delete or overwrite method: the broker has no code path that could ask for one.
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
    try {
      if (statSync(path).size !== size) throw new Error('staged body has another size than recorded');
      // Content-addressed: the same body is there already, under its own retention. Never a second PUT.
      if (await this.stat(sha256)) return;
      const until = new Date(this.clock() + this.o.retentionDays * 86_400_000);
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
    }
  }
}

function isNotFound(e: unknown): boolean {
  const x = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return x?.name === 'NotFound' || x?.name === 'NoSuchKey' || x?.$metadata?.httpStatusCode === 404;
}
