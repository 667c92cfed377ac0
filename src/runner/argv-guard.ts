import { GuardError } from '../errors.js';

/**
 * Defence in depth: the broker has already refused all of this, but the runner is the last thing between an
 * argv and a process holding credentials, so it refuses again on its own.
 *
 * Global options whose effect escapes the session policy (docs/aws-cli-parsing.md §6.1 vectors 1, 3, 4, 5, 6): argparse
 * accepts any unique prefix of a long option (`allow_abbrev` is never disabled in awscli's argparser), and
 * global options are recognised anywhere in argv, so every token that is a prefix of one of these names is
 * refused wherever it stands. No operation argument in botocore equals or prefixes a global option name (the
 * CLI renames colliding members in customizations/argrename.py), so this refuses nothing legitimate.
 */
const FORBIDDEN_OPTIONS = ['endpoint-url', 'profile', 'no-sign-request', 'ca-bundle', 'no-verify-ssl', 'debug'] as const;

/** Commands that persist or reveal local configuration (vectors 12, 18). */
const FORBIDDEN_COMMANDS = new Set(['configure', 'history']);

/** Global options that take a value (awscli/data/cli.json), for finding the command words. */
const VALUE_GLOBALS = new Set(['region', 'output', 'query', 'color', 'cli-read-timeout', 'cli-connect-timeout', 'cli-binary-format', 'cli-error-format']);

export interface CommandWords {
  service: string | null;
  operation: string | null;
}

/** Service and operation words of an argv (first two positional tokens outside global options). */
export function commandWords(argv: readonly string[]): CommandWords {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const t = argv[i]!;
    if (t.startsWith('--')) {
      // Global options may stand anywhere, also between the service and the operation.
      if (!t.includes('=') && VALUE_GLOBALS.has(t.slice(2))) i++;
      continue;
    }
    words.push(t);
  }
  return { service: words[0] ?? null, operation: words[1] ?? null };
}

/** Throws GuardError ('parse' or 'denied') naming the token index when argv must not reach aws. */
export function assertRunnableArgv(argv: readonly string[]): CommandWords {
  argv.forEach((t, i) => {
    if (typeof t !== 'string') throw new GuardError('parse', `argument ${i} is not a string`);
    if (t === '--') throw new GuardError('parse', `argument ${i}: "--" is not accepted (it changes how aws reads the rest)`);
    if (t.includes('\0')) throw new GuardError('parse', `argument ${i} contains a NUL byte`);
    if (!t.startsWith('--') || t.length < 3) return;
    const name = t.slice(2).split('=', 1)[0]!;
    if (!name) return;
    const hit = FORBIDDEN_OPTIONS.find((o) => o.startsWith(name));
    if (hit) {
      throw new GuardError('denied', `argument ${i}: --${name}${name === hit ? '' : ` (an abbreviation of --${hit})`} is never passed to aws: it would bypass the scoped session`, {
        details: { index: i, option: hit },
      });
    }
  });
  const words = commandWords(argv);
  if (words.service && FORBIDDEN_COMMANDS.has(words.service)) {
    throw new GuardError('denied', `\`aws ${words.service}\` is never run by guard-aws: it reads or changes local AWS configuration`, {
      details: { command: words.service },
    });
  }
  return words;
}
