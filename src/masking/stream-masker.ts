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
 *
 * Only the scanning is done on a string (RegExps need one); what is emitted is copied byte for byte from the
 * input Buffer (latin1: character offsets are byte offsets), so there is one string per chunk, no string
 * joining and no string→Buffer encoding (issue 14: those conversions were 16% of masking's CPU, in GC).
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
const JSON_MODE: Mode = { kind: 'json' };
const MASK_BYTES = Buffer.from(MASK, 'latin1');
const EMPTY = Buffer.alloc(0);

/**
 * What one run emits, in order: byte ranges of the current window as [start, end) pairs; a pair (-1, -1) is
 * the mask. Reused between chunks.
 */
class Emitted {
  pairs: number[] = [];
  bytes = 0;
  range(start: number, end: number): void {
    if (end <= start) return;
    const p = this.pairs;
    const n = p.length;
    // Adjacent ranges (text up to a match, then the match kept) are merged into one copy.
    if (n > 0 && p[n - 1] === start && p[n - 2]! >= 0) p[n - 1] = end;
    else p.push(start, end);
    this.bytes += end - start;
  }
  mask(): void {
    this.pairs.push(-1, -1);
    this.bytes += MASK_BYTES.length;
  }
  /** Copies the ranges out of `window` into one new Buffer and resets. */
  take(window: Buffer): Buffer {
    if (this.bytes === 0) {
      this.pairs.length = 0;
      return EMPTY;
    }
    const out = Buffer.allocUnsafe(this.bytes);
    const p = this.pairs;
    let at = 0;
    for (let i = 0; i < p.length; i += 2) {
      const start = p[i]!;
      if (start < 0) at += MASK_BYTES.copy(out, at);
      else at += window.copy(out, at, start, p[i + 1]!);
    }
    p.length = 0;
    this.bytes = 0;
    return out;
  }
}

export class StreamMasker {
  /** Bytes carried over from the previous chunk (look-behind context and what may still start a match). */
  private buf: Buffer = EMPTY;
  private pos = 0;
  private readonly emitted = new Emitted();
  private mode: Mode = NORMAL;
  private pendingEscape = false;
  private readonly starts: number[];
  private readonly ends: number[];
  /** Per rule, the next position of each of its anchors in the current chunk (-1: not searched yet). */
  private readonly anchorAt: number[][];
  /**
   * Secrets found by a rule that keeps what precedes them (an access key id, then up to 200 characters, then the
   * secret: `replace` with a tail), as [start, end) in the current window. The text between is scanned like any
   * other, so a secret inside it (a presigned URL's X-Amz-Security-Token after its X-Amz-Credential) is masked by
   * its own rule; the tail is masked when the scan reaches it, or what is left of it if a mask ran into it.
   */
  private deferred: [number, number][] = [];
  /** Bytes masked so far (for tests and the transcript's summary; not the secrets themselves). */
  maskedCount = 0;

  constructor(private readonly c: CompiledMasking) {
    const n = c.rules.length + c.literals.length;
    this.starts = new Array<number>(n).fill(-1);
    this.ends = new Array<number>(n).fill(-1);
    this.anchorAt = c.rules.map((r) => new Array<number>(r.anchors?.length ?? 0).fill(-1));
  }

  /** Feeds a chunk; returns the masked bytes that are final (possibly empty). */
  push(chunk: Buffer | string): Buffer {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const window = this.buf.length === 0 ? bytes : Buffer.concat([this.buf, bytes]);
    return this.run(window, false);
  }

  /**
   * Emits what is held back up to its last complete line, for a stream that has gone quiet (`logs tail --follow`
   * waits between events with its last line still held as look-ahead). A match of a rule may only be cut at a line
   * end here, never inside a line, so only a rule whose matches span lines could see its first line go out before
   * the rest arrives; the multi-line secrets (PEM blocks, JSON strings) are consumed in a skipping state that holds
   * nothing. Returns an empty buffer when there is no complete line held.
   */
  flushLines(): Buffer {
    if (this.mode.kind !== 'normal' || this.buf.length === 0) return EMPTY;
    const nl = this.buf.lastIndexOf(0x0a);
    if (nl < this.pos) return EMPTY;
    return this.run(this.buf, false, nl + 1);
  }

  /** Flushes what was held back; the masker is then ready for a new stream. */
  end(): Buffer {
    const out = this.run(this.buf, true);
    this.buf = EMPTY;
    this.pos = 0;
    this.deferred = [];
    this.mode = NORMAL;
    this.pendingEscape = false;
    return out;
  }

  private run(window: Buffer, eof: boolean, upTo = 0): Buffer {
    const { rules, literals, carry } = this.c;
    const buf = window.toString('latin1');
    const len = buf.length;
    const out = this.emitted;
    const starts = this.starts;
    const ends = this.ends;
    starts.fill(-1);
    for (const seen of this.anchorAt) seen.fill(-1);
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
        out.range(m.index, m.index + 1);
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
          out.range(m.index, m.index + m[0].length);
          pos = m.index + m[0].length;
          this.mode = NORMAL;
          continue;
        }
        // Keep a possible partial END line; everything before it is part of the secret and dropped.
        pos = eof ? len : Math.max(pos, len - mode.endMaxLen);
        break;
      }

      const limit = eof ? len : Math.max(len - carry, upTo);
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
      // A deferred secret the scan has passed entirely was inside a mask already; one it is inside is cut short.
      if (this.deferred.length) this.deferred = this.deferred.filter(([, e]) => e > pos);
      let deferredAt = -1;
      for (let k = 0; k < this.deferred.length; k++) {
        const from = Math.max(this.deferred[k]![0], pos);
        // On a tie the secret goes first: masking it can only hide more, never less.
        if (from <= bestStart) {
          bestStart = from;
          deferredAt = k;
        }
      }
      if (deferredAt >= 0 && bestStart < limit) {
        out.range(pos, bestStart);
        out.mask();
        this.maskedCount++;
        pos = this.deferred[deferredAt]![1];
        this.deferred.splice(deferredAt, 1);
        continue;
      }
      if (best < 0 || bestStart >= limit) {
        out.range(pos, limit);
        pos = limit;
        break;
      }
      const end = ends[best]!;
      if (best < rules.length) {
        const rule = rules[best]!;
        // A custom pattern that runs into the end of what we have might match more with the next chunk.
        if (!eof && end >= len && rule.action.kind === 'replace' && len - bestStart < MAX_HOLD) {
          out.range(pos, bestStart);
          pos = bestStart;
          break;
        }
        if (rule.action.kind === 'replace' && rule.action.tail > 0) {
          // Keep scanning right after the match's first character; the secret at its end waits in `deferred`.
          this.deferred.push([end - rule.action.tail, end]);
          out.range(pos, bestStart + 1);
          pos = bestStart + 1;
          continue;
        }
        out.range(pos, bestStart);
        this.apply(rule.action, bestStart, end, out);
      } else {
        out.range(pos, bestStart);
        out.mask();
        this.maskedCount++;
      }
      pos = end;
    }

    const keepFrom = Math.max(0, pos - CONTEXT);
    // A copy, so the carried bytes never pin the whole chunk (or its pool) in memory.
    this.buf = keepFrom < window.length ? Buffer.from(window.subarray(keepFrom)) : EMPTY;
    this.pos = pos - keepFrom;
    if (this.deferred.length) this.deferred = this.deferred.map(([a, b]) => [a - keepFrom, b - keepFrom]);
    return out.take(window);
  }

  private find(i: number, rule: Rule, buf: string, pos: number): void {
    const anchors = rule.anchors;
    if (anchors) {
      // Each anchor's next occurrence is remembered for this chunk, so an absent one is searched for once.
      const seen = this.anchorAt[i]!;
      let first = Infinity;
      for (let k = 0; k < anchors.length; k++) {
        let at = seen[k]!;
        if (at < pos) {
          const found = buf.indexOf(anchors[k]!, pos);
          at = seen[k] = found < 0 ? Infinity : found;
        }
        if (at < first) first = at;
      }
      if (first === Infinity) {
        this.starts[i] = Infinity;
        this.ends[i] = Infinity;
        return;
      }
      if (rule.anchoredAtStart) pos = first;
    }
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

  /** Emits the match [start, end) as the rule's action says, then the mask; sets the mode that follows. */
  private apply(action: RuleAction, start: number, end: number, out: Emitted): void {
    this.maskedCount++;
    switch (action.kind) {
      case 'jsonString':
        out.range(start, end);
        out.mask();
        this.mode = JSON_MODE;
        return;
      case 'charset':
        if (action.keepOpener) out.range(start, end);
        out.mask();
        this.mode = { kind: 'charset', body: action.body };
        return;
      case 'until':
        out.range(start, end);
        out.mask();
        this.mode = { kind: 'until', end: action.end, endMaxLen: action.endMaxLen };
        return;
      case 'replace':
        if (action.tail > 0) out.range(start, end - action.tail);
        out.mask();
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
