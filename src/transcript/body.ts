import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { closeSync, fsyncSync, openSync, readSync, rmSync, statSync, writeSync, writevSync, ftruncateSync } from 'node:fs';

/**
 * A transcript body: the run's whole (masked) output as ONE stream of frames, stdout and stderr interleaved in the
 * order they arrived, each with its time. One combined stream rather than one body per stream because the order of
 * stdout against stderr and the pauses between them are part of what happened (replay plays them back), and one
 * digest then binds all of it.
 *
 * Format (`gab1`): the magic `GAWSBODY1\n`, then frames:
 *   type (1 byte: `o` stdout, `e` stderr, `g` gap) · t (uint32 BE, ms since the run started) · length (uint32 BE) · data
 * A `g` frame's data is 8 bytes: the number of output bytes left out there (uint64 BE; all ones = unknown).
 *
 * The limit rule (SECURITY.md, "Transcripts"): up to `max` bytes of output are kept whole. Beyond it the body keeps
 * the first max/2 bytes (head), a gap frame saying how many bytes were left out, and the last ≤ max/2 bytes (tail),
 * while the transcript records the SHA-256 and size of the WHOLE output (all data bytes in order, no framing).
 */
export const BODY_MAGIC = Buffer.from('GAWSBODY1\n', 'latin1');
export const BODY_FORMAT = 'gab1';
export const FRAME_HEADER = 9;
/** Default limit of output kept whole: 1 GiB (broker config `transcripts.maxBodyBytes`). */
export const DEFAULT_MAX_BODY_BYTES = 1024 ** 3;
/** Tail slots: frames never cross a slot, so the oldest slot kept always starts on a frame boundary. */
const SLOT_BYTES = 256 * 1024;
const SLOT_HEADER = 12; // uint64 BE sequence number + uint32 BE bytes used
const UNKNOWN_GAP = 0xffffffffffffffffn;

/** What a signed transcript says of its body (covered by the transcript signature). */
export interface BodyRef {
  format: typeof BODY_FORMAT;
  /** Hex SHA-256 of the body bytes as stored. */
  sha256: string;
  /** Bytes of the body as stored. */
  size: number;
  /**
   * Hex SHA-256 of the whole output (the data bytes of every frame in order, before any cut) when the body does not
   * hold all of it (gapBytes ≠ 0). Null when the body is the whole output (its own digest covers it), or when it is
   * unknown (gapBytes null: a killed run past the limit).
   */
  outputSha256: string | null;
  /** Bytes of output in all (before any cut). */
  outputBytes: number;
  /** Bytes of output left out of the body (between head and tail); 0 when the body is the whole output; null unknown. */
  gapBytes: number | null;
}

export interface BodyFrame {
  type: 'o' | 'e' | 'g';
  t: number;
  data: Buffer;
}

function header(type: 'o' | 'e' | 'g', t: number, len: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h[0] = type.charCodeAt(0);
  h.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.round(t))), 1);
  h.writeUInt32BE(len, 5);
  return h;
}

export function gapData(bytes: number | null): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(bytes === null ? UNKNOWN_GAP : BigInt(bytes));
  return b;
}

/**
 * Streaming decoder: push bytes in any pieces, get whole frames out. Holds at most one frame's header and data
 * (frames are at most 256 KiB by construction here; a larger declared length is refused as damage).
 */
export class BodyDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private magicSeen = false;
  static readonly MAX_FRAME = 16 * 1024 * 1024;

  push(chunk: Buffer): BodyFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: BodyFrame[] = [];
    if (!this.magicSeen) {
      if (this.buf.length < BODY_MAGIC.length) return out;
      if (!this.buf.subarray(0, BODY_MAGIC.length).equals(BODY_MAGIC)) throw new TypeError('not a transcript body (bad magic)');
      this.buf = this.buf.subarray(BODY_MAGIC.length);
      this.magicSeen = true;
    }
    let off = 0;
    while (this.buf.length - off >= FRAME_HEADER) {
      const type = String.fromCharCode(this.buf[off]!);
      if (type !== 'o' && type !== 'e' && type !== 'g') throw new TypeError(`transcript body: bad frame type at byte ${off}`);
      const len = this.buf.readUInt32BE(off + 5);
      if (len > BodyDecoder.MAX_FRAME) throw new TypeError('transcript body: frame too large');
      if (this.buf.length - off - FRAME_HEADER < len) break;
      out.push({ type, t: this.buf.readUInt32BE(off + 1), data: Buffer.from(this.buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len)) });
      off += FRAME_HEADER + len;
    }
    this.buf = off ? this.buf.subarray(off) : this.buf;
    return out;
  }

  /** Throws when the stream ended inside a frame (a cut body). */
  end(): void {
    if (!this.magicSeen || this.buf.length) throw new TypeError('transcript body: ends inside a frame');
  }
}

/** Bytes a gap frame says were left out; null when unknown. */
export function gapBytes(f: BodyFrame): number | null {
  const v = f.data.readBigUInt64BE(0);
  return v === UNKNOWN_GAP ? null : Number(v);
}

export interface BodyWriterOptions {
  /** Output kept whole up to this many bytes; beyond it head + gap + tail (see above). */
  maxBytes?: number;
  /** fsync the body before finish() returns (the broker does: the record will point at it). */
  durable?: boolean;
  /**
   * Past the first 8 MiB, hash and write the body on a helper thread (AppendThread) so the thread that masks the
   * output does not also pay a SHA-256 and a write(2) per byte. The broker sets it; the client's recorder does not,
   * because it promises that every chunk is on disk before onChunk returns (a killed run loses nothing).
   */
  offload?: boolean;
}

/** Head bytes written directly before an offloading writer starts its helper thread (small bodies never start one). */
const OFFLOAD_FROM = 8 * 1024 * 1024;

/**
 * Writes a body file as output arrives, in bounded memory (one tail slot, 256 KiB): the head goes straight to
 * `path`; past max/2 the output goes to a ring of slots in `path.tail` that keeps the most recent max/2 bytes.
 * finish() appends the tail (after a gap frame when the ring wrapped) and returns the BodyRef. Every write is a
 * plain write(2) before onChunk returns, so a killed run leaves a body that recover() can finish.
 */
export class BodyWriter {
  private fd: number;
  private tailFd: number | null = null;
  private readonly half: number;
  private readonly slots: number;
  private headData = 0;
  private inTail = false;
  private headSize: number;
  /**
   * The whole output's digest, started only when the tail ring is about to overwrite its oldest slot (the first
   * output to be left out): then the head and the ring, which still hold everything so far, are read back once and
   * hashed, and every byte after is hashed as it comes. Output that fits needs no second digest: the body's covers it.
   */
  private out: Hash | null = null;
  /** The body's own digest, kept as it is written (the file is never read back to hash it). */
  private readonly body: Hash = createHash('sha256');
  private sink: AppendThread | null = null;
  private outBytes = 0;
  private slot = Buffer.allocUnsafe(SLOT_BYTES);
  private slotUsed = SLOT_HEADER;
  private slotSeq = 0;
  private done: BodyRef | null = null;
  private lastT = 0;

  constructor(
    readonly path: string,
    private readonly o: BodyWriterOptions = {},
  ) {
    const max = o.maxBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.half = Math.floor(max / 2);
    this.slots = tailSlots(this.half);
    this.fd = openSync(path, 'wx+', 0o600);
    this.append([BODY_MAGIC]);
    this.headSize = BODY_MAGIC.length;
  }

  get outputBytes(): number {
    return this.outBytes;
  }

  write(stream: 'o' | 'e', data: Buffer, t: number): void {
    if (this.done) throw new Error('transcript body: write after finish');
    if (!data.length) return;
    this.lastT = t;
    this.outBytes += data.length;
    let rest = data;
    // The head counts its framing (9 bytes a frame) against the limit too, so many tiny chunks are bounded as well.
    const room = this.half - (this.headSize - BODY_MAGIC.length) - FRAME_HEADER;
    if (!this.inTail && room > 0) {
      const part = rest.subarray(0, room);
      if (this.o.offload && !this.sink && this.headSize >= OFFLOAD_FROM) this.sink = new AppendThread(this.fd, this.headSize);
      this.append([header(stream, t, part.length), part]);
      this.headData += part.length;
      this.headSize += FRAME_HEADER + part.length;
      rest = rest.subarray(part.length);
    }
    if (rest.length) this.inTail = true;
    while (rest.length) {
      if (this.tailFd === null) this.tailFd = openSync(`${this.path}.tail`, 'w+', 0o600);
      let room = SLOT_BYTES - this.slotUsed - FRAME_HEADER;
      if (room <= 0) {
        this.flushSlot();
        room = SLOT_BYTES - this.slotUsed - FRAME_HEADER;
      }
      const part = rest.subarray(0, room);
      header(stream, t, part.length).copy(this.slot, this.slotUsed);
      part.copy(this.slot, this.slotUsed + FRAME_HEADER);
      this.out?.update(part);
      this.slotUsed += FRAME_HEADER + part.length;
      rest = rest.subarray(part.length);
      // The slot is written in place after every chunk, so a kill loses nothing written so far.
      this.writeSlot();
    }
  }

  /** Appends to the body file and its digest: here, or on the helper thread once it runs. */
  private append(bufs: Buffer[]): void {
    if (this.sink) {
      for (const b of bufs) this.sink.push(b);
      return;
    }
    writeAll(this.fd, bufs);
    for (const b of bufs) this.body.update(b);
  }

  private writeSlot(): void {
    this.slot.writeBigUInt64BE(BigInt(this.slotSeq), 0);
    this.slot.writeUInt32BE(this.slotUsed, 8);
    writeSync(this.tailFd!, this.slot, 0, this.slotUsed, (this.slotSeq % this.slots) * SLOT_BYTES);
  }

  private flushSlot(): void {
    this.writeSlot();
    this.slotSeq++;
    this.slotUsed = SLOT_HEADER;
    if (this.slotSeq === this.slots) this.startOutputHash();
  }

  /** Hashes what head and ring hold (all output so far: nothing was overwritten yet), from disk, 1 MiB at a time. */
  private startOutputHash(): void {
    // The head must be on disk to be read back.
    this.sink?.drain();
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    const dec = new BodyDecoder();
    for (let off = 0; off < this.headSize; ) {
      const n = readSync(this.fd, buf, 0, Math.min(buf.length, this.headSize - off), off);
      if (n <= 0) throw new Error('transcript body: head shorter than written');
      for (const f of dec.push(Buffer.from(buf.subarray(0, n)))) h.update(f.data);
      off += n;
    }
    for (const slot of readSlots(this.tailFd!, this.slots)) {
      let o = 0;
      while (o + FRAME_HEADER <= slot.data.length) {
        const len = slot.data.readUInt32BE(o + 5);
        h.update(slot.data.subarray(o + FRAME_HEADER, o + FRAME_HEADER + len));
        o += FRAME_HEADER + len;
      }
    }
    this.out = h;
  }

  /** Appends the tail, closes the file and returns what the transcript records. */
  finish(): BodyRef {
    if (this.done) return this.done;
    let gap = 0;
    let size = this.headSize;
    if (this.tailFd !== null) {
      if (this.slotUsed > SLOT_HEADER) this.writeSlot();
      const { kept, wrapped } = appendTail(this.tailFd, this.slots, this.lastT, (b) => ((size += b.length), this.append([b])), this.outBytes - this.headData);
      gap = wrapped ? this.outBytes - this.headData - kept : 0;
      closeSync(this.tailFd);
      rmSync(`${this.path}.tail`, { force: true });
      this.tailFd = null;
    }
    const sha256 = this.sink ? this.sink.finish() : this.body.digest('hex');
    if (this.o.durable) fsyncSync(this.fd);
    closeSync(this.fd);
    this.done = { format: BODY_FORMAT, sha256, size, outputSha256: gap ? this.out!.digest('hex') : null, outputBytes: this.outBytes, gapBytes: gap };
    return this.done;
  }

  /** Stops without finishing (the run failed before anything could be kept): removes the files. */
  abort(): void {
    if (this.done) return;
    this.sink?.stop();
    try {
      closeSync(this.fd);
    } catch {
      /* closed */
    }
    if (this.tailFd !== null) closeSync(this.tailFd);
    rmSync(this.path, { force: true });
    rmSync(`${this.path}.tail`, { force: true });
  }
}

/** Slots of the tail ring: room for half the limit of framed output, never fewer than two. */
function tailSlots(half: number): number {
  return Math.max(2, Math.ceil(half / (SLOT_BYTES - SLOT_HEADER)));
}

/** Largest body file a limit of `maxBytes` can give: the limit plus the ring's slot rounding and the gap frame. */
export function maxBodyFileBytes(maxBytes: number): number {
  return maxBytes + SLOT_BYTES * 2 + BODY_MAGIC.length + FRAME_HEADER + 8;
}

/** Reads the ring's slots oldest first; `wrapped` when a slot was overwritten (output was left out). */
function readSlots(tailFd: number, slots: number): { seq: number; data: Buffer }[] {
  const found: { seq: number; data: Buffer }[] = [];
  const buf = Buffer.allocUnsafe(SLOT_BYTES);
  for (let i = 0; i < slots; i++) {
    const n = readSync(tailFd, buf, 0, SLOT_BYTES, i * SLOT_BYTES);
    if (n < SLOT_HEADER) break;
    const used = buf.readUInt32BE(8);
    if (used <= SLOT_HEADER || used > n) continue;
    found.push({ seq: Number(buf.readBigUInt64BE(0)), data: Buffer.from(buf.subarray(SLOT_HEADER, used)) });
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** Data bytes in a run of whole frames; -1 when they are not whole frames. */
function frameDataBytes(b: Buffer): number {
  let off = 0;
  let n = 0;
  while (off + FRAME_HEADER <= b.length) {
    const len = b.readUInt32BE(off + 5);
    if (off + FRAME_HEADER + len > b.length) return -1;
    n += len;
    off += FRAME_HEADER + len;
  }
  return off === b.length ? n : -1;
}

function appendTail(
  tailFd: number,
  slots: number,
  t: number,
  wrote: (b: Buffer) => void,
  afterHead: number | null,
): { kept: number; wrapped: boolean } {
  const found = readSlots(tailFd, slots);
  const wrapped = found.length > 0 && found[0]!.seq > 0;
  let kept = 0;
  for (const s of found) kept += Math.max(0, frameDataBytes(s.data));
  if (wrapped) {
    wrote(Buffer.concat([header('g', t, 8), gapData(afterHead === null ? null : afterHead - kept)]));
  }
  for (const s of found) wrote(s.data);
  return { kept, wrapped };
}

/**
 * Finishes the body a killed run left behind: cuts a torn last frame, appends the tail ring when there is one.
 * The whole output's digest is unknown then (the hash state died with the run): outputSha256 is null and a gap's
 * size unknown.
 */
export function recoverBody(path: string, maxBytes = DEFAULT_MAX_BODY_BYTES): BodyRef {
  const fd = openSync(path, 'r+');
  try {
    const size = statSync(path).size;
    // Walk the frames of the head to find the end of the last whole one.
    const hb = Buffer.allocUnsafe(FRAME_HEADER);
    let off = BODY_MAGIC.length;
    let data = 0;
    let lastT = 0;
    if (size < BODY_MAGIC.length) {
      ftruncateSync(fd, 0);
      writeSync(fd, BODY_MAGIC, 0, BODY_MAGIC.length, 0);
    } else {
      while (off + FRAME_HEADER <= size) {
        readSync(fd, hb, 0, FRAME_HEADER, off);
        const len = hb.readUInt32BE(5);
        if (off + FRAME_HEADER + len > size) break;
        lastT = hb.readUInt32BE(1);
        data += len;
        off += FRAME_HEADER + len;
      }
      ftruncateSync(fd, off);
    }
    let total = Math.max(off, BODY_MAGIC.length);
    let outputBytes = data;
    let gap: number | null = 0;
    let tailFd: number | null = null;
    try {
      tailFd = openSync(`${path}.tail`, 'r');
    } catch {
      /* no tail: the output never passed half the limit */
    }
    if (tailFd !== null) {
      const half = Math.floor(maxBytes / 2);
      const slots = tailSlots(half);
      // Seek the writes to the end of the head.
      const end = { pos: total };
      const writeAt = (b: Buffer) => {
        writeSync(fd, b, 0, b.length, end.pos);
        end.pos += b.length;
      };
      const found = readSlots(tailFd, slots).filter((s) => frameDataBytes(s.data) >= 0);
      const wrapped = found.length > 0 && found[0]!.seq > 0;
      if (wrapped) writeAt(Buffer.concat([header('g', lastT, 8), gapData(null)]));
      for (const s of found) {
        writeAt(s.data);
        outputBytes += frameDataBytes(s.data);
      }
      closeSync(tailFd);
      total = end.pos;
      gap = wrapped ? null : 0;
    }
    fsyncSync(fd);
    closeSync(fd);
    rmSync(`${path}.tail`, { force: true });
    return {
      format: BODY_FORMAT,
      sha256: hashFileSync(path),
      size: total,
      // Unknown beyond what is kept once a gap was cut; otherwise the kept data is the whole output.
      outputSha256: null,
      outputBytes,
      gapBytes: gap,
    };
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    throw e;
  }
}

/** writev until every byte is written (a short write is finished with plain writes; rare on a regular file). */
function writeAll(fd: number, bufs: Buffer[]): void {
  let total = 0;
  for (const b of bufs) total += b.length;
  let n = writevSync(fd, bufs);
  if (n >= total) return;
  const rest = Buffer.concat(bufs).subarray(n);
  for (let off = 0; off < rest.length; ) off += writeSync(fd, rest, off);
}

/** Hex SHA-256 of a file, read in 1 MiB pieces. */
export function hashFileSync(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Bytes of the shared ring between a writer and its helper thread. */
const RING_BYTES = 8 * 1024 * 1024;

// Plain JS, evaluated as the helper thread's script (no file to resolve: works from src/, dist/ and the bundle).
// ctrl (BigInt64): [0] bytes pushed, [1] bytes written, [2] 1 = no more will come, [3] 1 = done, -1 = failed.
const APPEND_WORKER = `
const { workerData } = require('node:worker_threads');
const { readSync, writeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { sab, fd, ring: size, prefix } = workerData;
const ctrl = new BigInt64Array(sab, 0, 4);
const ring = Buffer.from(sab, 64, size);
const h = createHash('sha256');
try {
  // What the writer wrote itself before this thread started: hashed from the file (the page cache).
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let off = 0; off < prefix; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, prefix - off), off);
    if (n <= 0) throw new Error('short read');
    h.update(buf.subarray(0, n));
    off += n;
  }
  for (;;) {
    const w = Atomics.load(ctrl, 0);
    const c = Atomics.load(ctrl, 1);
    if (w === c) {
      if (Atomics.load(ctrl, 2) === 1n && Atomics.load(ctrl, 0) === c) break;
      Atomics.wait(ctrl, 0, w, 1000);
      continue;
    }
    const start = Number(c % BigInt(size));
    const n = Math.min(Number(w - c), size - start);
    const view = ring.subarray(start, start + n);
    h.update(view);
    for (let off = 0; off < n; ) off += writeSync(fd, view, off, n - off);
    Atomics.store(ctrl, 1, c + BigInt(n));
    Atomics.notify(ctrl, 1);
  }
  h.digest().copy(Buffer.from(sab, 32, 32));
  Atomics.store(ctrl, 3, 1n);
} catch (e) {
  Atomics.store(ctrl, 3, -1n);
}
Atomics.notify(ctrl, 1);
Atomics.notify(ctrl, 3);
`;

/**
 * The helper thread of an offloading BodyWriter: the writer copies each piece into a shared ring (bounded: it waits
 * when the ring is full, as a slow disk would make write(2) wait) and the thread hashes it and appends it to the
 * body file, in order. finish() waits for the thread to write the rest and hands back the digest.
 */
class AppendThread {
  private readonly sab = new SharedArrayBuffer(64 + RING_BYTES);
  private readonly ctrl = new BigInt64Array(this.sab, 0, 4);
  private readonly ring = new Uint8Array(this.sab, 64, RING_BYTES);
  private pushed = 0n;
  private readonly worker: Worker;

  constructor(fd: number, prefix: number) {
    this.worker = new Worker(APPEND_WORKER, { eval: true, workerData: { sab: this.sab, fd, ring: RING_BYTES, prefix } });
    // Never keeps the process alive on its own; errors are reported through ctrl[3].
    this.worker.unref();
    this.worker.on('error', () => Atomics.store(this.ctrl, 3, -1n));
  }

  private stalled = 0;

  /** Waits for the thread to move; fails when it reported an error or made no progress for a minute. */
  private wait(index: number, value: bigint): void {
    const r = Atomics.wait(this.ctrl, index, value, 1000);
    if (Atomics.load(this.ctrl, 3) === -1n) throw new Error('transcript body: the helper thread could not write the body');
    this.stalled = r === 'timed-out' ? this.stalled + 1 : 0;
    if (this.stalled >= 60) throw new Error('transcript body: the helper thread made no progress for a minute');
  }

  push(b: Uint8Array): void {
    for (let off = 0; off < b.length; ) {
      const written = Atomics.load(this.ctrl, 1);
      const free = RING_BYTES - Number(this.pushed - written);
      if (free === 0) {
        this.wait(1, written);
        continue;
      }
      const pos = Number(this.pushed % BigInt(RING_BYTES));
      const n = Math.min(free, b.length - off, RING_BYTES - pos);
      this.ring.set(b.subarray(off, off + n), pos);
      off += n;
      this.pushed += BigInt(n);
      Atomics.store(this.ctrl, 0, this.pushed);
      Atomics.notify(this.ctrl, 0);
    }
  }

  /** Waits until everything pushed is in the file. */
  drain(): void {
    for (let w = Atomics.load(this.ctrl, 1); w < this.pushed; w = Atomics.load(this.ctrl, 1)) this.wait(1, w);
  }

  /** Waits for the rest to be written; the body's hex SHA-256. */
  finish(): string {
    Atomics.store(this.ctrl, 2, 1n);
    Atomics.notify(this.ctrl, 0);
    while (Atomics.load(this.ctrl, 3) === 0n) this.wait(3, 0n);
    return Buffer.from(this.sab, 32, 32).toString('hex');
  }

  stop(): void {
    Atomics.store(this.ctrl, 2, 1n);
    Atomics.notify(this.ctrl, 0);
    void this.worker.terminate();
  }
}
