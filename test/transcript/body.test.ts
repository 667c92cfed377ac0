import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BodyDecoder, BodyWriter } from '../../src/transcript/body.js';
import { tempDir } from './helpers.js';

// The broker's writer hashes and writes on a helper thread past 8 MiB (offload); the client's writes itself.
// Both must give the same body, byte for byte, with and without a gap.
describe('BodyWriter: offloaded and direct writes give the same body', () => {
  for (const [name, max, total] of [
    ['whole (24 MB, under the limit)', 64 * 1024 * 1024, 24 * 1024 * 1024],
    ['head, gap and tail (40 MB over a 20 MiB limit)', 20 * 1024 * 1024, 40 * 1024 * 1024],
  ] as const) {
    it(name, () => {
      const dir = tempDir();
      const a = new BodyWriter(join(dir, 'direct'), { maxBytes: max });
      const b = new BodyWriter(join(dir, 'offload'), { maxBytes: max, offload: true, durable: true });
      const whole = createHash('sha256');
      for (let n = 0, i = 0; n < total; i++) {
        const piece = randomBytes(1 + ((i * 7919) % (300 * 1024)));
        whole.update(piece);
        n += piece.length;
        a.write(i % 5 ? 'o' : 'e', piece, i);
        b.write(i % 5 ? 'o' : 'e', piece, i);
      }
      const ra = a.finish();
      const rb = b.finish();
      expect(rb).toEqual(ra);
      const fa = readFileSync(join(dir, 'direct'));
      expect(readFileSync(join(dir, 'offload')).equals(fa)).toBe(true);
      expect(createHash('sha256').update(fa).digest('hex')).toBe(ra.sha256);
      expect(fa.length).toBe(ra.size);
      if (ra.gapBytes) expect(ra.outputSha256).toBe(whole.digest('hex'));
      else expect(ra.outputSha256).toBeNull();
      // And it decodes: whole frames to the end.
      const dec = new BodyDecoder();
      expect(dec.push(fa).length).toBeGreaterThan(0);
      dec.end();
    });
  }
});
