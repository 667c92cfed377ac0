import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replayTranscript } from '../../src/audit/replay.js';
import { shellWords, TerminalOutputFilter, visible, visibleText } from '../../src/terminal-text.js';

// Sequences an attacker would put in an argv or a run's output, each with what it does to a terminal.
const ATTACKS = {
  clearScreen: '\x1b[2J\x1b[H',
  eraseLine: '\x1b[2K',
  cursorUp: '\x1b[1A',
  osc52Clipboard: '\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07',
  osc8Link: '\x1b]8;;https://evil.test\x1b\\click\x1b]8;;\x1b\\',
  title: '\x1b]0;innocent\x07',
  dcs: '\x1bP1$r0m\x1b\\',
  c1Csi: '\u009b2J',
  bidiOverride: 'gnp.\u202eexe',
  bidiIsolate: '\u2066x\u2069',
  carriageReturn: 'rm -rf /\rls',
  backspace: 'rm\b\b',
};
/** Anything a terminal acts on, other than LF/TAB (and CR where replay keeps it). */
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('visible()', () => {
  it.each(Object.entries(ATTACKS))('%s: shown as escapes, nothing left a terminal would act on', (_name, attack) => {
    const out = visible(`aws s3 ls ${attack}`);
    expect(out).not.toMatch(ACTIVE);
    expect(out).not.toContain('\r');
    expect(out).not.toContain('\n');
  });

  it('uses \\xNN up to U+00FF and \\uNNNN above', () => {
    expect(visible('a\x1b[2Jb\u202ec\r\n\t\u0085')).toBe('a\\x1b[2Jb\\u202ec\\x0d\\x0a\\x09\\x85');
  });

  it('leaves ordinary text, including non-Latin scripts and emoji, alone', () => {
    expect(visible('Zürich 東京 مرحبا 🙂 "quoted" \\n')).toBe('Zürich 東京 مرحبا 🙂 "quoted" \\n');
  });

  it('visibleText keeps line breaks and tabs but not CR', () => {
    expect(visibleText('a\n\tb\r\nc\x1b[2K')).toBe('a\n\tb\\x0d\nc\\x1b[2K');
  });

  it('shellWords quotes and escapes', () => {
    expect(shellWords(['s3', 'ls', 's3://b/a b', `x${ATTACKS.clearScreen}`])).toBe("s3 ls 's3://b/a b' 'x\\x1b[2J\\x1b[H'");
  });

  it('property: no output of visible() contains a control or bidi character', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => !ACTIVE.test(visible(s)) && !/[\r\n\t]/.test(visible(s))));
  });
});

const filterAll = (chunks: (string | Uint8Array)[]) => {
  const f = new TerminalOutputFilter();
  return chunks.map((c) => f.push(typeof c === 'string' ? Buffer.from(c) : c)).join('') + f.end();
};

describe('TerminalOutputFilter (audit replay)', () => {
  it('passes text, LF, TAB, CR and SGR colours unchanged', () => {
    const out = 'ok \x1b[1;31mred\x1b[0m\tcol\r\nnext \x1b[mplain\x1b[38;5;208morange\x1b[39m\n';
    expect(filterAll([out])).toBe(out);
  });

  it.each(Object.entries(ATTACKS))('%s: made inert', (_name, attack) => {
    const out = filterAll([`before ${attack} after\n`]);
    // Only CR may remain of the controls, and ESC only as part of a colour (none here).
    expect(out.replace(/\r/g, '')).not.toMatch(ACTIVE);
  });

  it('the inert form shows what was attempted', () => {
    expect(filterAll([ATTACKS.osc52Clipboard])).toBe('\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07');
    expect(filterAll([ATTACKS.clearScreen])).toBe('\\x1b[2J\\x1b[H');
  });

  it('judges a sequence split across chunks whole, and UTF-8 split across chunks too', () => {
    expect(filterAll(['a\x1b', '[3', '1mred\x1b[', '0m'])).toBe('a\x1b[31mred\x1b[0m');
    expect(filterAll(['a\x1b', '[2', 'J'])).toBe('a\\x1b[2J');
    const euro = Buffer.from('€');
    expect(filterAll([euro.subarray(0, 1), euro.subarray(1)])).toBe('€');
    expect(filterAll(['\x1b'])).toBe('\\x1b');
    expect(filterAll(['\x1b[31'])).toBe('\\x1b[31');
  });

  it('a colour sequence with an absurd parameter list is not a colour', () => {
    expect(filterAll([`\x1b[${'1;'.repeat(100)}m`])).toMatch(/^\\x1b\[/);
  });

  it('property: whatever the bytes and however they are split, the only ESC left starts an SGR sequence', () => {
    const piece = fc.oneof(fc.constantFrom(...Object.values(ATTACKS), '\x1b[31m', '\x1b[0m', '\x1b', '\x1b[', '€', '\n'), fc.string({ unit: 'binary', maxLength: 8 }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 5 }), (pieces, cuts) => {
        const bytes = Buffer.from(pieces.join(''));
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((start, i) => bytes.subarray(start, [...at, bytes.length][i]));
        const out = filterAll(chunks);
        const withoutSgr = out.replace(/\x1b\[[0-9;]*m/g, '');
        return !ACTIVE.test(withoutSgr.replace(/\r/g, ''));
      }),
    );
  });
});

describe('replayTranscript', () => {
  it('writes filtered output to the stream each chunk came from', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const writes: [string, string][] = [];
    await replayTranscript(
      { chunks: [{ t: 0, s: 'o', d: b64('\x1b[32mok\x1b[0m\x1b]52;c;eA==\x07\n') }, { t: 1, s: 'e', d: b64('warn\x1b[2J\r\n') }] },
      { speed: 0, write: (s, d) => void writes.push([s, d.toString()]) },
    );
    expect(writes).toEqual([
      ['stdout', '\x1b[32mok\x1b[0m\\x1b]52;c;eA==\\x07\n'],
      ['stderr', 'warn\\x1b[2J\r\n'],
    ]);
  });
});
