import type { Transcript } from '../transcript/types.js';

export interface ReplayOptions {
  /** 1 = real time, 10 = ten times faster; 0 or Infinity = no waiting at all. */
  speed: number;
  write: (stream: 'stdout' | 'stderr', data: Buffer) => void | Promise<void>;
  sleep?: (ms: number) => Promise<void>;
  /** Longest single pause in real-time ms before speed is applied (long idle gaps are shortened). Default 5 s. */
  maxGapMs?: number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Plays a transcript's masked output back with its original timing: each chunk to the stream it came from,
 * after the pause that preceded it, divided by `speed`. Returns the total time waited (ms).
 */
export async function replayTranscript(t: Pick<Transcript, 'chunks'>, o: ReplayOptions): Promise<number> {
  const sleep = o.sleep ?? defaultSleep;
  const maxGap = o.maxGapMs ?? 5000;
  let prev = 0;
  let waited = 0;
  for (const c of t.chunks) {
    const gap = Math.min(Math.max(0, c.t - prev), maxGap);
    prev = c.t;
    if (o.speed > 0 && Number.isFinite(o.speed) && gap > 0) {
      const ms = gap / o.speed;
      if (ms >= 1) {
        await sleep(ms);
        waited += ms;
      }
    }
    await o.write(c.s === 'o' ? 'stdout' : 'stderr', Buffer.from(c.d, 'base64'));
  }
  return waited;
}
