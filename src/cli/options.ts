import { Option } from 'commander';
import { GuardError } from '../errors.js';

/**
 * The options several commands share, built in one place so each has one spelling, one help text and one way to
 * fail. Number parsers throw `GuardError('usage')`: commander passes any error other than its own
 * InvalidArgumentError through untouched, so every bad number ends the same way — one line naming the option and
 * the value, exit 64 — whichever command it was given to.
 */

const BROKER_HELP = 'broker URL (default: $GUARD_AWS_BROKER, then the broker of the last login)';

/** `--broker URL`: where the broker is. Resolution order: flag > GUARD_AWS_BROKER > the last login's broker. */
export function brokerOption(): Option {
  return new Option('--broker <url>', BROKER_HELP);
}

/** `--json`: one JSON document on stdout instead of text, for scripts and agents. */
export function jsonOption(what = 'print JSON instead of text'): Option {
  return new Option('--json', what);
}

/** `--no-input`: never prompt (also implied by CI or no terminal; main.ts reads it before dispatch). */
export function noInputOption(): Option {
  return new Option('--no-input', 'never prompt (also implied by CI or no terminal)');
}

/**
 * `--target NAME` (and its aws-flavoured spelling `--profile NAME`): the broker target a call is decided for. On
 * the run path `--profile` is read from the aws argv (src/client/guard-options.ts) and means exactly this.
 */
export function targetOption(defaultText: string): Option {
  return new Option('--target <name>', `broker target (the run path's --profile NAME); default ${defaultText}`);
}

export function profileOption(): Option {
  return new Option('--profile <name>', 'same as --target').hideHelp();
}

/** One message for every malformed number: `--port: "abc" is not a port number (0–65535)`. */
function bad(option: string, value: string, expected: string): GuardError {
  return new GuardError('usage', `${option}: ${JSON.stringify(value.slice(0, 40))} is not ${expected}`, { details: { option } });
}

/** A whole number in [min, max], written in plain decimal digits (no signs, exponents, hex or blanks). */
export function intParser(option: string, min: number, max: number, expected = `a whole number from ${min} to ${max}`): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d{1,15}$/.test(v) || n < min || n > max) throw bad(option, v, expected);
    return n;
  };
}

/** A TCP port; 0 lets the OS choose a free one. */
export function portParser(option: string): (v: string) => number {
  return intParser(option, 0, 65535, 'a port number (0–65535)');
}

/** A non-negative decimal number (may have a fraction), or one of the given words mapped to a value. */
export function numberParser(option: string, words: Record<string, number> = {}): (v: string) => number {
  return (v: string) => {
    if (Object.hasOwn(words, v)) return words[v]!;
    const n = Number(v);
    if (!/^\d{1,9}(\.\d{1,9})?$/.test(v) || !Number.isFinite(n)) {
      const alt = Object.keys(words).map((w) => ` or "${w}"`).join('');
      throw bad(option, v, `a number ≥ 0${alt}`);
    }
    return n;
  };
}

/** `--port N` with a given help text and default. */
export function portOption(flags: string, help: string, defaultValue?: number): Option {
  const name = flags.split(/[ ,]/).find((f) => f.startsWith('--'))!;
  const o = new Option(flags, help).argParser(portParser(name));
  return defaultValue === undefined ? o : o.default(defaultValue);
}

/** A repeatable option collecting values in order (`--policy a.yaml --policy b.yaml`). */
export function repeatable(flags: string, help: string): Option {
  return new Option(flags, help).argParser((v: string, prev: string[] = []) => [...prev, v]).default([]);
}
