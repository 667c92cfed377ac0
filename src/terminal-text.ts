/**
 * Caller-controlled text made safe for a person's terminal. An argv, a reason, a name, a comment or a recorded
 * output is written by whoever made the call, and a terminal obeys what it prints: ESC sequences move the cursor,
 * clear the screen (CSI J/K/H), set the window title or write the clipboard (OSC 0/2, OSC 52), make hidden links
 * (OSC 8); CR and BS overwrite what is already on the line; bidi overrides and isolates reorder what is shown
 * (Trojan Source, CVE-2021-42574). Every human-facing view of such text goes through this module, so a logged or
 * requested call cannot disguise itself as another, and an auditor's terminal does only what it is shown.
 *
 * Characters made visible as escapes: C0 controls (U+0000–U+001F), DEL (U+007F), C1 controls (U+0080–U+009F),
 * the Arabic letter mark (U+061C), LRM/RLM (U+200E, U+200F), the line and paragraph separators (U+2028,
 * U+2029), the bidi embeddings/overrides (U+202A–U+202E) and isolates (U+2066–U+2069). Code points up to U+00FF
 * are written `\xNN`, the others `\uNNNN`. JSON outputs never pass through here: JSON escaping already makes
 * them exact and safe.
 */

// ECMA-48 §5 (C0 and C1 sets), Unicode Standard Annex #9 (explicit directional formatting characters).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same without LF and TAB: the layout characters of multi-line text. */
const CONTROL_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of caller-controlled text: every control character (LF and TAB included) shown as an escape. */
export function visible(s: string): string {
  return s.replace(CONTROL, escapeChar);
}

/** Multi-line caller-controlled text (a decoded user-data script): LF and TAB kept, every other control shown. */
export function visibleText(s: string): string {
  return s.replace(CONTROL_BUT_LAYOUT, escapeChar);
}

/** An argv as a shell would need it, quoted only where needed, control characters made visible. */
export function shellWords(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).map(visible).join(' ');
}

/** Every control but LF, TAB and CR (which replay keeps), plus ESC, whose sequence is judged on its own. */
const SPECIAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** `ESC`, then `[` and SGR parameters if they follow. */
const SGR_START = /^\x1b(?:\[[0-9;]*)?/;
/** Longest SGR parameter string passed through; a longer one is not a colour a real program writes. */
const MAX_SGR = 64;

/**
 * Recorded terminal output, filtered for playback (`audit replay`): text, LF, TAB and CR pass as the run wrote
 * them, and so do SGR colour sequences (`ESC [ digits/semicolons m`, ECMA-48 §8.3.117), which only change how
 * text looks. Every other control is shown as an escape and so made inert: cursor movement and erasing (CSI H,
 * J, K…), OSC (window title, OSC 8 links, OSC 52 clipboard), DCS/APC/PM/SOS strings, C1 controls, BEL, BS, and
 * the bidi controls. Bytes are decoded as UTF-8 across chunk boundaries (invalid bytes become U+FFFD), and an
 * escape sequence split between two chunks is judged whole. One filter per output stream.
 */
export class TerminalOutputFilter {
  private readonly decoder = new TextDecoder('utf-8');
  /** An ESC sequence that may still become an SGR sequence when the next chunk arrives. */
  private pending = '';

  /** Filters the next chunk; returns what may be written now. */
  push(chunk: Uint8Array): string {
    return this.filter(this.pending + this.decoder.decode(chunk, { stream: true }), false);
  }

  /** Flushes what is held back (an unfinished sequence is shown, not obeyed). */
  end(): string {
    return this.filter(this.pending + this.decoder.decode(), true);
  }

  private filter(text: string, final: boolean): string {
    this.pending = '';
    let out = '';
    let from = 0;
    SPECIAL.lastIndex = 0;
    for (let m = SPECIAL.exec(text); m; m = SPECIAL.exec(text)) {
      const i = m.index;
      out += text.slice(from, i);
      from = i + 1;
      if (m[0] !== '\x1b') {
        out += escapeChar(m[0]);
        continue;
      }
      const sgr = SGR_START.exec(text.slice(i, i + MAX_SGR + 3))!;
      const after = i + sgr[0].length;
      if (sgr[0].length > 1 && sgr[0].length - 2 <= MAX_SGR) {
        if (text[after] === 'm') {
          out += text.slice(i, after + 1);
          from = after + 1;
          SPECIAL.lastIndex = from;
          continue;
        }
        if (after === text.length && !final) {
          // `ESC [ 1 ;` at the end of a chunk: the rest decides.
          this.pending = text.slice(i);
          return out;
        }
      } else if (after === text.length && !final) {
        this.pending = '\x1b';
        return out;
      }
      // Not a colour: the ESC is shown, and what followed it is plain text again.
      out += '\\x1b';
    }
    return out + text.slice(from);
  }
}
