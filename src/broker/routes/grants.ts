import type { Hono } from 'hono';
import { z } from 'zod';
import type { GrantRequest } from '../../api/types.js';
import type { BrokerEnv } from '../env.js';
import { randomId } from '../ids.js';
import { issueSession, type IssueDeps } from '../issue.js';
import { validateJson } from '../middleware/validate.js';

/** POST /v1/grants body. Unknown fields are refused: a client cannot smuggle in, say, an endpoint. */
export const grantRequestSchema = z.strictObject({
  argv: z.array(z.string().max(64 * 1024)).min(1).max(1000),
  cliVersion: z.string().regex(/^\d{1,4}\.\d{1,4}\.\d{1,6}$/, 'must be an AWS CLI version: MAJOR.MINOR.PATCH').optional(),
  target: z.string().min(1).max(64).optional(),
  files: z.record(z.string().min(1).max(4096), z.string()).optional(),
  blobs: z
    .record(
      z.string().startsWith('/', 'must be an absolute path').max(4096),
      z.strictObject({
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest: 64 lower-case hex digits'),
        size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      }),
    )
    .refine((b) => Object.keys(b).length <= 64, 'at most 64 blobs')
    .optional(),
  // Ed25519 public keys are 32 bytes: 43 base64url characters without padding (RFC 8037 §2, RFC 4648 §5).
  transcriptKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'must be an Ed25519 public key: 32 bytes, base64url without padding')
    .refine((k) => Buffer.from(k, 'base64url').length === 32, 'must decode to 32 bytes'),
  approvalId: z.string().min(1).max(128).optional(),
  reason: z.string().max(1000).optional(),
  cwd: z.string().startsWith('/', 'must be an absolute path').max(4096).optional(),
  home: z.string().startsWith('/', 'must be an absolute path').max(4096).optional(),
});

export type GrantRouteDeps = IssueDeps;

export const defaultGrantId = () => `grt_${randomId(16)}`;

export function mountGrants(app: Hono<BrokerEnv>, d: GrantRouteDeps): void {
  app.post('/v1/grants', validateJson(grantRequestSchema), async (c) => {
    const body = c.get('body') as GrantRequest;
    const issued = await issueSession(c, body, d, { route: 'grants' });
    // Credentials must not be cached by any intermediary (RFC 9111 §5.2.2.5).
    c.header('Cache-Control', 'no-store');
    return c.json(issued.grantResponse(), 200);
  });
}
