/**
 * argparse's token rules as the AWS CLI uses them (Python 3.11 argparse, allow_abbrev on; docs/aws-cli-parsing.md §2.3):
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

/** A token for a message: quoted, cut to 60 characters. */
export const show = (text: string) => JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
/** Where a token stands, for a message: `token 2 "--bucket"`. */
export const at = (token: Token) => `token ${token.index} ${show(token.text)}`;

const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

export type Classified =
  | { kind: 'A' }
  | { kind: 'O'; name: string; inline?: string; abbreviated: boolean }
  | { kind: 'U' }; // an option this parser does not know

/** How argparse's _parse_optional sees one token against a table of long option names (without dashes). */
export function classify(token: string, has: (name: string) => boolean, names: readonly string[]): Classified {
  if (token.length < 2 || token[0] !== '-') return { kind: 'A' };
  if (token.startsWith('--') && has(token.slice(2))) return { kind: 'O', name: token.slice(2), abbreviated: false };
  const equals = token.indexOf('=');
  if (token.startsWith('--') && equals > 0) {
    const name = token.slice(2, equals);
    if (has(name)) return { kind: 'O', name, inline: token.slice(equals + 1), abbreviated: false };
  }
  if (token.startsWith('--')) {
    const prefix = equals > 0 ? token.slice(2, equals) : token.slice(2);
    const matches: string[] = [];
    for (const name of names) if (name.startsWith(prefix)) matches.push(name);
    if (matches.length > 1) {
      throw parseError(`ambiguous option ${show(token)} could match ${matches.map((match) => `--${match}`).join(', ')}`, {
        token,
      });
    }
    if (matches.length === 1) {
      return equals > 0
        ? { kind: 'O', name: matches[0]!, inline: token.slice(equals + 1), abbreviated: true }
        : { kind: 'O', name: matches[0]!, abbreviated: true };
    }
  }
  if (NEGATIVE_NUMBER.test(token)) return { kind: 'A' };
  if (token.includes(' ')) return { kind: 'A' };
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
  /** Last occurrence wins, as argparse's `store` action (docs/aws-cli-parsing.md §2.3); earlier ones are recorded. */
  options: Map<string, ParsedArg>;
  repeated: string[];
  positionals: { spec: ArgSpec; value: string | string[]; token: Token }[];
  help: boolean;
}

/** Parses operation/customization arguments (globals already removed) against one argument table. */
export function parseArgTable(tokens: Token[], table: ArgTable, where: string): ParsedArgs {
  // ArgTableArgParser.parse_known_args: a lone "help" is always help, even where a positional could take it.
  if (tokens.length === 1 && tokens[0]!.text === 'help') return { options: new Map(), repeated: [], positionals: [], help: true };
  const has = (name: string) => table.options.has(name);
  const kinds = tokens.map((token) => classify(token.text, has, table.names));
  const options = new Map<string, ParsedArg>();
  const repeated: string[] = [];
  const loose: Token[] = [];
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i]!;
    const kind = kinds[i]!;
    if (kind.kind === 'A') {
      loose.push(token);
      i++;
      continue;
    }
    if (kind.kind === 'U') throw parseError(`${where}: unknown option at ${at(token)}`, { index: token.index, token: token.text });
    const spec = table.options.get(kind.name)!;
    let value: ParsedArg['value'];
    i++;
    if (spec.nargs === 0) {
      if (kind.inline !== undefined) throw parseError(`${where}: --${kind.name} takes no value, at ${at(token)}`, { index: token.index });
      value = spec.flagValue ?? true;
    } else if (kind.inline !== undefined) {
      value = spec.nargs === '*' || spec.nargs === '+' ? [kind.inline] : kind.inline;
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
        if (!vals.length) throw parseError(`${where}: --${kind.name} expects at least one value, at ${at(token)}`, { index: token.index });
        value = vals;
      } else if (spec.nargs === 1) {
        if (!vals.length) throw parseError(`${where}: --${kind.name} expects a value, at ${at(token)}`, { index: token.index });
        value = vals[0]!;
      } else {
        if (vals.length !== spec.nargs) throw parseError(`${where}: --${kind.name} expects ${spec.nargs} values, at ${at(token)}`, { index: token.index });
        value = vals;
      }
    }
    // Boolean pairs (--x / --no-x) share a member: the later one wins, like argparse's shared dest.
    const key = spec.member && spec.type === 'b' ? `member:${spec.member}` : spec.name;
    if (options.has(key)) repeated.push(spec.name);
    options.delete(key);
    options.set(key, { spec, value, token: token, abbreviated: kind.abbreviated });
  }
  // Positionals in order; one trailing extra `help` asks for help (ArgTableArgParser's implicit positional).
  const positionals: ParsedArgs['positionals'] = [];
  let used = 0;
  for (const spec of table.positionals) {
    const count = spec.nargs === '*' || spec.nargs === '+' ? loose.length - used : spec.nargs === '?' ? Math.min(1, loose.length - used) : (spec.nargs as number);
    if (loose.length - used < count || (spec.nargs === '+' && count === 0)) {
      if (spec.nargs === '?' || spec.nargs === '*') continue;
      throw parseError(`${where}: missing ${spec.name} argument`, { argument: spec.name });
    }
    if (count === 0) continue;
    const taken = loose.slice(used, used + count);
    const single = count === 1 && (typeof spec.nargs !== 'number' || spec.nargs === 1);
    positionals.push({ spec, value: single ? taken[0]!.text : taken.map((token) => token.text), token: taken[0]! });
    used += count;
  }
  let help = false;
  if (used < loose.length) {
    const extra = loose[used]!;
    if (used === loose.length - 1 && extra.text === 'help') help = true;
    else throw parseError(`${where}: unexpected argument at ${at(extra)}`, { index: extra.index, token: extra.text });
  }
  return { options, repeated, positionals, help };
}
