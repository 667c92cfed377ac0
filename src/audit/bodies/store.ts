import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, existsSync, fsyncSync, closeSync, openSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { holdStaging } from './staging.js';

/**
 * Where transcript bodies live. Write-once by construction: there is no delete and no overwrite here, so no broker
 * code path can remove or replace a recording. Bodies are content-addressed (hex SHA-256): writing the same bytes
 * twice is one body; other bytes are another address.
 */
export interface BodyStore {
  /** Stores a stream; resolves with its digest and size. Idempotent for the same content. */
  put(body: Readable): Promise<{ sha256: string; size: number }>;
  /**
   * Stores a file the broker staged itself whose digest it computed while writing (a broker run's body, or an
   * upload it re-hashed): moved or copied in. The file is consumed.
   */
  adopt(path: string, sha256: string, size: number): Promise<void>;
  /** The body as a stream; undefined when it is not there. */
  get(sha256: string): Promise<Readable | undefined>;
  stat(sha256: string): Promise<{ size: number } | undefined>;
  /** Where a body lives, as the audit record names it (`file:sha256/ab/…`, `s3://bucket/key`). */
  location(sha256: string): string;
  /** A directory on local disk for staging uploads and broker-run bodies (same file system as a file store). */
  readonly stagingDir: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

export function checkDigest(sha256: string): string {
  if (!HEX64.test(sha256)) throw new TypeError('body digest must be 64 lowercase hex characters');
  return sha256;
}

/** Hex SHA-256 and size of a stream, read to its end. */
export async function hashStream(s: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * The embedded default: `<dir>/sha256/ab/cdef…` beside the database. Written to a temporary name, fsynced, renamed
 * into place (rename(2) is atomic: a reader sees the whole body or none), the directory fsynced. Files are 0400 so
 * a slip in the broker cannot append to them; an operator with the disk can still remove them — SECURITY.md says
 * so, and points at the S3 Object Lock store for recordings nobody can remove.
 */
export class FileBodyStore implements BodyStore {
  readonly stagingDir: string;

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'sha256'), { recursive: true, mode: 0o700 });
    this.stagingDir = join(dir, 'staging');
    mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
  }

  private path(sha256: string): string {
    checkDigest(sha256);
    return join(this.dir, 'sha256', sha256.slice(0, 2), sha256.slice(2));
  }

  location(sha256: string): string {
    checkDigest(sha256);
    return `file:sha256/${sha256.slice(0, 2)}/${sha256.slice(2)}`;
  }

  put(body: Readable): Promise<{ sha256: string; size: number }> {
    return stageThenAdopt(this.stagingDir, body, (tmp, sha256, size) => this.adopt(tmp, sha256, size));
  }

  async adopt(path: string, sha256: string, size: number): Promise<void> {
    const to = this.path(sha256);
    if (existsSync(to)) {
      // The same content is there already (content-addressed): nothing is overwritten.
      rmSync(path, { force: true });
      return;
    }
    if (statSync(path).size !== size) throw new Error('staged body has another size than recorded');
    mkdirSync(join(this.dir, 'sha256', sha256.slice(0, 2)), { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'r');
    fsyncSync(fd);
    closeSync(fd);
    chmodSync(path, 0o400);
    renameSync(path, to);
    try {
      const d = openSync(join(this.dir, 'sha256', sha256.slice(0, 2)), 'r');
      fsyncSync(d);
      closeSync(d);
    } catch {
      /* directories cannot be fsynced on every platform */
    }
  }

  async get(sha256: string): Promise<Readable | undefined> {
    const p = this.path(sha256);
    if (!existsSync(p)) return undefined;
    return createReadStream(p, { highWaterMark: 1024 * 1024 });
  }

  async stat(sha256: string): Promise<{ size: number } | undefined> {
    try {
      return { size: statSync(this.path(sha256)).size };
    } catch {
      return undefined;
    }
  }
}

/**
 * A body of unknown digest: written to a private file in `stagingDir` while hashing (bounded memory), then handed
 * to the store's `adopt` under the digest it turned out to have. The staged file is gone afterwards either way.
 */
export async function stageThenAdopt(
  stagingDir: string,
  body: Readable,
  adopt: (path: string, sha256: string, size: number) => Promise<void>,
): Promise<{ sha256: string; size: number }> {
  const tmp = join(stagingDir, `put-${randomBytes(9).toString('base64url')}`);
  const h = createHash('sha256');
  let size = 0;
  // In use until adopted (a slow stream can leave it untouched for longer than the staging sweep's age).
  const release = holdStaging(tmp);
  try {
    await pipeline(
      body,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          h.update(c);
          size += c.length;
          yield c;
        }
      },
      createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
    );
    const sha256 = h.digest('hex');
    await adopt(tmp, sha256, size);
    return { sha256, size };
  } finally {
    rmSync(tmp, { force: true });
    release();
  }
}
