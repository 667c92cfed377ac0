/**
 * argparse's token rules as the AWS CLI uses them (Python 3.11 argparse, allow_abbrev on; reference §1.3):
 * exact option, `--opt=value`, unique prefix (ambiguous → error), negative numbers and tokens with a space are
 * values. Globals are taken from every position first, as the CLI's top-level parse_known_args does.
 * Everything is canonicalised (full names) so the real CLI cannot read the argv differently.
 */
import type { ArgSpec, ArgTable } from './model.js';
import { parseError } from './values.js';

export interface Token {
  text: string;
  /** Index in the original argv. */
  index: number;
}

export const show = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
export const at = (t: Token) => `token ${t.index} ${show(t.text)}`;

const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

export type Classified =
  | { kind: 'A' }
  | { kind: 'O'; name: string; inline?: string; abbreviated: boolean }
  | { kind: 'U' }; // an option this parser does not know

/** How argparse's _parse_optional sees one token against a table of long option names (without dashes). */
export function classify(tok: string, has: (name: string) => boolean, names: readonly string[]): Classified {
  if (tok.length < 2 || tok[0] !== '-') return { kind: 'A' };
  if (tok.startsWith('--') && has(tok.slice(2))) return { kind: 'O', name: tok.slice(2), abbreviated: false };
  const eq = tok.indexOf('=');
  if (tok.startsWith('--') && eq > 0) {
    const k = tok.slice(2, eq);
    if (has(k)) return { kind: 'O', name: k, inline: tok.slice(eq + 1), abbreviated: false };
  }
  if (tok.startsWith('--')) {
    const prefix = eq > 0 ? tok.slice(2, eq) : tok.slice(2);
    const matches: string[] = [];
    for (const n of names) if (n.startsWith(prefix)) matches.push(n);
    if (matches.length > 1) {
      throw parseError(`ambiguous option ${show(tok)} could match ${matches.map((m) => `--${m}`).join(', ')}`, {
        token: tok,
      });
    }
    if (matches.length === 1) {
      return eq > 0
        ? { kind: 'O', name: matches[0]!, inline: tok.slice(eq + 1), abbreviated: true }
        : { kind: 'O', name: matches[0]!, abbreviated: true };
    }
  }
  if (NEGATIVE_NUMBER.test(tok)) return { kind: 'A' };
  if (tok.includes(' ')) return { kind: 'A' };
  return { kind: 'U' };
}

export interface ParsedArg {
  spec: ArgSpec;
  /** true for flags; string for single values; string[] for lists; null for `?` without value. */
  value: string | string[] | boolean | null;
  token: Token;
  abbreviated: boolean;
}

export interface ParsedArgs {
  /** Last occurrence wins, as argparse's `store` action (reference §1.3.7); earlier ones are recorded. */
  options: Map<string, ParsedArg>;
  repeated: string[];
  positionals: { spec: ArgSpec; value: string | string[]; token: Token }[];
  help: boolean;
}

/** Parses operation/customization arguments (globals already removed) against one argument table. */
export function parseArgTable(tokens: Token[], table: ArgTable, where: string): ParsedArgs {
  // ArgTableArgParser.parse_known_args: a lone "help" is always help, even where a positional could take it.
  if (tokens.length === 1 && tokens[0]!.text === 'help') return { options: new Map(), repeated: [], positionals: [], help: true };
  const has = (n: string) => table.options.has(n);
  const kinds = tokens.map((t) => classify(t.text, has, table.names));
  const options = new Map<string, ParsedArg>();
  const repeated: string[] = [];
  const loose: Token[] = [];
  let i = 0;
  while (i < tokens.length) {
    const tok = tokens[i]!;
    const k = kinds[i]!;
    if (k.kind === 'A') {
      loose.push(tok);
      i++;
      continue;
    }
    if (k.kind === 'U') throw parseError(`${where}: unknown option at ${at(tok)}`, { index: tok.index, token: tok.text });
    const spec = table.options.get(k.name)!;
    let value: ParsedArg['value'];
    i++;
    if (spec.nargs === 0) {
      if (k.inline !== undefined) throw parseError(`${where}: --${k.name} takes no value, at ${at(tok)}`, { index: tok.index });
      value = spec.flagValue ?? true;
    } else if (k.inline !== undefined) {
      value = spec.nargs === '*' || spec.nargs === '+' ? [k.inline] : k.inline;
    } else {
      let vals: string[];
      let next: number;
      // Consume following value tokens (argparse classifies them once; 'A' only).
      const out: string[] = [];
      const max = spec.nargs === '*' || spec.nargs === '+' ? Infinity : spec.nargs === '?' ? 1 : (spec.nargs as number);
      next = i;
      while (out.length < max && next < tokens.length && kinds[next]!.kind === 'A') out.push(tokens[next++]!.text);
      vals = out;
      i = next;
      if (spec.nargs === '?') value = vals[0] ?? null;
      else if (spec.nargs === '*') value = vals;
      else if (spec.nargs === '+') {
        if (!vals.length) throw parseError(`${where}: --${k.name} expects at least one value, at ${at(tok)}`, { index: tok.index });
        value = vals;
      } else if (spec.nargs === 1) {
        if (!vals.length) throw parseError(`${where}: --${k.name} expects a value, at ${at(tok)}`, { index: tok.index });
        value = vals[0]!;
      } else {
        if (vals.length !== spec.nargs) throw parseError(`${where}: --${k.name} expects ${spec.nargs} values, at ${at(tok)}`, { index: tok.index });
        value = vals;
      }
    }
    // Boolean pairs (--x / --no-x) share a member: the later one wins, like argparse's shared dest.
    const key = spec.member && spec.type === 'b' ? `member:${spec.member}` : spec.name;
    if (options.has(key)) repeated.push(spec.name);
    options.delete(key);
    options.set(key, { spec, value, token: tok, abbreviated: k.abbreviated });
  }
  // Positionals in order; one trailing extra `help` asks for help (ArgTableArgParser's implicit positional).
  const positionals: ParsedArgs['positionals'] = [];
  let p = 0;
  for (const spec of table.positionals) {
    const n = spec.nargs === '*' || spec.nargs === '+' ? loose.length - p : spec.nargs === '?' ? Math.min(1, loose.length - p) : (spec.nargs as number);
    if (loose.length - p < n || (spec.nargs === '+' && n === 0)) {
      if (spec.nargs === '?' || spec.nargs === '*') continue;
      throw parseError(`${where}: missing ${spec.name} argument`, { argument: spec.name });
    }
    if (n === 0) continue;
    const vals = loose.slice(p, p + n);
    positionals.push({ spec, value: n === 1 && typeof spec.nargs !== 'number' ? vals[0]!.text : n === 1 && spec.nargs === 1 ? vals[0]!.text : vals.map((t) => t.text), token: vals[0]! });
    p += n;
  }
  let help = false;
  if (p < loose.length) {
    const extra = loose[p]!;
    if (p === loose.length - 1 && extra.text === 'help') help = true;
    else throw parseError(`${where}: unexpected argument at ${at(extra)}`, { index: extra.index, token: extra.text });
  }
  return { options, repeated, positionals, help };
}
