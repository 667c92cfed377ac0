import { describe, expect, it } from 'vitest';
import { replayTranscript } from '../../src/audit/replay.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const chunks = [
  { t: 0, s: 'o' as const, d: b64('a') },
  { t: 400, s: 'e' as const, d: b64('b') },
  { t: 1000, s: 'o' as const, d: b64('c') },
  { t: 61_000, s: 'o' as const, d: b64('d') },
];

describe('replayTranscript', () => {
  function run(speed: number) {
    const sleeps: number[] = [];
    const writes: [string, string][] = [];
    return replayTranscript(
      { chunks },
      { speed, sleep: async (ms) => void sleeps.push(ms), write: (s, d) => void writes.push([s, d.toString()]) },
    ).then((waited) => ({ sleeps, writes, waited }));
  }

  it('keeps the recorded gaps at speed 1 (long idle gaps shortened to 5 s) and the stream of each chunk', async () => {
    const r = await run(1);
    expect(r.sleeps).toEqual([400, 600, 5000]);
    expect(r.writes).toEqual([['stdout', 'a'], ['stderr', 'b'], ['stdout', 'c'], ['stdout', 'd']]);
  });

  it('divides every gap by the speed, and does not wait at all at speed 0', async () => {
    expect((await run(4)).sleeps).toEqual([100, 150, 1250]);
    const max = await run(0);
    expect(max.sleeps).toEqual([]);
    expect(max.writes.map((w) => w[1]).join('')).toBe('abcd');
  });
});
