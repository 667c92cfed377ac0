import { Transform, type TransformCallback } from 'node:stream';
import { MASK, type CompiledMasking, type Rule, type RuleAction } from './rules.js';

/**
 * A streaming masker: bytes in, masked bytes out, in constant memory.
 *
 * Output is scanned as latin1 text (one character per byte), so arbitrary bytes (binary `s3 cp … -` output,
 * invalid UTF-8) pass through unchanged and only the masked ranges differ. Between chunks it keeps at most
 * `carry` characters (≥ the longest possible match of any rule) plus a little look-behind context; a secret
 * of unbounded length (a JSON string, a PEM body, a base64 run) is consumed in a "skipping" state that holds
 * nothing, so memory stays bounded whatever the output's size and however it is chunked.
 */

/** Characters kept before the emit position so look-behind assertions see what precedes a match. */
const CONTEXT = 64;
/** A custom pattern still matching at the end of the buffer is held back at most this long, then masked. */
const MAX_HOLD = 64 * 1024;
/** End of a JSON string: the closing quote, an escape, or a raw newline (which proves it was not JSON). */
const JSON_STRING_STOP = /["\\\n]/g;

type Mode =
  | { kind: 'normal' }
  | { kind: 'json' }
  | { kind: 'charset'; body: RegExp }
  | { kind: 'until'; end: RegExp; endMaxLen: number };

const NORMAL: Mode = { kind: 'normal' };

export class StreamMasker {
  private buf = '';
  private pos = 0;
  private mode: Mode = NORMAL;
  private pendingEscape = false;
  private readonly starts: number[];
  private readonly ends: number[];
  /** Bytes masked so far (for tests and the transcript's summary; not the secrets themselves). */
  maskedCount = 0;

  constructor(private readonly c: CompiledMasking) {
    const n = c.rules.length + c.literals.length;
    this.starts = new Array<number>(n).fill(-1);
    this.ends = new Array<number>(n).fill(-1);
  }

  /** Feeds a chunk; returns the masked bytes that are final (possibly empty). */
  push(chunk: Buffer | string): Buffer {
    this.buf += typeof chunk === 'string' ? Buffer.from(chunk, 'utf8').toString('latin1') : chunk.toString('latin1');
    return Buffer.from(this.run(false), 'latin1');
  }

  /** Flushes what was held back; the masker is then ready for a new stream. */
  end(): Buffer {
    const out = this.run(true);
    this.buf = '';
    this.pos = 0;
    this.mode = NORMAL;
    this.pendingEscape = false;
    return Buffer.from(out, 'latin1');
  }

  private run(eof: boolean): string {
    const { rules, literals, carry } = this.c;
    const buf = this.buf;
    const len = buf.length;
    const out: string[] = [];
    const starts = this.starts;
    const ends = this.ends;
    starts.fill(-1);
    let pos = this.pos;

    for (;;) {
      const mode = this.mode;
      if (mode.kind === 'json') {
        if (this.pendingEscape) {
          if (pos >= len) break;
          pos++;
          this.pendingEscape = false;
        }
        JSON_STRING_STOP.lastIndex = pos;
        const m = JSON_STRING_STOP.exec(buf);
        if (!m) {
          pos = len;
          break;
        }
        const ch = buf[m.index]!;
        if (ch === '\\') {
          if (m.index + 1 < len) {
            pos = m.index + 2;
          } else {
            this.pendingEscape = true;
            pos = len;
          }
          continue;
        }
        out.push(ch);
        pos = m.index + 1;
        this.mode = NORMAL;
        continue;
      }
      if (mode.kind === 'charset') {
        mode.body.lastIndex = pos;
        const m = mode.body.exec(buf);
        if (!m) {
          pos = len;
          break;
        }
        pos = m.index;
        this.mode = NORMAL;
        continue;
      }
      if (mode.kind === 'until') {
        mode.end.lastIndex = pos;
        const m = mode.end.exec(buf);
        if (m) {
          out.push(m[0]);
          pos = m.index + m[0].length;
          this.mode = NORMAL;
          continue;
        }
        // Keep a possible partial END line; everything before it is part of the secret and dropped.
        pos = eof ? len : Math.max(pos, len - mode.endMaxLen);
        break;
      }

      const limit = eof ? len : len - carry;
      if (pos >= limit) break;
      // Earliest match at or after pos; each rule's next match is cached until pos passes it.
      let best = -1;
      let bestStart = Infinity;
      for (let i = 0; i < rules.length; i++) {
        if (starts[i]! < pos) this.find(i, rules[i]!, buf, pos);
        if (starts[i]! < bestStart) {
          bestStart = starts[i]!;
          best = i;
        }
      }
      for (let j = 0; j < literals.length; j++) {
        const i = rules.length + j;
        if (starts[i]! < pos) {
          const at = buf.indexOf(literals[j]!, pos);
          starts[i] = at < 0 ? Infinity : at;
          ends[i] = at < 0 ? Infinity : at + literals[j]!.length;
        }
        if (starts[i]! < bestStart) {
          bestStart = starts[i]!;
          best = i;
        }
      }
      if (best < 0 || bestStart >= limit) {
        out.push(buf.slice(pos, limit));
        pos = limit;
        break;
      }
      const end = ends[best]!;
      if (best < rules.length) {
        const rule = rules[best]!;
        // A custom pattern that runs into the end of what we have might match more with the next chunk.
        if (!eof && end >= len && rule.action.kind === 'replace' && len - bestStart < MAX_HOLD) {
          out.push(buf.slice(pos, bestStart));
          pos = bestStart;
          break;
        }
        out.push(buf.slice(pos, bestStart));
        this.apply(rule.action, buf.slice(bestStart, end), out);
      } else {
        out.push(buf.slice(pos, bestStart), MASK);
        this.maskedCount++;
      }
      pos = end;
    }

    const keepFrom = Math.max(0, pos - CONTEXT);
    this.buf = keepFrom > 0 ? buf.slice(keepFrom) : buf;
    this.pos = pos - keepFrom;
    return out.join('');
  }

  private find(i: number, rule: Rule, buf: string, pos: number): void {
    const re = rule.re;
    re.lastIndex = pos;
    for (;;) {
      const m = re.exec(buf);
      if (!m) {
        this.starts[i] = Infinity;
        this.ends[i] = Infinity;
        return;
      }
      if (m[0].length === 0) {
        re.lastIndex = m.index + 1;
        continue;
      }
      this.starts[i] = m.index;
      this.ends[i] = m.index + m[0].length;
      return;
    }
  }

  private apply(action: RuleAction, matched: string, out: string[]): void {
    this.maskedCount++;
    switch (action.kind) {
      case 'jsonString':
        out.push(matched, MASK);
        this.mode = { kind: 'json' };
        return;
      case 'charset':
        out.push(action.keepOpener ? matched : '', MASK);
        this.mode = { kind: 'charset', body: action.body };
        return;
      case 'until':
        out.push(matched, MASK);
        this.mode = { kind: 'until', end: action.end, endMaxLen: action.endMaxLen };
        return;
      case 'replace':
        out.push(action.tail > 0 ? matched.slice(0, matched.length - action.tail) : '', MASK);
        return;
    }
  }
}

/** A Transform stream around a fresh StreamMasker (one per output stream: stdout and stderr mask independently). */
export function createMaskingStream(compiled: CompiledMasking): Transform & { masker: StreamMasker } {
  const masker = new StreamMasker(compiled);
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const b = masker.push(chunk);
      cb(null, b.length ? b : undefined);
    },
    flush(cb: TransformCallback) {
      const b = masker.end();
      cb(null, b.length ? b : undefined);
    },
  });
  return Object.assign(t, { masker });
}

/** Masks a whole string at once (error messages, small texts). */
export function maskText(compiled: CompiledMasking, text: string): string {
  const m = new StreamMasker(compiled);
  return Buffer.concat([m.push(text), m.end()]).toString('utf8');
}
