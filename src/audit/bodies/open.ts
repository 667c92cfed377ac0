import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDigest, FileBodyStore, type BodyStore } from './store.js';

/** The broker config's `transcripts.store` (src/broker/config.ts), as this module reads it. */
export type BodyStoreSettings =
  | { type: 'file'; dir?: string | undefined }
  | {
      type: 's3';
      bucket: string;
      prefix: string;
      region: string;
      endpoint?: string | undefined;
      forcePathStyle: boolean;
      retentionDays: number;
      stagingDir?: string | undefined;
    };

/**
 * Opens the configured body store. File bodies default to `<sqlite>.bodies` beside the database (an in-memory
 * database gets a temporary directory: its bodies live as long as its records). The S3 client (and the SDK) is
 * loaded on first use only, so a broker with the file store never loads it.
 */
export function openBodyStore(s: BodyStoreSettings | undefined, sqlite: string | undefined): BodyStore {
  // Without a SQLite file (brokers on PostgreSQL) the config requires the places to be named (src/broker/config.ts).
  const beside = (suffix: string) =>
    sqlite === undefined || sqlite === ':memory:' ? mkdtempSync(join(tmpdir(), `guard-aws-${suffix}-`)) : `${sqlite}.${suffix}`;
  if (!s || s.type === 'file') return new FileBodyStore(s?.dir ?? beside('bodies'));
  const stagingDir = s.stagingDir ?? beside('bodies-staging');
  mkdirSync(stagingDir, { recursive: true, mode: 0o700 });
  let loaded: Promise<BodyStore> | undefined;
  const store = () => (loaded ??= import('./s3.js').then(({ S3BodyStore }) => new S3BodyStore({ ...s, stagingDir })));
  const prefix = s.prefix;
  return {
    stagingDir,
    location: (sha256) => `s3://${s.bucket}/${prefix}sha256/${checkDigest(sha256)}`,
    put: async (b) => (await store()).put(b),
    adopt: async (p, h, n) => (await store()).adopt(p, h, n),
    get: async (h) => (await store()).get(h),
    stat: async (h) => (await store()).stat(h),
  };
}
