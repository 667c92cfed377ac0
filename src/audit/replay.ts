import { TerminalOutputFilter } from '../terminal-text.js';
import { BodyDecoder, gapBytes, type BodyFrame } from '../transcript/body.js';
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
 * The output was written by the recorded call, so it is caller-controlled: it goes through a
 * TerminalOutputFilter (src/terminal-text.ts) per stream, which keeps text, newlines, tabs, CR and colours and
 * shows every other control (clear screen, cursor moves, OSC 52 clipboard writes, titles, links) as an escape.
 * The exact bytes stay available as base64 in `audit show --json`.
 */
export async function replayTranscript(t: Pick<Transcript, 'chunks'>, o: ReplayOptions): Promise<number> {
  return replayFrames(
    (function* () {
      for (const c of t.chunks) yield { type: c.s, t: c.t, data: Buffer.from(c.d, 'base64') } as BodyFrame;
    })(),
    o,
  );
}

/**
 * Decodes a body stream (src/transcript/body.ts) into frames as it arrives: memory is one network piece plus one
 * frame, whatever the body's size.
 */
export async function* bodyFrames(source: AsyncIterable<Uint8Array>): AsyncGenerator<BodyFrame> {
  const dec = new BodyDecoder();
  for await (const piece of source) yield* dec.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
  dec.end();
}

/** Plays frames (inline v1 chunks, or a v2 body streamed from storage) back; see replayTranscript. */
export async function replayFrames(frames: Iterable<BodyFrame> | AsyncIterable<BodyFrame>, o: ReplayOptions): Promise<number> {
  const sleep = o.sleep ?? defaultSleep;
  const maxGap = o.maxGapMs ?? 5000;
  let prev = 0;
  let waited = 0;
  const filters = { stdout: new TerminalOutputFilter(), stderr: new TerminalOutputFilter() };
  const emit = async (stream: 'stdout' | 'stderr', text: string) => {
    if (text) await o.write(stream, Buffer.from(text, 'utf8'));
  };
  for await (const c of frames) {
    if (c.type === 'g') {
      // The limit's gap (head and tail kept): said on stderr, in the place it happened.
      const n = gapBytes(c);
      await emit('stderr', `\n[guard-aws: ${n === null ? 'some' : n} bytes of output left out here (transcript limit); head and tail kept]\n`);
      continue;
    }
    const gap = Math.min(Math.max(0, c.t - prev), maxGap);
    prev = c.t;
    if (o.speed > 0 && Number.isFinite(o.speed) && gap > 0) {
      const ms = gap / o.speed;
      if (ms >= 1) {
        await sleep(ms);
        waited += ms;
      }
    }
    const stream = c.type === 'o' ? 'stdout' : 'stderr';
    await emit(stream, filters[stream].push(c.data));
  }
  await emit('stdout', filters.stdout.end());
  await emit('stderr', filters.stderr.end());
  return waited;
}
