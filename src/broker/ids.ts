import { randomFillSync } from 'node:crypto';

/**
 * Random identifiers (grant ids, request ids) from the CSPRNG, drawn from a pooled buffer: one randomFillSync per
 * 4 KiB instead of one per id, which matters at hundreds of grants per second. Each byte is used once.
 */
const POOL = Buffer.alloc(4096);
let offset = POOL.length;

export function randomId(bytes: number): string {
  if (bytes > POOL.length) throw new RangeError('randomId: too many bytes');
  if (offset + bytes > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.subarray(offset, offset + bytes).toString('base64url');
  // Zero what was handed out so a later bug reading the pool cannot reveal past ids.
  POOL.fill(0, offset, offset + bytes);
  offset += bytes;
  return id;
}
