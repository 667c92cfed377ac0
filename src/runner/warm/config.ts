import { z } from 'zod';

/** `execution.warmPool` of the broker's config (src/broker/config.ts); see src/runner/warm/pool.ts. */
export const warmPoolConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Supervisors per CLI; each serves any number of concurrent runs (one fork each). */
    size: z.int().min(1).max(16).default(1),
    /** A supervisor larger than this (resident, after importing the CLI and preloading models) is replaced. */
    maxRssMb: z.int().min(32).max(65_536).default(512),
    /** A supervisor is replaced after forking this many runs (0 = never for that reason). */
    recycleAfterRuns: z.int().min(0).max(1_000_000).default(1000),
    /** Runs get uids uidBase … uidBase + maxConcurrent - 1 (broker as root only): one per live run. */
    uidBase: z.int().min(1000).max(4_000_000_000).default(2_000_000_000),
    /** Service models read before the first fork. */
    preload: z.array(z.string().regex(/^[a-z0-9-]{1,64}$/)).max(64).default(['sts', 's3', 'ec2', 'iam', 'lambda', 'dynamodb', 'sqs', 'sns', 'ssm', 'logs']),
  })
  .default({ enabled: false, size: 1, maxRssMb: 512, recycleAfterRuns: 1000, uidBase: 2_000_000_000, preload: ['sts', 's3', 'ec2', 'iam', 'lambda', 'dynamodb', 'sqs', 'sns', 'ssm', 'logs'] });

export type WarmPoolConfig = z.output<typeof warmPoolConfigSchema>;
