/**
 * Pieces shared by the two halves of the parser: parse.ts (service operations) and customizations.ts (s3,
 * wait, configure and the other CLI customization commands). Both build a ParsedInvocation the same way, write
 * arguments back in canonical form and decode argument values with the CLI's rules, so these live here and
 * neither half imports the other (parse.ts → customizations.ts → result.ts, one direction only).
 */
import { type ParsedArg, type ParsedArgs, type Token, show } from './grammar.js';
import type { ArgSpec } from './model.js';
import type { ParsedInvocation } from './types.js';
import { type DecodeState, decodeStructured, expandPath, loadBlobParam, loadParamFile, parseError, parseJson } from './values.js';

/** Global options found anywhere in the argv (docs/aws-cli-parsing.md §2.2). */
export interface Globals {
  /** By canonical name without dashes (`region`, `endpoint-url`); flags are `true`. */
  values: Record<string, string | boolean>;
  /** The same options as canonical tokens, in the order the CLI will see them. */
  canonical: string[];
  /** Every token that is not a global option or its value, with its argv index. */
  rest: Token[];
  /** True when a global option was given as an abbreviation (`--reg`). */
  abbreviated: boolean;
}

/** What is fixed about an invocation before its command is looked at. */
export interface InvocationHead {
  /** The argv as given (without the leading `aws`). */
  argv: string[];
  globals: Globals;
  /** Region the call targets: `--region`, else the context's. */
  region: string;
}

/** A result with no permissions yet; callers fill in what the command asks of AWS. */
export function emptyResult(
  head: InvocationHead,
  canonicalArgv: string[],
  kind: ParsedInvocation['kind'],
  command: string,
  subcommand: string | null,
): ParsedInvocation {
  return {
    argv: [...head.argv],
    canonicalArgv,
    kind,
    command,
    subcommand,
    service: null,
    operation: null,
    apiCalls: [],
    params: {},
    globals: head.globals.values,
    region: head.region,
    permissions: [],
    actions: [],
    resources: [],
    accessLevels: {},
    risks: [],
    files: [],
    notes: [],
  };
}

/**
 * `--name value` as two tokens (the CLI itself looks for the exact token `--cli-input-json` to relax required
 * arguments, so `--name=value` is not always equivalent); values starting with "-" keep the `--name=value`
 * form so no parser can take them for an option.
 */
export function optionTokens(name: string, value: string | string[] | boolean | null): string[] {
  const option = `--${name}`;
  if (value === true || value === false || value === null) return [option];
  if (Array.isArray(value)) {
    if (value.length === 1 && value[0]!.startsWith('-')) return [`${option}=${value[0]}`];
    return [option, ...value];
  }
  return value.startsWith('-') ? [`${option}=${value}`] : [option, value];
}

/** Canonical tokens of parsed arguments: positionals first, then full option names (no re-reading possible). */
export function canonicalArgs(args: ParsedArgs): string[] {
  const tokens: string[] = [];
  for (const positional of args.positionals) tokens.push(...(Array.isArray(positional.value) ? positional.value : [positional.value]));
  for (const option of args.options.values()) tokens.push(...optionTokens(option.spec.name, option.value));
  return tokens;
}

/**
 * Decodes one parsed argument into its API value: parameter file, then JSON or shorthand, then scalar
 * (docs/aws-cli-parsing.md §2.4). `where` names the command and token for error messages.
 */
export function decodeValue(spec: ArgSpec, value: ParsedArg['value'], state: DecodeState, where: string): unknown {
  const arg = `--${spec.name}`;
  if (typeof value === 'boolean') return value;
  if (value === null) return null;
  if (Array.isArray(value)) {
    // A one-element list is treated like a scalar for paramfiles (paramfile.py _check_for_uri_param).
    const elements =
      value.length === 1
        ? [loadParamFile(value[0]!, spec.literal, state, arg, where)]
        : value.map((element) => {
            if (/^(https?|fileb?):\/\//i.test(element) && !spec.literal) throw parseError(`${where}: ${arg} list element ${show(element)} is not loaded by the CLI and is refused`);
            return element;
          });
    if (spec.type === 'L' || spec.type === 'l') {
      if (elements.length === 1 && /^\s*\[/.test(elements[0]!)) return parseJson(elements[0]!, `${where} ${arg}`);
      if (spec.type === 'L') return elements.map((element) => decodeStructured(element, state, arg, `${where} ${arg}`));
    }
    return elements;
  }
  const raw = spec.type === 'B' ? loadBlobParam(value, spec.literal, state, arg, where) : loadParamFile(value, spec.literal, state, arg, where);
  switch (spec.type) {
    case 'S':
    case 'd':
      return decodeStructured(raw, state, arg, `${where} ${arg}`);
    case 'i':
    case 'f': {
      const number = Number(raw);
      if (raw.trim() === '' || Number.isNaN(number)) throw parseError(`${where}: ${arg} expects a number, got ${show(raw)}`);
      return number;
    }
    case 'P': {
      // Streaming blob: the value is a path the CLI opens and uploads (local file read).
      state.files.push({ path: expandPath(raw, state.ctx, where), mode: 'read', argument: arg });
      return raw;
    }
    default:
      return raw;
  }
}
