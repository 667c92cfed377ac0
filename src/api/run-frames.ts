/**
 * The stream of a remote run (`POST /v1/runs/{id}/start`, media type application/vnd.guard-aws.run-stream):
 * frames of `[type: u8][length: u32 big-endian][payload]`, in the order the broker produced them.
 *   1 stdout  masked bytes aws wrote to stdout
 *   2 stderr  masked bytes aws wrote to stderr
 *   3 exit    JSON {exitCode, recordId?}: the last frame of a run that ended
 *   4 error   JSON {code, message}: the last frame of a run the broker could not carry out
 *   5 file    JSON {token, name}: a file aws wrote for argv token `token` begins (`name`: '' for the file named by
 *             the token itself, else a relative path inside the directory it names)
 *   6 data    bytes of that file
 *   7 end     the file is complete (the client renames it into place only now)
 * File frames come after aws exited 0 and before the exit frame.
 */
export const RUN_STREAM_TYPE = 'application/vnd.guard-aws.run-stream';

export const FRAME = { stdout: 1, stderr: 2, exit: 3, error: 4, file: 5, data: 6, fileEnd: 7 } as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** Largest payload one frame may carry (the broker sends at most 64 KiB; a peer claiming more is broken). */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

export interface RunExitFrame {
  exitCode: number;
  /** The broker-attested transcript's audit record. */
  recordId?: string;
}
export interface RunFileFrame {
  token: number;
  name: string;
}
export interface RunErrorFrame {
  code: string;
  message: string;
}

export function encodeFrame(type: FrameType, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export interface Frame {
  type: number;
  payload: Buffer;
}

/** Incremental decoder: push bytes as they arrive, get whole frames back. Throws on a frame that is too large. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (len > MAX_FRAME_PAYLOAD) throw new Error(`run stream: frame of ${len} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf[0]!, payload: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
  /** Bytes of an incomplete frame still held (non-zero at the end of the stream = the stream was cut). */
  get pending(): number {
    return this.buf.length;
  }
}
